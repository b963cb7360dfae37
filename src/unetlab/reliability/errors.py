"""Errors as one line for people, also those re-raised from data-loader workers and DDP ranks."""

from __future__ import annotations

import os
import re
import sys
from typing import NoReturn

import torch.distributed as dist
from torch.multiprocessing.spawn import ProcessException, ProcessExitedException

# Errors a run reports in one line instead of a traceback (HYDRA_FULL_ERROR=1 shows it).
REPORTED_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    FloatingPointError,
    ProcessException,
    dist.DistError,
)

WORKER_ERROR = re.compile(r"^Caught \w+ in (DataLoader worker process \d+)\.")
PROCESS_ERROR = re.compile(r"-- Process (\d+) terminated with the following error:")


def error_summary(error: BaseException) -> str:
    """``Type: message`` on one line.

    Errors re-raised from a data-loader worker or a DDP process carry the original traceback
    in their message; the summary is the original error's last line plus where it happened.
    """
    text = str(error).strip()
    summary = f"{type(error).__name__}: {' '.join(text.split())}"
    worker = WORKER_ERROR.match(text)
    process = PROCESS_ERROR.search(text)
    if worker or process:
        original = text.splitlines()[-1].strip()
        where = worker[1] if worker else f"DDP process {process[1]}"
        summary = f"{original} (in {where})"
    elif isinstance(error, ProcessExitedException):
        summary = (
            f"DDP {text}; the other processes were stopped (a process killed by the system "
            "often ran out of memory)"
        )
    elif isinstance(error, dist.DistError):
        summary += "; a DDP process stopped or lost its connection (see the other ranks' logs)"
    return summary


def one_line(error: BaseException) -> str:
    """An exception's message on one line: config mistakes as written, others via
    :func:`error_summary`."""
    from unetlab.config import ConfigError

    if isinstance(error, ConfigError):
        return " ".join(str(error).split())
    return error_summary(error)


def report_error(error: BaseException, message: str | None = None, prog: str = "") -> None:
    """Print ``[prog: ]error: <message>`` on stderr; with ``HYDRA_FULL_ERROR=1`` re-raise.

    Args:
        error: The error being reported.
        message: The line to print; default :func:`one_line` of the error.
        prog: Command name to put in front, e.g. ``unetlab-predict``.
    """
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise error
    prefix = f"{prog}: error" if prog else "error"
    print(
        f"{prefix}: {one_line(error) if message is None else message}", file=sys.stderr, flush=True
    )


def exit_with_error(error: BaseException, message: str | None = None, prog: str = "") -> NoReturn:
    """:func:`report_error`, then exit with status 1."""
    report_error(error, message, prog)
    sys.exit(1)

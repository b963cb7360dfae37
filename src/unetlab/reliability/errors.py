"""Errors as one line for people, also those re-raised from data-loader workers and DDP ranks."""

from __future__ import annotations

import re

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

"""Errors as one line for people, also those re-raised from data-loader workers and DDP ranks.

Torch is imported only when an error is summarised, so that a command answers ``--help`` and
reports a config mistake without loading it.
"""

from __future__ import annotations

import re

WORKER_ERROR = re.compile(r"^Caught \w+ in (DataLoader worker process \d+)\.")
PROCESS_ERROR = re.compile(r"-- Process (\d+) terminated with the following error:")


def reported_errors() -> tuple[type[BaseException], ...]:
    """Errors a command reports in one line instead of a traceback.

    Mistakes in the config or the command line, missing or unreadable files, bad values,
    diverged training and failed DDP processes. Anything else is a bug and keeps its
    traceback.
    """
    import torch.distributed as dist
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException
    from torch.multiprocessing.spawn import ProcessException

    return (
        ValueError,
        OSError,
        FloatingPointError,
        HydraException,
        OmegaConfBaseException,
        ProcessException,
        dist.DistError,
    )


def error_summary(error: BaseException) -> str:
    """``Type: message`` on one line.

    Errors re-raised from a data-loader worker or a DDP process carry the original traceback
    in their message; the summary is the original error's last line plus where it happened.
    """
    import torch.distributed as dist
    from torch.multiprocessing.spawn import ProcessExitedException

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
    """An exception's message on one line.

    Messages written for people (config mistakes, bad values, missing files, Hydra and
    OmegaConf errors) are shown as written; others as :func:`error_summary` (``Type:
    message``), which also unwraps errors from data-loader workers and DDP processes.
    """
    from hydra.errors import HydraException, InstantiationException
    from omegaconf.errors import OmegaConfBaseException

    written_for_people = (ValueError, OSError, HydraException, OmegaConfBaseException)
    cause = error.__cause__
    if isinstance(error, InstantiationException) and isinstance(cause, ValueError | OSError):
        return one_line(cause)  # a constructor's own message says what to fix
    summary = error_summary(error)
    prefix = f"{type(error).__name__}: "
    if isinstance(error, written_for_people) and summary.startswith(prefix):
        summary = summary.removeprefix(prefix)
    # Hydra appends where it searched for a config group option: no help to the user.
    return summary.split(" Config search path:", 1)[0]

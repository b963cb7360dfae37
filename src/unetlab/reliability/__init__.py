"""Fault tolerance: atomic checkpoints, exact resume, epoch-wise seeding and one-line errors."""

from unetlab.reliability.atomic_checkpoint import AtomicCheckpointIO, atomic_torch_save
from unetlab.reliability.errors import (
    REPORTED_ERRORS,
    error_summary,
    exit_with_error,
    one_line,
    report_error,
)
from unetlab.reliability.resume import find_last_checkpoint, prepare_resume
from unetlab.reliability.resumed_metrics import continue_csv_logs, restore_metrics
from unetlab.reliability.seeding import derive_seed, run_seed

__all__ = [
    "REPORTED_ERRORS",
    "AtomicCheckpointIO",
    "atomic_torch_save",
    "continue_csv_logs",
    "derive_seed",
    "error_summary",
    "exit_with_error",
    "find_last_checkpoint",
    "one_line",
    "prepare_resume",
    "report_error",
    "restore_metrics",
    "run_seed",
]

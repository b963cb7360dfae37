"""Checkpoint files that are either the old version or the new one, never a truncated mix."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.fabric.utilities.types import _PATH

TEMP_SUFFIX = ".tmp"


def temp_path_for(path: Path) -> Path:
    """The hidden file beside ``path`` that a new version of it is written to first."""
    return path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, synced, then renamed over ``path``.

    ``os.replace`` within one folder is atomic: a process killed at any moment leaves either
    the previous file or the complete new one (and at most a stale hidden temporary file,
    removed by the next save).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(path)
    try:
        with open(temp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    _sync_folder(path.parent)
    for stale in path.parent.glob(f".{path.name}.*{TEMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (skipped where folders cannot be opened or synced)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that writes local checkpoints atomically.

    Lightning's own writer stages the file in the system temporary folder and moves it into
    place; when that folder is on another file system (a local ``/tmp``, checkpoints on a
    network drive) the move is a copy, and a kill during it leaves a truncated ``last.ckpt``.
    Here the file is staged beside its target and renamed (see ``atomic_torch_save``).
    Remote paths (``s3://...``) keep Lightning's behaviour.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_torch_save(checkpoint, path)

"""Checkpoint files that are either the old version or the new one, never a truncated mix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.fabric.utilities.types import _PATH

from unetlab.atomic_file import atomic_file


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` through :func:`~unetlab.atomic_file.atomic_file`.

    A process killed at any moment leaves either the previous checkpoint or the complete new
    one (and at most a stale hidden temporary file, removed by the next save).
    """
    with atomic_file(path) as temp, open(temp, "wb") as handle:
        torch.save(obj, handle)


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

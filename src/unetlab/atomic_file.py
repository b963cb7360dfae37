"""Files that are either the old version or the new one, never a truncated or mixed file."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEMP_SUFFIX = ".tmp"


def temp_path_for(path: Path) -> Path:
    """The hidden file beside ``path`` that a new version of it is written to first."""
    return path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; once the block succeeds, it replaces ``path``.

    The temporary file is synced and renamed over ``path`` (``os.replace`` within one folder
    is atomic): a process killed at any moment leaves the previous file or the complete new
    one. A block that raises leaves ``path`` untouched and removes the temporary file. Stale
    temporary files of earlier killed writers are removed after a successful write.

    Args:
        path: The file to write; its folder is created if missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(path)
    try:
        yield temp
        with open(temp, "rb+") as handle:
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


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`atomic_file`."""
    with atomic_file(path) as temp:
        temp.write_text(text)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` through :func:`atomic_file`."""
    write_text_atomic(path, json.dumps(data, indent=2))


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (skipped where folders cannot be opened or synced)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

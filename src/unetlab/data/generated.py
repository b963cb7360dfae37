"""Procedural datasets generated once into a cache folder named after their parameters."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from unetlab.data.samples import Sample, find_samples

DONE_MARKER = "dataset.json"
SUBFOLDERS = ("images", "masks", "instances")


class GeneratedDataset:
    """Base of the embedded datasets: an ``images/`` + ``masks/`` + ``instances/`` folder.

    The folder is generated once per parameter set under ``root`` (named by a hash of
    :attr:`params`) and reused afterwards; generation writes to a temporary folder that is
    renamed into place, so an interrupted run never leaves a half-written dataset behind.
    Subclasses name the folder (``prefix``), list their parameters and write the files.

    Args:
        root: Cache folder (git ignores it).
    """

    prefix = "generated"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def params(self) -> dict:
        """Everything the generated files depend on."""
        raise NotImplementedError

    def write(self, folder: Path) -> None:
        """Write the dataset into ``folder``, whose sub-folders already exist."""
        raise NotImplementedError

    @property
    def folder(self) -> Path:
        """Folder of this parameter set."""
        digest = hashlib.sha1(json.dumps(self.params, sort_keys=True).encode()).hexdigest()[:10]
        return self.root / f"{self.prefix}_{digest}"

    def prepare(self) -> Path:
        """Generate the dataset if it is not cached yet; return its folder."""
        if (self.folder / DONE_MARKER).exists():
            return self.folder
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp_{self.prefix}_", dir=self.root))
        try:
            for sub in SUBFOLDERS:
                (tmp / sub).mkdir()
            self.write(tmp)
            (tmp / DONE_MARKER).write_text(json.dumps(self.params, indent=2))
            if (self.folder / DONE_MARKER).exists():
                shutil.rmtree(tmp)
            else:
                shutil.rmtree(self.folder, ignore_errors=True)
                tmp.rename(self.folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.folder

    def samples(self) -> list[Sample]:
        """The generated image / mask / instance-label triples."""
        return find_samples(self.prepare())

"""``data=isbi2012``: both layouts, membrane as the target class, and the optional download."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hydra.utils import instantiate
from PIL import Image

from unetlab.data import Isbi2012
from unetlab.data.download import download_file

REAL_ISBI = Path("/work/shared/data/isbi2012_em")
SIZE = 24


def em_slices(count: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Fake EM: cells (255) separated by a membrane grid (0); membrane pixels are dark."""
    labels = np.full((count, SIZE, SIZE), 255, np.uint8)
    for index in range(count):
        labels[index, :, 5 + index] = 0
        labels[index, 11 + index % 3, :] = 0
    images = np.where(labels == 0, 30, 200).astype(np.uint8)
    return images, labels


def write_stacks(root: Path, count: int = 5) -> Path:
    images, labels = em_slices(count)
    root.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(root / "train-volume.tif", images, photometric="minisblack")
    tifffile.imwrite(root / "train-labels.tif", labels, photometric="minisblack")
    return root


def write_pngs(root: Path, count: int = 5) -> Path:
    images, labels = em_slices(count)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for index in range(count):
        Image.fromarray(images[index]).save(root / "images" / f"{index:02d}.png")
        Image.fromarray(labels[index]).save(root / "masks" / f"{index:02d}.png")
    return root


def isbi_datamodule(make_config, root: Path, *overrides: str):
    cfg = make_config(
        ["data=isbi2012", f"data.root={root}", "data.patch_size=16", *overrides], tiny=False
    )
    return instantiate(cfg.data)


@pytest.mark.parametrize("layout", [write_stacks, write_pngs])
def test_both_layouts_give_membrane_as_class_1(make_config, tmp_path: Path, layout) -> None:
    root = layout(tmp_path / "isbi")
    dm = isbi_datamodule(make_config, root)
    dm.setup()
    assert dm.class_names == ["cell", "membrane"]
    samples = [s for d in dm.datasets.values() for s in d.samples]
    assert len(samples) == 5
    for sample in samples:
        membrane = sample.image[..., 0] < 0.5
        assert np.array_equal(sample.mask == 1, membrane)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape[-2:] == (16, 16)


def test_stack_names_pages_and_checks_page_counts(tmp_path: Path) -> None:
    root = write_stacks(tmp_path)
    samples = Isbi2012(root).samples()
    assert [s.name for s in samples] == [f"slice_{i:02d}" for i in range(5)]
    assert [s.page for s in samples] == list(range(5))
    tifffile.imwrite(root / "train-labels.tif", em_slices(4)[1], photometric="minisblack")
    with pytest.raises(ValueError, match=r"train-labels\.tif: 4 label slices for 5"):
        Isbi2012(root).samples()


def test_weight_map_objects_are_the_cells(make_config, tmp_path: Path) -> None:
    dm = isbi_datamodule(make_config, write_stacks(tmp_path / "isbi"))
    seen = []
    dm.weight_map_fn = lambda objects, mask: (seen.append((objects, mask)), mask * 1.0)[1]
    dm.setup()
    objects, mask = seen[0]
    assert np.array_equal(objects > 0, mask == 0)  # cells = class 0 = objects
    assert objects.max() == 4  # the membrane cross cuts the image into four cells


def test_missing_data_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"train-volume.tif.*data.root=PATH"):
        Isbi2012(tmp_path).samples()
    with pytest.raises(ValueError, match=r"data\.source\.volume_url"):
        Isbi2012(tmp_path, download=True).samples()


class FlakyHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a folder; the first request of each path fails with 503."""

    failed: set[str]

    def do_GET(self) -> None:
        if self.path not in self.failed:
            self.failed.add(self.path)
            self.send_error(503)
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on loopback serving ``tmp_path/served``."""
    served = tmp_path / "served"
    served.mkdir()
    handler = partial(FlakyHandler, directory=str(served))
    FlakyHandler.failed = set()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    httpd.shutdown()
    httpd.server_close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_retries_checks_and_writes_atomically(server, tmp_path: Path) -> None:
    url, served = server
    write_stacks(served)
    target = tmp_path / "isbi"
    source = Isbi2012(
        target,
        download=True,
        volume_url=f"{url}/train-volume.tif",
        volume_sha256=sha256(served / "train-volume.tif"),
        labels_url=f"{url}/train-labels.tif",
        labels_sha256=sha256(served / "train-labels.tif"),
    )
    assert len(source.samples()) == 5  # each first request failed with 503 and was retried
    assert sorted(p.name for p in target.iterdir()) == ["train-labels.tif", "train-volume.tif"]
    stamp = (target / "train-volume.tif").stat().st_mtime_ns
    source.prepare()  # already there: not fetched again
    assert (target / "train-volume.tif").stat().st_mtime_ns == stamp


def test_download_with_wrong_checksum_leaves_nothing(server, tmp_path: Path) -> None:
    url, served = server
    (served / "file.bin").write_bytes(b"payload")
    destination = tmp_path / "out" / "file.bin"
    with pytest.raises(RuntimeError, match=r"file.bin: download to .* failed .*SHA-256"):
        download_file(f"{url}/file.bin", destination, "0" * 64, retries=2, backoff=0.0)
    assert list(destination.parent.iterdir()) == []
    with pytest.raises(RuntimeError, match="404"):
        download_file(f"{url}/missing.bin", destination, "0" * 64, retries=3, backoff=0.0)


@pytest.mark.slow
@pytest.mark.skipif(not REAL_ISBI.is_dir(), reason=f"{REAL_ISBI} not present")
def test_real_isbi_folder(make_config) -> None:
    dm = isbi_datamodule(make_config, REAL_ISBI, "data.patch_size=null")
    dm.setup()
    samples = [s for d in dm.datasets.values() for s in d.samples]
    assert len(samples) == 30
    assert all(s.image.shape == (512, 512, 1) for s in samples)
    masks = np.stack([s.mask for s in samples])
    assert set(np.unique(masks)) == {0, 1}
    assert 0.15 < (masks == 1).mean() < 0.3  # membrane fraction

"""Failures in other processes: a killed DDP process ends the run; worker errors name the file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import tifffile
from torch.utils.data import DataLoader

from tests.conftest import TINY_OVERRIDES, command_env, train_command
from unetlab.cli.errors import error_summary
from unetlab.data.dataset import SegmentationDataset
from unetlab.data.decoding import DecodedSample, LazySamples, SampleDecoder
from unetlab.data.masks import MaskEncoding
from unetlab.data.samples import Sample


@pytest.mark.ddp
@pytest.mark.timeout(400)
def test_killed_ddp_process_ends_the_run_with_a_clear_message(tmp_path: Path, data_cache: Path):
    marker = tmp_path / "rank1.pid"
    run = subprocess.Popen(
        train_command(
            [
                *TINY_OVERRIDES,
                f"paths.cache_dir={data_cache}",
                "trainer=ddp_cpu",
                "data.batch_size=2",
                "+callbacks.pause._target_=tests.faults.PauseAtStep",
                "+callbacks.pause.step=1",
                "+callbacks.pause.rank=1",
                f"+callbacks.pause.marker={marker}",
            ]
        ),
        cwd=tmp_path,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert run.poll() is None, run.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "rank 1 never reached the step to kill it at"
        time.sleep(0.2)
    os.kill(int(marker.read_text()), signal.SIGKILL)
    killed_at = time.monotonic()
    _, stderr = run.communicate(timeout=120)
    assert time.monotonic() - killed_at < 60
    assert run.returncode == 1
    last = stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"unetlab-train: error: DDP process 1 terminated with signal SIGKILL; .*", last
    ), last


def write_sample(folder: Path, name: str) -> Sample:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    image, mask = folder / "images" / f"{name}.tif", folder / "masks" / f"{name}.tif"
    tifffile.imwrite(image, np.full((8, 8), 100, np.uint8))
    tifffile.imwrite(mask, np.zeros((8, 8), np.uint8))
    return Sample(name, image, mask)


def first_error(dataset: SegmentationDataset) -> BaseException:
    loader = DataLoader(dataset, batch_size=1, num_workers=1)
    with pytest.raises(ValueError) as error:
        list(loader)
    return error.value


@pytest.mark.timeout(120)
def test_file_broken_after_the_check_is_named_by_the_worker_error(tmp_path: Path):
    samples = [write_sample(tmp_path, name) for name in ("a", "b", "c")]
    decoder = SampleDecoder(1, MaskEncoding(2))
    dataset = SegmentationDataset(LazySamples(decoder, samples))
    assert len(list(DataLoader(dataset, batch_size=1, num_workers=1))) == 3
    broken = samples[1].image
    broken.write_bytes(broken.read_bytes()[:20])

    error = first_error(dataset)
    assert f"{broken}: cannot read image" in str(error)
    summary = error_summary(error)
    assert summary.startswith(f"ValueError: {broken}: cannot read image")
    assert summary.endswith("(in DataLoader worker process 0)")
    assert "\n" not in summary


class FailsOnDarkImages(A.ImageOnlyTransform):
    """An augmentation with a bug that only some images trigger."""

    def apply(self, img: np.ndarray, **params) -> np.ndarray:
        if img.max() < 0.5:
            raise ZeroDivisionError("division by zero")
        return img


@pytest.mark.timeout(120)
def test_augmentation_error_in_a_worker_names_the_sample():
    bright = DecodedSample("bright", np.ones((8, 8, 1), np.float32), np.zeros((8, 8), np.int16))
    dark = DecodedSample("dark_07", np.zeros((8, 8, 1), np.float32), np.zeros((8, 8), np.int16))
    dataset = SegmentationDataset([bright, dark], A.Compose([FailsOnDarkImages(p=1.0)]), seed=0)
    summary = error_summary(first_error(dataset))
    assert summary.startswith("ValueError: dark_07: augmentation failed (ZeroDivisionError")
    assert summary.endswith("(in DataLoader worker process 0)")

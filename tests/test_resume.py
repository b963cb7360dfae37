"""Resuming: a run killed mid-epoch continues from last.ckpt and ends as if never stopped."""

from __future__ import annotations

import csv
import math
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY_OVERRIDES, command_env, train_command
from unetlab.checkpoint import load_checkpoint
from unetlab.config import ConfigError
from unetlab.data.sampler import EpochShuffleSampler
from unetlab.reliability import find_last_checkpoint
from unetlab.reliability.resume import prepare_resume
from unetlab.train import train

# Eight training images in batches of two: four steps per epoch; three epochs.
RESUME_OVERRIDES = (
    *TINY_OVERRIDES,
    "data.batch_size=2",
    "trainer.max_epochs=3",
    "trainer.deterministic=true",
    "seed=11",
    "model.dropout=0.3",
)
STEPS_PER_EPOCH = 4
COMPARED = ("train/loss_epoch", "val/loss", "val/miou", "val/miou_best", "test/miou", "test/loss")


def start_train(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        train_command(args),
        cwd=cwd,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[str, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-3000:]
    return stdout, stderr


def result_dir(stdout: str) -> Path:
    match = re.search(r"^RESULT .* dir=(\S+)$", stdout, re.MULTILINE)
    assert match, stdout[-2000:]
    return Path(match[1])


def metrics_by_epoch(run_dir: Path) -> dict[tuple[int, str], float]:
    """``(epoch, name) -> value`` of every logged epoch-level metric (test metrics: epoch -1)."""
    values = {}
    with open(run_dir / "metrics.csv") as handle:
        for row in csv.DictReader(handle):
            for name in COMPARED:
                if row.get(name):
                    epoch = -1 if name.startswith("test/") else int(row["epoch"])
                    values[epoch, name] = float(row[name])
    return values


def assert_same_weights(first: Path, second: Path) -> None:
    a = load_checkpoint(first)["state_dict"]
    b = load_checkpoint(second)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key].float(), b[key].float(), rtol=0, atol=1e-6, msg=key)


@pytest.mark.timeout(600)
def test_run_killed_mid_epoch_resumes_to_the_same_metrics(tmp_path: Path, data_cache: Path):
    common = [*RESUME_OVERRIDES, f"paths.cache_dir={data_cache}"]
    reference_dir = tmp_path / "reference"
    reference = start_train([*common, f"hydra.run.dir={reference_dir}"], tmp_path)
    finish(reference)

    # Kill the run in the middle of its second epoch (global step 6 of 4 per epoch).
    marker = tmp_path / "paused"
    killed = start_train(
        [
            *common,
            "+callbacks.pause._target_=tests.faults.PauseAtStep",
            f"+callbacks.pause.step={STEPS_PER_EPOCH + 2}",
            f"+callbacks.pause.marker={marker}",
        ],
        tmp_path,
    )
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert killed.poll() is None, killed.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the run never reached the step to kill it at"
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    (killed_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    last = killed_dir / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["epoch"] == 0  # written at the end of the first epoch
    assert not list(killed_dir.glob("checkpoints/.*.tmp"))

    resumed = start_train([*common, "ckpt_path=last"], tmp_path)
    stdout, _ = finish(resumed)
    assert result_dir(stdout) == killed_dir  # continued in the interrupted run's folder

    expected = metrics_by_epoch(reference_dir)
    got = metrics_by_epoch(killed_dir)
    resumed_keys = [key for key in expected if key[0] != 0]
    assert len(resumed_keys) >= 2 * 3 + 2
    for key in resumed_keys:
        assert math.isclose(got[key], expected[key], rel_tol=0, abs_tol=1e-6), key
    assert_same_weights(reference_dir / "checkpoints" / "last.ckpt", last)
    assert load_checkpoint(last)["epoch"] == 2
    for checkpoint in killed_dir.glob("checkpoints/*.ckpt"):
        load_checkpoint(checkpoint)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_crash_then_resume_in_process_matches(make_config, tmp_path: Path, num_workers: int):
    overrides = [
        *RESUME_OVERRIDES[len(TINY_OVERRIDES) :],
        f"data.num_workers={num_workers}",
        "test=false",
    ]
    elsewhere = tmp_path / "reference"
    reference, _ = train(
        make_config([*overrides, f"paths.output_dir={elsewhere}", f"hydra.run.dir={elsewhere}"])
    )

    crash = [
        "+callbacks.crash._target_=tests.faults.CrashAtStep",
        f"+callbacks.crash.step={2 * STEPS_PER_EPOCH + 1}",
    ]
    with pytest.raises(RuntimeError, match="injected crash"):
        train(make_config([*overrides, *crash]))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    # last.ckpt follows every epoch, also when the monitored metric did not improve.
    assert load_checkpoint(last)["epoch"] == 1

    resumed, _ = train(make_config([*overrides, "ckpt_path=last"]))
    for name in ("train/loss_epoch", "val/loss", "val/miou", "val/miou_best"):
        assert math.isclose(resumed[name], reference[name], rel_tol=0, abs_tol=1e-6), name
    assert_same_weights(elsewhere / "checkpoints" / "last.ckpt", last)


def test_epoch_order_and_augmentation_seed_depend_on_seed_and_epoch_only():
    class Recorder(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.seeds: list[int] = []

        def __len__(self) -> int:
            return 10

        def __getitem__(self, index: int) -> int:
            return index

        def reseed(self, seed: int) -> None:
            self.seeds.append(seed)

    walked = Recorder()
    sampler = EpochShuffleSampler(walked, seed=5)
    orders = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        orders.append(list(sampler))
    fresh = Recorder()
    resumed = EpochShuffleSampler(fresh, seed=5, epoch=2)
    assert list(resumed) == orders[2]
    assert fresh.seeds[-1] == walked.seeds[-1]
    assert resumed.generator.initial_seed() == sampler.generator.initial_seed()
    assert orders[0] != orders[1] and sorted(orders[0]) == list(range(10))
    assert list(EpochShuffleSampler(Recorder(), seed=6, epoch=2)) != orders[2]


def test_last_means_own_folder_first_then_newest_run(tmp_path: Path):
    runs = tmp_path / "runs"
    older, newer, own = runs / "a", runs / "b", tmp_path / "own"
    for run, age in ((older, 200), (newer, 100)):
        path = run / "checkpoints" / "last.ckpt"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
        os.utime(path, (time.time() - age, time.time() - age))
    assert find_last_checkpoint(own, runs) == newer / "checkpoints" / "last.ckpt"
    (own / "checkpoints").mkdir(parents=True)
    (own / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert find_last_checkpoint(own, runs) == own / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match=r"no last\.ckpt found"):
        find_last_checkpoint(tmp_path / "elsewhere", tmp_path / "none")


def test_last_without_checkpoint_is_one_clear_error(make_config):
    with pytest.raises(ConfigError, match=r"ckpt_path=last: no last.ckpt found"):
        train(make_config(["ckpt_path=last"]))
    with pytest.raises(ConfigError, match=r"ckpt_path=/no/such.ckpt: file not found"):
        train(make_config(["ckpt_path=/no/such.ckpt"]))


def test_resume_refuses_weights_only_and_other_network(make_config, tmp_path: Path):
    cfg = make_config()
    path = tmp_path / "weights.ckpt"
    torch.save({"state_dict": {}}, path)
    cfg.ckpt_path = str(path)
    with pytest.raises(ConfigError, match="holds weights only"):
        prepare_resume(cfg)
    stored = {"model": {**dict(cfg.model), "base_channels": 8}}
    torch.save({"optimizer_states": [], "loops": {}, "unetlab_config": stored}, path)
    with pytest.raises(ConfigError, match=r"model.base_channels=4 here, 8 in the checkpoint"):
        prepare_resume(cfg)


def test_resume_keeps_earlier_metrics(make_config, tmp_path: Path):
    cfg = make_config()
    run = Path(cfg.paths.output_dir)
    last = run / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    torch.save({"optimizer_states": [], "loops": {}}, last)
    (run / "metrics.csv").write_text("epoch,val/miou\n0,0.5\n")
    cfg.ckpt_path = "last"
    assert prepare_resume(cfg) == last
    assert cfg.ckpt_path == str(last)
    assert (run / "metrics_before_resume.csv").read_text().startswith("epoch")
    assert not (run / "metrics.csv").exists()

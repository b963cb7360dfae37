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
from lightning.pytorch.loggers import CSVLogger

from tests.conftest import TINY_OVERRIDES, command_env, train_command
from unetlab.checkpoint import load_checkpoint
from unetlab.config import ConfigError
from unetlab.data.sampler import EpochShuffleSampler
from unetlab.run.resume import find_last_checkpoint, prepare_resume
from unetlab.run.resumed_metrics import restore_metrics
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


# Fault callbacks that pause a run at one moment, to be killed there (see tests/faults.py).
KILL_MOMENTS = {
    # The first checkpoint file (epoch 0's best) is complete; last.ckpt is not written yet.
    "first_checkpoint": [
        "trainer.plugins=[{_target_:tests.faults.PauseAfterFirstSave,marker:'{marker}'}]"
    ],
    "mid_epoch": [
        "+callbacks.pause._target_=tests.faults.PauseAtStep",
        f"+callbacks.pause.step={STEPS_PER_EPOCH + 2}",
        "+callbacks.pause.marker='{marker}'",
    ],
    "validation": [
        "+callbacks.pause._target_=tests.faults.PauseInStage",
        "+callbacks.pause.stage=validation",
        "+callbacks.pause.epoch=1",
        "+callbacks.pause.marker='{marker}'",
    ],
    "test": [
        "+callbacks.pause._target_=tests.faults.PauseInStage",
        "+callbacks.pause.stage=test",
        "+callbacks.pause.marker='{marker}'",
    ],
}
RESULT_LINE = re.compile(r"^RESULT (.*)$", re.MULTILINE)


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


def result_fields(stdout: str) -> dict[str, str]:
    """The ``RESULT`` line as ``{name: value}``."""
    match = RESULT_LINE.search(stdout)
    assert match, stdout[-2000:]
    return dict(part.split("=", 1) for part in match[1].split())


def metrics_rows(run_dir: Path) -> list[dict[str, float]]:
    """The rows of ``metrics.csv``, each as its non-empty cells; exactly one header."""
    text = (run_dir / "metrics.csv").read_text()
    assert sum(line.startswith("epoch,") for line in text.splitlines()) == 1
    with open(run_dir / "metrics.csv") as handle:
        return [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(handle)]


def assert_same_weights(first: Path, second: Path) -> None:
    a = load_checkpoint(first)["state_dict"]
    b = load_checkpoint(second)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key].float(), b[key].float(), rtol=0, atol=1e-6, msg=key)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory, data_cache: Path) -> tuple[Path, str]:
    """One uninterrupted run: its folder and its standard output."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    stdout, _ = finish(
        start_train(
            [*RESUME_OVERRIDES, f"paths.cache_dir={data_cache}", f"hydra.run.dir={run_dir}"],
            run_dir.parent,
        )
    )
    return run_dir, stdout


def kill_at(args: list[str], fault: list[str], marker: Path, cwd: Path) -> None:
    """Start ``train.py ARGS FAULT``, wait until the fault pauses it, and SIGKILL it."""
    killed = start_train([*args, *(item.replace("{marker}", str(marker)) for item in fault)], cwd)
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert killed.poll() is None, killed.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the run never reached the moment to kill it at"
        time.sleep(0.1)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL


@pytest.mark.timeout(600)
@pytest.mark.parametrize("moment", list(KILL_MOMENTS))
def test_killed_run_resumes_to_the_result_of_an_uninterrupted_one(
    moment: str, reference_run: tuple[Path, str], tmp_path: Path, data_cache: Path
):
    reference_dir, reference_stdout = reference_run
    run_dir = tmp_path / "run"
    args = [*RESUME_OVERRIDES, f"paths.cache_dir={data_cache}", f"hydra.run.dir={run_dir}"]
    kill_at(args, KILL_MOMENTS[moment], tmp_path / "paused", tmp_path)
    assert not list(run_dir.glob("checkpoints/.*.tmp"))
    if moment == "first_checkpoint":
        assert [path.name for path in run_dir.glob("checkpoints/*.ckpt")] == ["epoch_000.ckpt"]

    stdout, _ = finish(start_train([*args, "ckpt_path=last"], tmp_path))
    print(f"uninterrupted: {RESULT_LINE.search(reference_stdout)[0]}")
    print(f"killed at {moment}, resumed: exit 0, {RESULT_LINE.search(stdout)[0]}")
    result, expected = result_fields(stdout), result_fields(reference_stdout)
    assert result["dir"] == str(run_dir)
    for name in ("val/miou_best", "test/miou"):
        assert result[name] == expected[name], name
    assert Path(result["ckpt"]).name == Path(expected["ckpt"]).name
    assert_same_weights(
        reference_dir / "checkpoints" / "last.ckpt", run_dir / "checkpoints" / "last.ckpt"
    )

    # One metrics.csv: the rows before the kill, then those of the resumed run, as in the
    # uninterrupted run. A kill right after epoch 0's checkpoint comes before that epoch's
    # training loss is logged; the resumed run starts at epoch 1.
    reference_rows = metrics_rows(reference_dir)
    if moment == "first_checkpoint":
        reference_rows = [
            row for row in reference_rows if not ("train/loss_epoch" in row and row["epoch"] == 0)
        ]
    rows = metrics_rows(run_dir)
    assert [row.keys() for row in rows] == [row.keys() for row in reference_rows]
    for row, reference_row in zip(rows, reference_rows, strict=True):
        assert row == pytest.approx(reference_row, rel=0, abs=1e-6)
    assert not (run_dir / "metrics_before_resume.csv").exists()


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
    def write(path: Path, age: float) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        os.utime(path, (time.time() - age, time.time() - age))
        return path

    runs, own = tmp_path / "runs", tmp_path / "own"
    write(runs / "a" / "checkpoints" / "last.ckpt", 200)
    newer = write(runs / "b" / "checkpoints" / "last.ckpt", 100)
    assert find_last_checkpoint(own, runs) == newer
    # Killed after the best checkpoint of an epoch, before last.ckpt: the newer file wins.
    write(own / "checkpoints" / "last.ckpt", 60)
    best = write(own / "checkpoints" / "epoch_001.ckpt", 50)
    assert find_last_checkpoint(own, runs) == best
    # Both written at one moment: last.ckpt.
    last = write(own / "checkpoints" / "last.ckpt", 50)
    assert find_last_checkpoint(own, runs) == last
    with pytest.raises(ConfigError, match=r"no checkpoint found"):
        find_last_checkpoint(tmp_path / "elsewhere", tmp_path / "none")


def test_last_without_checkpoint_is_one_clear_error(make_config):
    with pytest.raises(ConfigError, match=r"ckpt_path=last: no checkpoint found"):
        train(make_config(["ckpt_path=last"]))
    with pytest.raises(FileNotFoundError, match=r"ckpt_path=/no/such.ckpt: file not found"):
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


def test_resume_continues_one_metrics_file(make_config, tmp_path: Path):
    cfg = make_config()
    run = Path(cfg.paths.output_dir)
    last = run / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    loops = {"fit_loop": {"epoch_loop.state_dict": {"_batches_that_stepped": 4}}}
    torch.save({"optimizer_states": [], "loops": loops}, last)
    # Steps 0-3 came before the checkpoint; steps 4 and 5 are replayed by the resumed run.
    (run / "metrics.csv").write_text(
        "epoch,step,train/loss_step,val/miou\n0,1,0.9,\n0,3,,0.5\n1,4,0.7,\n1,5,0.6,\n"
    )
    cfg.ckpt_path = "last"
    assert prepare_resume(cfg) == last
    assert cfg.ckpt_path == str(last)
    assert not (run / "metrics.csv").exists()
    # Killed again before the loggers started: the next resume finds the rows set aside.
    assert prepare_resume(cfg) == last

    logger = CSVLogger(run, name="", version="")
    logger.log_hyperparams({"seed": 1})  # starts the writer, which deletes a metrics.csv
    restore_metrics(run, [logger])
    logger.log_metrics({"train/loss_step": 0.75, "lr-AdamW": 0.001, "epoch": 1}, step=4)
    logger.save()
    lines = (run / "metrics.csv").read_text().splitlines()
    assert lines == [
        "epoch,lr-AdamW,step,train/loss_step,val/miou",
        "0,,1,0.9,",
        "0,,3,,0.5",
        "1,0.001,4,0.75,",
    ]
    assert not (run / "metrics_before_resume.csv").exists()

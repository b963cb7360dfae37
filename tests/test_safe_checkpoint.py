"""Checkpoints load with weights_only=True: a malicious pickle never runs; saves are atomic."""

from __future__ import annotations

import builtins
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import hydra
import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from unetlab.atomic_file import temp_path_for
from unetlab.checkpoint import load_checkpoint, load_trained_model
from unetlab.checkpoint.writing import AtomicCheckpointIO, atomic_torch_save
from unetlab.config import ConfigError
from unetlab.train import train


class CreatesFile:
    """Unpickling this object opens (and so creates) ``path``: a stand-in for any code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return builtins.open, (self.path, "w")


def malicious_checkpoint(path: Path, marker: Path, legacy: bool = False) -> Path:
    payload = {"state_dict": {"net.weight": torch.zeros(2)}, "epoch": 0, "x": CreatesFile(marker)}
    if legacy:
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path)
    return path


def test_the_payload_really_runs_code_when_unpickled(tmp_path: Path):
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(CreatesFile(marker)))
    assert marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-pickle"])
def test_load_checkpoint_refuses_malicious_pickle(tmp_path: Path, legacy: bool):
    marker = tmp_path / "pwned"
    path = malicious_checkpoint(tmp_path / "evil.ckpt", marker, legacy)
    with pytest.raises(ValueError, match=r"evil.ckpt: refused to load") as error:
        load_checkpoint(path)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="refused to load"):
        load_trained_model(path)
    assert not marker.exists()


def test_training_refuses_malicious_resume_checkpoint(make_config, tmp_path: Path):
    marker = tmp_path / "pwned"
    path = malicious_checkpoint(tmp_path / "evil.ckpt", marker)
    with pytest.raises(ConfigError, match=r"ckpt_path: .*evil.ckpt: refused to load"):
        train(make_config([f"ckpt_path={path}"]))
    assert not marker.exists()


def test_lightning_test_with_weights_only_refuses_malicious_pickle(tmp_path: Path):
    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def test_step(self, batch, batch_idx):
            return self.layer(batch).sum()

    marker = tmp_path / "pwned"
    path = malicious_checkpoint(tmp_path / "evil.ckpt", marker)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        trainer.test(Tiny(), DataLoader(torch.zeros(2, 2)), ckpt_path=path, weights_only=True)
    assert not marker.exists()


def test_truncated_checkpoint_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:1500])
    with pytest.raises(ValueError, match=r"last.ckpt: not a readable checkpoint .* truncated"):
        load_checkpoint(path)


def test_failed_save_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"epoch": 1}, path)

    def broken_save(obj, handle):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_torch_save({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


WRITER = """
import sys, torch
from unetlab.checkpoint.writing import AtomicCheckpointIO
io, step = AtomicCheckpointIO(), 0
payload = torch.randn(4_000_000)
while True:
    step += 1
    io.save_checkpoint({"step": step, "w": payload * 0 + step}, sys.argv[1])
    print(step, flush=True)
"""


@pytest.mark.timeout(240)
def test_writer_killed_at_any_moment_leaves_a_loadable_checkpoint(tmp_path: Path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    for delay in (0.5, 0.9, 1.3, 1.7):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout is not None
        writer.stdout.readline()  # at least one checkpoint is complete
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        checkpoint = load_checkpoint(path)
        assert bool((checkpoint["w"] == checkpoint["step"]).all())
    # The next save clears temporary files a killed writer left behind.
    AtomicCheckpointIO().save_checkpoint({"step": 0}, path)
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]
    assert not temp_path_for(path).exists()


def test_trainer_config_writes_checkpoints_atomically(make_config):
    trainer = hydra.utils.instantiate(make_config().trainer, logger=False)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)

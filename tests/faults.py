"""Faults injected into test runs as callbacks (``+callbacks.<name>._target_=tests.faults.X``)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import lightning as L
import torch

from unetlab.checkpoint.writing import AtomicCheckpointIO


def pause(marker: Path, seconds: float) -> None:
    """Write this process's id to ``marker``, then wait (to be killed)."""
    marker.write_text(str(os.getpid()))
    time.sleep(seconds)


class PauseAtStep(L.Callback):
    """At global step ``step`` (on ``rank``), write the process id to ``marker`` and wait.

    The waiting process is meant to be killed by the test that reads the marker.
    """

    def __init__(self, step: int, marker: str, rank: int = 0, seconds: float = 120.0) -> None:
        self.step = step
        self.marker = Path(marker)
        self.rank = rank
        self.seconds = seconds

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step and trainer.global_rank == self.rank:
            pause(self.marker, self.seconds)


class PauseInStage(L.Callback):
    """At the first batch of ``stage`` (``validation`` or ``test``) in ``epoch``, pause.

    ``epoch=None`` means any epoch; the sanity check's validation does not count.
    """

    def __init__(
        self, stage: str, marker: str, epoch: int | None = None, seconds: float = 120.0
    ) -> None:
        self.stage = stage
        self.marker = Path(marker)
        self.epoch = epoch
        self.seconds = seconds

    def _maybe_pause(self, trainer: L.Trainer, stage: str) -> None:
        if stage != self.stage or trainer.sanity_checking:
            return
        if self.epoch is None or trainer.current_epoch == self.epoch:
            pause(self.marker, self.seconds)

    def on_validation_batch_start(self, trainer: L.Trainer, *args, **kwargs) -> None:
        self._maybe_pause(trainer, "validation")

    def on_test_batch_start(self, trainer: L.Trainer, *args, **kwargs) -> None:
        self._maybe_pause(trainer, "test")


class PauseAfterFirstSave(AtomicCheckpointIO):
    """Checkpoint writer that pauses as soon as the run's first checkpoint file is complete.

    That file is the best checkpoint of epoch 0; ``last.ckpt`` is written next.
    """

    def __init__(self, marker: str, seconds: float = 120.0) -> None:
        super().__init__()
        self.marker = Path(marker)
        self.seconds = seconds

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        super().save_checkpoint(checkpoint, path, storage_options)
        pause(self.marker, self.seconds)


class CrashAtStep(L.Callback):
    """Raise ``RuntimeError`` at global step ``step`` (a crash in the middle of an epoch)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError(f"injected crash at step {self.step}")


class PoisonBatch(L.Callback):
    """Fill the input images of the batches at ``steps`` with ``value`` (NaN, Inf)."""

    def __init__(self, steps: list[int], value: float = float("nan")) -> None:
        self.steps = set(steps)
        self.value = value

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step in self.steps:
            batch["image"].fill_(self.value)


class WeightProbe(L.Callback):
    """Record, per global step, the gradient norm after clipping and whether the weights moved."""

    def __init__(self) -> None:
        self.grad_norms: dict[int, float] = {}
        self.weights_changed: dict[int, bool] = {}
        self._before: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        self._before = [p.detach().clone() for p in pl_module.parameters()]

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step - 1
        grads = [p.grad.detach().float() for p in pl_module.parameters() if p.grad is not None]
        if grads:
            self.grad_norms[step] = float(
                torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))
            )
        self.weights_changed[step] = any(
            not torch.equal(before, p)
            for before, p in zip(self._before, pl_module.parameters(), strict=True)
        )


class KillAtFit(L.Callback):
    """Kill the process (SIGKILL) at the start of its ``at``-th fit, counted in ``counter``.

    The count lives in a file, so runs that share it (the trials of a sweep, a resumed
    sweep) count on from each other and only the ``at``-th fit of all is killed.
    """

    def __init__(self, counter: str, at: int) -> None:
        self.counter = Path(counter)
        self.at = at

    def on_fit_start(self, trainer: L.Trainer, pl_module) -> None:
        count = int(self.counter.read_text()) + 1 if self.counter.is_file() else 1
        self.counter.write_text(str(count))
        if count == self.at:
            os.kill(os.getpid(), signal.SIGKILL)

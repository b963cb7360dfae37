"""Guarding training against NaN and infinite losses."""

from __future__ import annotations

import logging
from typing import Any, Literal

import lightning as L
import torch
from torch import Tensor
from torch.optim import Optimizer

log = logging.getLogger(__name__)

FIX_HINT = "lower optimizer.lr, set trainer.gradient_clip_val (e.g. 1.0) or check the input data"


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class NonFiniteLossGuard(L.Callback):
    """Checks every training loss before the backward pass and acts on NaN or Inf.

    ``stop`` ends the run with ``NonFiniteLossError`` naming the global step, the epoch, the
    batch and the learning rate. ``skip`` drops that batch's update (its gradients are
    removed before the optimizer step, so no weight, moment or weight decay changes, and the
    buffers its forward pass changed, such as batch-norm statistics, are restored), logs a
    warning, and goes on; ``max_consecutive_skips`` non-finite losses in a row still stop the
    run, as the weights have then diverged. In a DDP run the decision is shared by all
    processes, so they stop or skip together.

    Args:
        action: ``stop`` or ``skip``.
        max_consecutive_skips: With ``skip``, stop after this many non-finite losses in a row.
    """

    def __init__(
        self, action: Literal["stop", "skip"] = "stop", max_consecutive_skips: int = 10
    ) -> None:
        if action not in ("stop", "skip"):
            raise ValueError(f"callbacks.nan_guard.action={action!r}; expected stop or skip")
        if max_consecutive_skips < 1:
            raise ValueError(
                f"callbacks.nan_guard.max_consecutive_skips={max_consecutive_skips} must be >= 1"
            )
        self.action = action
        self.max_consecutive_skips = max_consecutive_skips
        self.skipped_steps: list[int] = []
        self._consecutive = 0
        self._skip_next_step = False
        self._buffers: list[Tensor] = []

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.action == "skip" and not self._skip_next_step:
            # Restored if this batch is skipped (with gradient accumulation: the first skipped).
            self._buffers = [buffer.detach().clone() for buffer in pl_module.buffers()]

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor
    ) -> None:
        finite_here = bool(torch.isfinite(loss.detach()).all())
        if not trainer.strategy.reduce_boolean_decision(not finite_here, all=False):
            self._consecutive = 0
            return
        value = f"{loss.detach().float().mean().item()}" if not finite_here else None
        where = (
            f"non-finite training loss ({value or 'on another process'}) at global step "
            f"{trainer.global_step} (epoch {trainer.current_epoch}, batch "
            f"{trainer.fit_loop.epoch_loop.batch_idx}), learning rate {learning_rates(trainer)}"
        )
        self._consecutive += 1
        if self.action == "stop":
            raise NonFiniteLossError(
                f"{where}; {FIX_HINT}, or skip such batches with callbacks.nan_guard.action=skip"
            )
        if self._consecutive > self.max_consecutive_skips:
            raise NonFiniteLossError(
                f"{where}: {self._consecutive} non-finite losses in a row, the run has "
                f"diverged; {FIX_HINT}"
            )
        log.warning("%s; skipping this batch's update", where)
        self.skipped_steps.append(trainer.global_step)
        self._skip_next_step = True

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Optimizer
    ) -> None:
        if self._skip_next_step:
            # Optimizers leave parameters without a gradient untouched.
            optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                for saved, buffer in zip(self._buffers, pl_module.buffers(), strict=True):
                    buffer.copy_(saved)
            self._skip_next_step = False


def learning_rates(trainer: L.Trainer) -> str:
    """The optimizers' current learning rates, e.g. ``0.001`` or ``0.001, 0.0001``."""
    rates = sorted({group["lr"] for opt in trainer.optimizers for group in opt.param_groups})
    return ", ".join(f"{float(rate):.4g}" for rate in rates) or "unknown"

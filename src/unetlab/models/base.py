"""``SegmentationNet``: the base of every network, with the options of how it runs.

Every variant takes ``checkpointing``, ``channels_last`` and ``compile`` as keywords, so
they are plain ``model.*`` config keys that rebuild the same network from a run's config.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


class SegmentationNet(nn.Module):
    """Base class of the U-Net variants.

    Subclasses call :meth:`to_memory_format` on their input and run their blocks through
    :func:`checkpointed` when ``self.checkpointing and self.training`` (outside TorchScript).

    Args:
        checkpointing: Activation checkpointing in training: each encoder and decoder
            block keeps only its inputs and recomputes its activations in the backward
            pass. Less memory for about one more forward pass; same loss, gradients and
            batch-norm statistics.
        channels_last: Run in channels-last memory format: inputs are converted in
            ``forward``, weights by :meth:`apply_run_options`.
        compile: Compile the forward with ``torch.compile`` in :meth:`apply_run_options`
            (training applies it; a network rebuilt for inference or export stays eager).
    """

    def __init__(
        self, checkpointing: bool = False, channels_last: bool = False, compile: bool = False
    ) -> None:
        super().__init__()
        self.checkpointing = checkpointing
        self.channels_last = channels_last
        self.torch_compile = compile

    def to_memory_format(self, x: Tensor) -> Tensor:
        """``x`` in the network's memory format (channels-last when asked, else as given)."""
        if self.channels_last:
            if x.dim() == 5:
                return x.contiguous(memory_format=torch.channels_last_3d)
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def apply_run_options(self) -> SegmentationNet:
        """Convert the weights to channels-last and compile the forward, as configured."""
        if self.channels_last:
            volumetric = any(p.dim() == 5 for p in self.parameters())
            self.to(memory_format=torch.channels_last_3d if volumetric else torch.channels_last)
        if self.torch_compile:
            self.compile()
        return self


@contextlib.contextmanager
def _frozen_running_statistics(block: nn.Module) -> Iterator[None]:
    """Normalization layers of ``block`` leave their running statistics as they are.

    A momentum of 0 keeps the running mean and variance exactly while the layer still
    saves the same tensors for backward as in the original forward (which checkpointing
    checks); the batch counter is put back afterwards.
    """
    tracking = [
        m
        for m in block.modules()
        if m.training and getattr(m, "track_running_stats", False) and m.running_mean is not None
    ]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in tracking]
    for module in tracking:
        module.momentum = 0.0
    try:
        yield
    finally:
        for module, (momentum, batches) in zip(tracking, saved, strict=True):
            module.momentum = momentum
            module.num_batches_tracked.copy_(batches)


def _checkpoint_contexts(
    block: nn.Module,
) -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
    return contextlib.nullcontext(), _frozen_running_statistics(block)


def checkpointed(block: nn.Module, *inputs: Tensor | None) -> Tensor:
    """``block(*inputs)``, keeping only the inputs and recomputing the rest in backward.

    Non-reentrant ``torch.utils.checkpoint`` (RNG state preserved, so dropout masks match);
    the recomputation does not update batch-norm running statistics a second time, so the
    network trains exactly as without checkpointing.

    Args:
        block: The module to run.
        *inputs: Its positional arguments.
    """
    return checkpoint(
        block,
        *inputs,
        use_reentrant=False,
        context_fn=functools.partial(_checkpoint_contexts, block),
    )

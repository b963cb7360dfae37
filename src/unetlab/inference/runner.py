"""How tiles run through a network at prediction time: autocast precision and memory format.

``precision=bf16`` or ``fp16`` runs the network under :func:`torch.autocast` (convolutions
in half precision, reductions in float32); ``channels_last`` stores the weights and tiles
pixel-major, the layout oneDNN and cuDNN convolutions are fastest in. Outputs are always
float32, so blending and labels are computed as in full precision.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from unetlab.precision import FASTEST, fastest_dtype

PRECISIONS: dict[str, torch.dtype | None] = {
    "32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
"""Name -> autocast dtype (``None``: float32, no autocast)."""


def parse_precision(value: str | int | None, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype of a ``precision`` setting on ``device``.

    Args:
        value: ``32`` (or ``None``), ``bf16``, ``fp16`` or ``fastest`` (bf16 where the
            device computes it natively, fp16 on GPUs without bf16, else 32).
        device: Where the network runs; CPUs support only ``bf16``.

    Raises:
        ValueError: One line naming the value and the choices.
    """
    name = "32" if value is None else str(value).lower()
    if name == FASTEST:
        name = fastest_dtype(torch.device(device).type)
    if name not in PRECISIONS:
        raise ValueError(
            f"precision={value} is not supported; choose one of {', '.join([*PRECISIONS, FASTEST])}"
        )
    if name == "fp16" and torch.device(device).type == "cpu":
        raise ValueError(
            "precision=fp16 is not supported on the CPU; use precision=bf16 (or 32) there, "
            "fp16 on a GPU"
        )
    return PRECISIONS[name]


def memory_format(rank: int) -> torch.memory_format:
    """The channels-last format of rank-4 (NHWC) or rank-5 (NDHWC) tensors."""
    return torch.channels_last_3d if rank == 5 else torch.channels_last


class TileRunner:
    """Calls a network on batches of tiles with the chosen precision and memory format.

    With ``channels_last`` the network's weights are converted in place once.

    Args:
        net: The network (or any callable on batches) in eval mode.
        dtype: Autocast dtype, or ``None`` for float32.
        channels_last: Run in channels-last memory format.
    """

    def __init__(
        self,
        net: Callable[[torch.Tensor], torch.Tensor],
        dtype: torch.dtype | None = None,
        channels_last: bool = False,
    ) -> None:
        self.net = net
        self.dtype = dtype
        self.channels_last = channels_last
        if channels_last and isinstance(net, nn.Module):
            rank = max((p.dim() for p in net.parameters()), default=4)
            net.to(memory_format=memory_format(rank))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=memory_format(x.dim()))
        autocast = (
            torch.autocast(x.device.type, dtype=self.dtype)
            if self.dtype is not None
            else contextlib.nullcontext()
        )
        with autocast:
            output = self.net(x)
        return output.float().contiguous()

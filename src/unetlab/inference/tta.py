"""Test-time augmentation over the dihedral group D4 (flips and 90-degree rotations).

Each transform acts on the last two axes (the image plane; for volumes, every slice) and
comes with its inverse, which puts the prediction of the transformed input back in place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Transform = Callable[[torch.Tensor], torch.Tensor]


def _rotate(quarter_turns: int) -> Transform:
    return lambda x: torch.rot90(x, quarter_turns, dims=(-2, -1))


def _flip(*dims: int) -> Transform:
    return lambda x: torch.flip(x, dims=dims)


def _transpose(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(-2, -1)


def _antitranspose(x: torch.Tensor) -> torch.Tensor:
    return torch.flip(x, dims=(-2, -1)).transpose(-2, -1)


D4_TRANSFORMS: dict[str, tuple[Transform, Transform]] = {
    "identity": (lambda x: x, lambda x: x),
    "rot90": (_rotate(1), _rotate(-1)),
    "rot180": (_rotate(2), _rotate(2)),
    "rot270": (_rotate(3), _rotate(1)),
    "hflip": (_flip(-1), _flip(-1)),
    "vflip": (_flip(-2), _flip(-2)),
    "transpose": (_transpose, _transpose),
    "antitranspose": (_antitranspose, _antitranspose),
}
"""Name -> (transform, inverse) for the eight elements of D4."""


def parse_tta(tta: str | Sequence[str] | None) -> tuple[str, ...]:
    """The transform names of a ``tta`` setting.

    Args:
        tta: ``None``, ``"none"`` or an empty list (no augmentation), ``"d4"`` (all eight),
            one name, or a list of names from :data:`D4_TRANSFORMS`.
    """
    if tta is None or tta is False or (isinstance(tta, str) and tta.lower() in ("none", "")):
        return ("identity",)
    if isinstance(tta, str):
        if tta.lower() == "d4":
            return tuple(D4_TRANSFORMS)
        tta = [tta]
    names = tuple(dict.fromkeys(str(name) for name in tta))
    unknown = [name for name in names if name not in D4_TRANSFORMS]
    if unknown:
        raise ValueError(
            f"tta={list(names)}: unknown transform {', '.join(unknown)}; choose d4, none or "
            f"a list of {', '.join(D4_TRANSFORMS)}"
        )
    return names or ("identity",)


class TTAPredictor:
    """Averages a predictor's outputs over D4 transforms of its input.

    Args:
        predict: Maps a batch (N, C, ..., H, W) to outputs (N, K, ..., H', W').
        names: Transform names (see :func:`parse_tta`).
    """

    def __init__(
        self, predict: Callable[[torch.Tensor], torch.Tensor], names: Sequence[str]
    ) -> None:
        self.predict = predict
        self.names = parse_tta(list(names))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        total: torch.Tensor | None = None
        for name in self.names:
            forward, inverse = D4_TRANSFORMS[name]
            output = inverse(self.predict(forward(x))).float()
            total = output.clone() if total is None else total.add_(output)
        assert total is not None
        return total.div_(len(self.names))

"""Test-time augmentation over D4: every transform is undone, every prediction lands in place."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from unetlab.inference.tiling import overlap_tile_predict
from unetlab.inference.tta import D4_TRANSFORMS, TTAPredictor, parse_tta
from unetlab.models import UNet


class Passthrough(nn.Module):
    """Same-padding "network" returning its input: any misplaced pixel shows."""

    padding = "same"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


@pytest.mark.parametrize("name", list(D4_TRANSFORMS))
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 2, 3, 5, 7)])
def test_inverse_undoes_the_transform(name: str, shape: tuple[int, ...]) -> None:
    forward, inverse = D4_TRANSFORMS[name]
    x = torch.randn(shape)
    torch.testing.assert_close(inverse(forward(x)), x, rtol=0, atol=0)


def test_the_eight_transforms_are_the_dihedral_group() -> None:
    x = torch.arange(9.0).reshape(1, 1, 3, 3)
    images = {tuple(forward(x).flatten().tolist()) for forward, _ in D4_TRANSFORMS.values()}
    assert len(images) == 8
    for (f, _), (g, _) in itertools.product(D4_TRANSFORMS.values(), repeat=2):
        assert tuple(f(g(x)).flatten().tolist()) in images


@pytest.mark.parametrize("names", [["rot90"], ["hflip", "transpose"], "d4"])
def test_predictions_are_put_back_in_place(names: list[str] | str) -> None:
    x = torch.randn(2, 1, 6, 9)
    torch.testing.assert_close(TTAPredictor(Passthrough(), parse_tta(names))(x), x)


def test_tta_with_tiling_on_a_non_square_image() -> None:
    image = np.random.default_rng(0).normal(size=(1, 45, 70)).astype(np.float32)
    out = overlap_tile_predict(image, Passthrough(), (16, 32), overlap=0.5, tta="d4")
    torch.testing.assert_close(out, torch.from_numpy(image), atol=1e-5, rtol=1e-5)


def test_tta_averages_the_network_over_transforms() -> None:
    torch.manual_seed(0)
    net = UNet(1, 2, base_channels=4, depth=2, padding="valid", norm="none").eval()
    x = torch.randn(1, 1, 44, 60)
    with torch.no_grad():
        expected = (net(x) + torch.flip(net(torch.flip(x, (-1,))), (-1,))) / 2
        torch.testing.assert_close(TTAPredictor(net, ["identity", "hflip"])(x), expected)
        rotated = TTAPredictor(net, ["rot90"])(x)
    assert rotated.shape == net(x).shape


def test_parse_tta() -> None:
    assert parse_tta(None) == parse_tta("none") == parse_tta([]) == ("identity",)
    assert parse_tta("d4") == tuple(D4_TRANSFORMS)
    assert parse_tta("hflip") == ("hflip",)
    assert parse_tta(["vflip", "vflip", "rot90"]) == ("vflip", "rot90")
    with pytest.raises(ValueError, match="unknown transform rot45; choose d4, none or a list"):
        parse_tta(["rot45"])

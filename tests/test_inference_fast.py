"""Fast prediction: autocast precision, channels-last, label-only stitching and its memory."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from unetlab.data.synthetic import generate_nuclei_image
from unetlab.inference.outputs import labels_from_logits
from unetlab.inference.runner import parse_precision
from unetlab.inference.tiling import overlap_tile_predict
from unetlab.models import UNet


def tiny_unet(seed: int = 0, **options) -> UNet:
    """A tiny seeded U-Net without biases, so its labels vary with the input."""
    torch.manual_seed(seed)
    config = {"base_channels": 4, "depth": 2, "padding": "same", "norm": "batch", **options}
    net = UNet(config.pop("in_channels", 1), config.pop("num_classes", 3), **config).eval()
    with torch.no_grad():
        for name, parameter in net.named_parameters():
            if name.endswith("bias"):
                parameter.zero_()
    return net


@functools.lru_cache(maxsize=1)
def trained_nuclei_unet() -> tuple[UNet, np.ndarray]:
    """A tiny U-Net trained for a few seconds on synthetic nuclei, and a held-out image."""
    rng = np.random.default_rng(0)
    pairs = [generate_nuclei_image(rng, 48) for _ in range(4)]
    images = torch.tensor(np.stack([p[0] for p in pairs]) / 255.0, dtype=torch.float32)
    masks = torch.tensor(np.stack([p[1] for p in pairs]) > 0).long()
    net = tiny_unet(num_classes=2, norm="none")
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    net.train()
    for _ in range(40):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(net(images[:, None]), masks)
        loss.backward()
        optimizer.step()
    held_out = generate_nuclei_image(rng, 96)[0][None] / np.float32(255.0)
    return net.eval(), held_out.astype(np.float32)


def test_precision_values_are_parsed_with_one_line_errors() -> None:
    assert parse_precision(32, "cpu") is None
    assert parse_precision("32", "cpu") is None
    assert parse_precision(None, "cpu") is None
    assert parse_precision("bf16", "cpu") is torch.bfloat16
    assert parse_precision("fp16", "cuda") is torch.float16
    assert parse_precision("bf16", "cuda") is torch.bfloat16
    with pytest.raises(
        ValueError, match=r"^precision=fp16 is not supported on the CPU; use precision=bf16"
    ):
        parse_precision("fp16", "cpu")
    with pytest.raises(
        ValueError, match=r"^precision=fp8 is not supported; choose one of 32, bf16, fp16, fastest$"
    ):
        parse_precision("fp8", "cpu")


class ConvSpy(nn.Module):
    """A 1x1 convolution that records the dtype of its output and the layout of its input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.seen: list[tuple[torch.dtype, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output = self.conv(x)
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] == 1
        self.seen.append(
            (
                output.dtype,
                self.conv.weight.is_contiguous(memory_format=torch.channels_last) and channels_last,
            )
        )
        return output


@pytest.mark.parametrize(
    ("precision", "channels_last", "dtype"),
    [(32, False, torch.float32), ("bf16", False, torch.bfloat16), ("bf16", True, torch.bfloat16)],
)
def test_precision_and_memory_format_are_applied(
    precision: str | int, channels_last: bool, dtype: torch.dtype
) -> None:
    spy = ConvSpy().eval()
    image = np.random.default_rng(0).random((1, 40, 50), dtype=np.float32)
    logits = overlap_tile_predict(
        image, spy, tile_size=32, precision=precision, channels_last=channels_last
    )
    assert logits.dtype == torch.float32 and logits.shape == (2, 40, 50)
    assert spy.seen and all(seen_dtype == dtype for seen_dtype, _ in spy.seen)
    if channels_last:
        assert spy.conv.weight.is_contiguous(memory_format=torch.channels_last)
        assert all(layout for _, layout in spy.seen)


def test_bf16_labels_agree_with_fp32_on_a_trained_model() -> None:
    net, image = trained_nuclei_unet()
    full = overlap_tile_predict(image, net, tile_size=48, overlap=0.25)
    fast = overlap_tile_predict(
        image,
        net,
        tile_size=48,
        overlap=0.25,
        precision="bf16",
        channels_last=True,
        labels_only=True,
    )
    reference = labels_from_logits(full)
    assert 0.1 < reference.mean() < 0.9, "the model predicts both classes"
    assert (fast == reference).mean() >= 0.995


def test_channels_last_gives_the_same_results() -> None:
    image = np.random.default_rng(1).random((1, 83, 61), dtype=np.float32)
    plain = overlap_tile_predict(image, tiny_unet(), tile_size=32)
    fast = overlap_tile_predict(image, tiny_unet(), tile_size=32, channels_last=True)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(labels_from_logits(fast), labels_from_logits(plain))
    volume = np.random.default_rng(2).random((1, 13, 23, 17), dtype=np.float32)
    net3d = functools.partial(tiny_unet, spatial_dims=3)
    plain3d = overlap_tile_predict(volume, net3d(), tile_size=16)
    fast3d = overlap_tile_predict(volume, net3d(), tile_size=16, channels_last=True)
    torch.testing.assert_close(fast3d, plain3d, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("shape", "options", "tile", "blend"),
    [
        ((97, 131), {}, 32, "gaussian"),
        ((97, 131), {}, 32, "linear"),
        ((61, 83), {"num_classes": 1}, 24, "gaussian"),
        ((61, 83), {"padding": "valid", "norm": "none"}, 44, "gaussian"),
        ((13, 23, 17), {"spatial_dims": 3}, 8, "gaussian"),
        ((13, 23, 17), {"spatial_dims": 3, "padding": "valid", "norm": "none"}, 44, "gaussian"),
    ],
)
def test_label_only_stitching_equals_argmax_of_full_stitching(
    shape: tuple[int, ...], options: dict, tile: int, blend: str
) -> None:
    net = tiny_unet(**options)
    image = np.random.default_rng(3).normal(size=(1, *shape)).astype(np.float32)
    kwargs = {"tile_size": tile, "overlap": 0.4, "batch_size": 3, "blend": blend}
    full = overlap_tile_predict(image, net, **kwargs)
    labels = overlap_tile_predict(image, net, labels_only=True, **kwargs)
    expected = (full[0] > 0) if full.shape[0] == 1 else full.argmax(0)
    assert labels.dtype == np.uint8 and labels.shape == shape
    np.testing.assert_array_equal(labels, expected.numpy())
    assert len(np.unique(labels)) > 1


def test_label_only_path_allocates_no_full_float_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every float buffer of the stitching is recorded: only the full path has a (K, H, W) one."""
    net = tiny_unet(num_classes=4)
    image = np.random.default_rng(4).random((1, 384, 320), dtype=np.float32)
    full_size = 4 * 384 * 320
    allocated: list[int] = []
    for name in ("zeros", "empty"):
        original = getattr(torch, name)

        def spy(*args, _original=original, **kwargs):
            tensor = _original(*args, **kwargs)
            if tensor.is_floating_point():
                allocated.append(tensor.numel())
            return tensor

        monkeypatch.setattr(torch, name, spy)
    labels = overlap_tile_predict(image, net, tile_size=64, batch_size=4, labels_only=True)
    assert labels.shape == (384, 320) and allocated
    assert max(allocated) <= 4 * 64 * 320 < full_size
    allocated.clear()
    overlap_tile_predict(image, net, tile_size=64, batch_size=4)
    assert max(allocated) == full_size

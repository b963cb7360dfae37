"""UNet, AttentionUNet and UNetPlusPlus: sizes, options, gradients and configs."""

from __future__ import annotations

import functools
import inspect
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from unetlab.config_location import CONFIG_DIR
from unetlab.models import ENCODERS, AttentionUNet, ResNetUNet, UNet, UNetPlusPlus
from unetlab.models.blocks import AttentionGate, ConvBlock

VARIANTS = {"unet": UNet, "attention_unet": AttentionUNet, "unet_plusplus": UNetPlusPlus}


@functools.lru_cache
def tiny(name: str, in_channels: int = 1, num_classes: int = 2, **options: object) -> nn.Module:
    """A small model of variant ``name``, built once per argument set."""
    torch.manual_seed(0)
    options = {"base_channels": 4, "depth": 2, **options}
    return VARIANTS[name](in_channels=in_channels, num_classes=num_classes, **options)


def paper_parameter_count(
    base: int = 64, depth: int = 4, in_channels: int = 1, classes: int = 2
) -> int:
    """Parameters of the paper's U-Net from per-layer formulas (weights + biases)."""

    def conv3x3(c_in: int, c_out: int) -> int:
        return 9 * c_in * c_out + c_out

    def upconv2x2(c_in: int, c_out: int) -> int:
        return 4 * c_in * c_out + c_out

    widths = [base * 2**level for level in range(depth + 1)]
    total = conv3x3(in_channels, widths[0]) + conv3x3(widths[0], widths[0])
    for level in range(1, depth + 1):  # contracting path and bottleneck
        total += conv3x3(widths[level - 1], widths[level]) + conv3x3(widths[level], widths[level])
    for level in range(depth):  # expansive path: up-conv, then two convs on the concatenation
        total += upconv2x2(widths[level + 1], widths[level])
        total += conv3x3(2 * widths[level], widths[level]) + conv3x3(widths[level], widths[level])
    return total + widths[0] * classes + classes  # 1x1 head


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_paper_unet_parameter_count_and_sizes() -> None:
    model = UNet(1, 2, base_channels=64, depth=4, padding="valid", norm="none")
    assert count(model) == paper_parameter_count() == 31_030_658
    assert model.output_shape((572, 572)) == (388, 388)


def test_paper_unet_maps_572_to_388() -> None:
    # Same geometry as the paper's network at a fraction of its width.
    model = tiny("unet", base_channels=1, depth=4, padding="valid", norm="none")
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 572, 572)).shape == (1, 2, 388, 388)


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize(("in_channels", "size"), [(1, (21, 27)), (3, (13, 19))])
@pytest.mark.parametrize("training", [True, False])
def test_same_padding_keeps_odd_sizes(
    name: str, in_channels: int, size: tuple[int, int], training: bool
) -> None:
    model = tiny(name, in_channels, num_classes=3).train(training)
    with torch.no_grad():
        out = model(torch.randn(1, in_channels, *size))
    assert out.shape == (1, 3, *size)
    assert model.output_shape(size) == size


def test_unet_accepts_a_large_odd_image() -> None:
    with torch.no_grad():
        out = tiny("unet", base_channels=2, depth=4).eval()(torch.randn(1, 1, 333, 517))
    assert out.shape == (1, 2, 333, 517)


@pytest.mark.parametrize("name", ["unet", "attention_unet"])
def test_valid_padding_crops_and_checks_sizes(name: str) -> None:
    model = tiny(name, padding="valid", norm="none")
    with torch.no_grad():
        out = model(torch.randn(2, 1, 44, 60))
    assert out.shape == (2, 2, *model.output_shape((44, 60))) == (2, 2, 4, 20)
    with pytest.raises(ValueError, match="nearest valid sizes: 44 or 48"):
        model(torch.randn(1, 1, 45, 60))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_three_dimensional(name: str) -> None:
    model = tiny(name, spatial_dims=3, base_channels=2).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 9, 11, 13))
    assert out.shape == (1, 2, 9, 11, 13)


def test_three_dimensional_valid_unet() -> None:
    model = tiny("unet", spatial_dims=3, base_channels=2, padding="valid", norm="none")
    assert model.output_shape((44, 44, 52)) == (4, 4, 12)
    with torch.no_grad():
        assert model(torch.randn(1, 1, 44, 44, 52)).shape == (1, 2, 4, 4, 12)


@pytest.mark.parametrize("name", ["unet", "attention_unet"])
def test_3d_unet_paper_maps_132x132x116_to_44x44x28(name: str) -> None:
    # Çiçek et al. (2016): three poolings and unpadded convolutions, at a fraction of the width.
    model = tiny(name, spatial_dims=3, base_channels=1, depth=3, padding="valid", norm="none")
    assert model.output_shape((132, 132, 116)) == (44, 44, 28)
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 132, 132, 116)).shape == (1, 2, 44, 44, 28)


@pytest.mark.parametrize(
    ("norm", "norm_order", "upsample", "layers"),
    [
        ("batch", "conv_norm_act", "transposed2x2", (nn.Conv2d, nn.BatchNorm2d, nn.ReLU)),
        ("batch", "conv_act_norm", "transposed3x3", (nn.Conv2d, nn.ReLU, nn.BatchNorm2d)),
        ("instance", "conv_norm_act", "bilinear", (nn.Conv2d, nn.InstanceNorm2d, nn.ReLU)),
        ("group", "conv_act_norm", "transposed2x2", (nn.Conv2d, nn.ReLU, nn.GroupNorm)),
        ("none", "conv_norm_act", "bilinear", (nn.Conv2d, nn.Identity, nn.ReLU)),
    ],
)
def test_unet_options(norm: str, norm_order: str, upsample: str, layers: tuple[type, ...]) -> None:
    model = tiny("unet", norm=norm, norm_order=norm_order, upsample=upsample)
    block = next(m for m in model.modules() if isinstance(m, ConvBlock))
    assert tuple(type(layer) for layer in block) == layers
    assert (block[0].bias is not None) == (norm == "none" or norm_order == "conv_act_norm")
    with torch.no_grad():
        assert model.ups[0].upsample(torch.zeros(1, 16, 3, 5)).shape == (1, 8, 6, 10)
        assert model(torch.randn(2, 1, 19, 23)).shape == (2, 2, 19, 23)


def test_dropout_and_bottleneck_dilation() -> None:
    model = tiny("unet", dropout=0.5, bottleneck_dilation=2)
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.5
    bottleneck_convs = [m for m in model.downs[-1].modules() if isinstance(m, nn.Conv2d)]
    assert [c.dilation for c in bottleneck_convs] == [(2, 2), (2, 2)]
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 1, 21, 21)).shape == (1, 2, 21, 21)


def test_attention_unet_gates_every_skip() -> None:
    model = tiny("attention_unet", depth=3)
    assert isinstance(model, UNet)
    assert sum(isinstance(m, AttentionGate) for m in model.modules()) == 3


def test_deep_supervision_outputs() -> None:
    model = tiny("unet_plusplus", depth=3, norm="none", deep_supervision=True)
    x = torch.randn(1, 1, 21, 19)
    with torch.no_grad():
        outputs = model.train()(x)
        final = model.eval()(x)
    assert isinstance(outputs, list) and len(outputs) == 3
    assert all(o.shape == (1, 2, 21, 19) for o in outputs)
    torch.testing.assert_close(outputs[-1], final)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("unet", {}),
        ("unet", {"padding": "valid", "upsample": "bilinear", "dropout": 0.1}),
        ("attention_unet", {"norm": "group"}),
        ("unet_plusplus", {"deep_supervision": True}),
    ],
)
def test_every_parameter_gets_a_gradient(name: str, options: dict[str, object]) -> None:
    torch.manual_seed(0)
    model = VARIANTS[name](1, 2, base_channels=4, depth=2, **options).train()
    size = 44 if options.get("padding") == "valid" else 21
    out = model(torch.randn(2, 1, size, size))
    loss = sum(o.square().mean() for o in out) if isinstance(out, list) else out.square().mean()
    loss.backward()
    missing = [
        n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert not missing


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("norm", "layer", "choose one of batch, instance, group, none"),
        ("upsample", "nearest", "choose one of transposed2x2, transposed3x3, bilinear"),
        ("padding", "reflect", "choose one of valid, same"),
        ("norm_order", "act_first", "choose one of conv_norm_act, conv_act_norm"),
        ("spatial_dims", 1, "choose 2 or 3"),
    ],
)
def test_unknown_options_list_the_choices(key: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UNet(base_channels=2, depth=1, **{key: value})


@pytest.mark.parametrize(
    ("config", "model_class"),
    [
        ("unet", UNet),
        ("attention_unet", AttentionUNet),
        ("unet_plusplus", UNetPlusPlus),
        ("resnet_unet", ResNetUNet),
    ],
)
def test_config_lists_exactly_the_constructor_keywords(config: str, model_class: type) -> None:
    model_cfg = OmegaConf.load(Path(CONFIG_DIR, "model", f"{config}.yaml"))
    keywords = set(inspect.signature(model_class).parameters)
    assert set(model_cfg) - {"_target_"} == keywords
    if config != "resnet_unet":
        model_cfg.base_channels, model_cfg.depth = 2, 1
    model = hydra.utils.instantiate(model_cfg)
    assert type(model) is model_class


@pytest.mark.parametrize("encoder", ["resnet18", "resnet34", "resnet50", "resnet101"])
def test_encoder_configs_set_a_registered_model_encoder(encoder: str) -> None:
    assert OmegaConf.load(Path(CONFIG_DIR, "encoder", f"{encoder}.yaml")).encoder == encoder
    assert encoder in ENCODERS

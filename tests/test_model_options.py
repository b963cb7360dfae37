"""Options every network takes: activation checkpointing, channels-last, torch.compile."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import pytest
import torch
from omegaconf import DictConfig
from torch import nn
from torch.utils.checkpoint import checkpoint

import unetlab.models.base
from unetlab.models import AttentionUNet, ResNetUNet, SegmentationNet, UNet, UNetPlusPlus
from unetlab.train import train

BUILDERS: dict[str, Callable[..., SegmentationNet]] = {
    "unet": lambda **o: UNet(1, 3, base_channels=4, depth=3, dropout=0.3, **o),
    "unet_valid": lambda **o: UNet(1, 2, base_channels=4, depth=2, padding="valid", **o),
    "attention_unet": lambda **o: AttentionUNet(2, 2, base_channels=4, depth=2, **o),
    "unet_plusplus": lambda **o: UNetPlusPlus(1, 2, base_channels=4, depth=3, **o),
    "unet_plusplus_ds": lambda **o: UNetPlusPlus(
        1, 2, base_channels=4, depth=2, deep_supervision=True, **o
    ),
    "resnet_unet": lambda **o: ResNetUNet(
        1, 2, "resnet18", decoder_channels=(16, 16, 8, 8, 8), **o
    ),
    "unet_3d": lambda **o: UNet(1, 2, base_channels=2, depth=2, spatial_dims=3, **o),
}
INPUT_SHAPES = {"unet_valid": (2, 1, 44, 44), "attention_unet": (2, 2, 40, 36)}


def input_for(name: str) -> torch.Tensor:
    shape = (2, 1, 12, 16, 20) if name == "unet_3d" else INPUT_SHAPES.get(name, (2, 1, 48, 40))
    return torch.randn(shape, generator=torch.Generator().manual_seed(1))


def pair(name: str, **options: object) -> tuple[SegmentationNet, SegmentationNet]:
    """The plain network and a copy with ``options``, same weights, both training."""
    torch.manual_seed(0)
    plain = BUILDERS[name]().train()
    other = BUILDERS[name](**options).train()
    other.load_state_dict(plain.state_dict())
    return plain, other


def output_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
    torch.manual_seed(2)  # same dropout masks for both networks
    return model(x)


def loss_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = output_of(model, x)
    outputs = out if isinstance(out, list) else [out]
    return sum(o.log_softmax(1)[:, 0].mean() + o.square().mean() for o in outputs)


def held_for_backward(model: nn.Module, x: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> int:
    """Bytes the forward keeps for the backward: saved tensors and checkpointed inputs."""
    storages: dict[int, int] = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    def recording_checkpoint(function: Callable, *inputs: object, **options: object) -> object:
        for value in inputs:
            if isinstance(value, torch.Tensor):
                keep(value)
        return checkpoint(function, *inputs, **options)

    with monkeypatch.context() as patch:
        patch.setattr(unetlab.models.base, "checkpoint", recording_checkpoint)
        with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
            loss = loss_of(model, x)
    loss.backward()
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(size for pointer, size in storages.items() if pointer not in parameters)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_checkpointing_gives_the_same_loss_gradients_and_statistics(name: str) -> None:
    plain, checkpointed = pair(name, checkpointing=True)
    x = input_for(name)
    plain_loss, checkpointed_loss = loss_of(plain, x), loss_of(checkpointed, x)
    plain_loss.backward()
    checkpointed_loss.backward()
    torch.testing.assert_close(checkpointed_loss, plain_loss, rtol=0, atol=1e-6)
    gradients = dict(checkpointed.named_parameters())
    for key, parameter in plain.named_parameters():
        torch.testing.assert_close(gradients[key].grad, parameter.grad, rtol=0, atol=1e-6)
    # Recomputation must not update batch-norm running statistics a second time.
    buffers = dict(checkpointed.named_buffers())
    for key, buffer in plain.named_buffers():
        torch.testing.assert_close(buffers[key], buffer, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["unet", "unet_plusplus", "resnet_unet"])
def test_checkpointing_holds_less_for_the_backward(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, checkpointed = pair(name, checkpointing=True)
    x = input_for(name)
    held = held_for_backward(checkpointed, x, monkeypatch)
    assert held < 0.5 * held_for_backward(plain, x, monkeypatch)


def test_checkpointing_only_in_training() -> None:
    plain, checkpointed = pair("unet", checkpointing=True)
    x = input_for("unet")
    with torch.no_grad():
        torch.testing.assert_close(checkpointed.eval()(x), plain.eval()(x), rtol=0, atol=0)


# Without dropout: a channels-last tensor draws its dropout mask in another order.
@pytest.mark.parametrize("name", ["unet_valid", "unet_plusplus", "resnet_unet", "unet_3d"])
def test_channels_last_gives_the_same_output(name: str) -> None:
    plain, channels_last = pair(name, channels_last=True)
    channels_last.apply_run_options()
    layout = torch.channels_last_3d if name == "unet_3d" else torch.channels_last
    first = next(p for p in channels_last.parameters() if p.dim() >= 4)
    assert first.is_contiguous(memory_format=layout)
    x = input_for(name)
    torch.testing.assert_close(
        output_of(channels_last, x), output_of(plain, x), rtol=1e-4, atol=1e-5
    )


def test_channels_last_converts_inputs_of_a_rebuilt_network() -> None:
    plain, channels_last = pair("attention_unet", channels_last=True)
    x = input_for("attention_unet")
    converted = channels_last.to_memory_format(x)
    assert converted.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(
        output_of(channels_last, x), output_of(plain, x), rtol=1e-4, atol=1e-5
    )


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning")
def test_options_survive_scripting_and_state_dict() -> None:
    plain, options = pair("resnet_unet", checkpointing=True, channels_last=True)
    options.apply_run_options()
    assert options.state_dict().keys() == plain.state_dict().keys()
    scripted = torch.jit.script(copy.deepcopy(options).eval())
    x = input_for("resnet_unet")
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), plain.eval()(x), rtol=1e-4, atol=1e-5)


def test_compile_is_applied_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[nn.Module] = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, *a, **k: calls.append(self))
    net = BUILDERS["unet"](compile=True)
    assert net.apply_run_options() is net and calls == [net]
    assert BUILDERS["unet"]().apply_run_options() is not None and len(calls) == 1


@pytest.mark.filterwarnings("ignore:Precision bf16-mixed is not supported by the model summary")
def test_training_runs_with_the_options(make_config: Callable[..., DictConfig]) -> None:
    options = ["model.checkpointing=true", "model.channels_last=true"]
    cfg = make_config([*options, "trainer.precision=bf16-mixed"])
    metrics, objects = train(cfg)
    net = objects["module"].net
    assert net.checkpointing and net.channels_last
    first = next(p for p in net.parameters() if p.dim() == 4)
    assert first.is_contiguous(memory_format=torch.channels_last)
    assert math.isfinite(metrics["train/loss"])


@pytest.mark.slow
def test_training_runs_compiled(make_config: Callable[..., DictConfig]) -> None:
    metrics, objects = train(make_config(["model.compile=true", "test=false"]))
    assert objects["module"].net._compiled_call_impl is not None
    assert math.isfinite(metrics["train/loss"])

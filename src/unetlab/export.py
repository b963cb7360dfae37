"""Export entry point: ``unetlab-export ckpt_path=PATH format=onnx|torchscript|bioimageio``.

Also ``python -m unetlab.export``; options in ``conf/export.yaml``. After writing the file,
the exported model is run on example inputs of two sizes and its logits are compared with
PyTorch's; the run fails when they differ by more than ``tolerance``.

Every format is an :class:`ExportFormat` in :data:`EXPORT_FORMATS`: a file suffix, a
function that writes the file and one that loads it back as a callable. ``format=bioimageio``
writes a BioImage Model Zoo package instead (:mod:`unetlab.bioimageio`).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from unetlab.checkpoint import TrainedModel, load_trained_model
from unetlab.config_location import CONFIG_DIR
from unetlab.models.size_planner import input_size_for_output, valid_input_sizes
from unetlab.reliability import exit_with_error

log = logging.getLogger(__name__)

DEFAULT_INPUT_SIZE = {2: 256, 3: 64}
METADATA_KEY = "unetlab"
"""Name of the JSON metadata in the exported file (ONNX metadata, TorchScript extra file)."""

Runner = Callable[[np.ndarray], np.ndarray]


@contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence the exporters' notices about their own deprecation and traced constants."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`torch.jit.*` is deprecated")
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based")
        warnings.filterwarnings("ignore", message="The feature will be removed")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def save_onnx(
    net: nn.Module, example: torch.Tensor, path: Path, metadata: dict, opset: int | None
) -> None:
    """Export with the TorchScript-based ONNX exporter; batch and spatial axes are dynamic."""
    try:
        import onnx
    except ImportError:
        raise ValueError(
            "format=onnx needs onnx and onnxruntime: pip install 'unetlab[export]'"
        ) from None
    spatial = range(2, example.ndim)
    dynamic_axes = {
        "image": {0: "batch", **{axis: f"in_{axis}" for axis in spatial}},
        "logits": {0: "batch", **{axis: f"out_{axis}" for axis in spatial}},
    }
    with _quiet_export():
        torch.onnx.export(
            net,
            (example,),
            path,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            dynamo=False,
        )
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    onnx.save(model, str(path))


def load_onnx(path: Path) -> Runner:
    """An onnxruntime session on the CPU, as a function of the input array."""
    try:
        import onnxruntime
    except ImportError:
        raise ValueError("format=onnx needs onnxruntime: pip install 'unetlab[export]'") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"image": x})[0]


def save_torchscript(
    net: nn.Module, example: torch.Tensor, path: Path, metadata: dict, opset: int | None
) -> None:
    """Script the network (any input size works) and store the metadata as an extra file."""
    with _quiet_export():
        scripted = torch.jit.script(net)
        torch.jit.save(
            scripted, str(path), _extra_files={f"{METADATA_KEY}.json": json.dumps(metadata)}
        )


def load_torchscript(path: Path) -> Runner:
    """The saved TorchScript module, as a function of the input array."""
    with _quiet_export():
        module = torch.jit.load(str(path), map_location="cpu")

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    return run


@dataclass(frozen=True)
class ExportFormat:
    """How one format is written and read back.

    Attributes:
        suffix: File suffix of the default output name.
        runtime: What runs the exported file (printed with the parity check).
        save: ``save(net, example, path, metadata, opset)`` writes the file.
        load: ``load(path)`` returns a function of a float32 input array.
    """

    suffix: str
    runtime: str
    save: Callable[[nn.Module, torch.Tensor, Path, dict, int | None], None]
    load: Callable[[Path], Runner]


EXPORT_FORMATS: dict[str, ExportFormat] = {
    "onnx": ExportFormat(".onnx", "onnxruntime", save_onnx, load_onnx),
    "torchscript": ExportFormat(".pt", "TorchScript", save_torchscript, load_torchscript),
}


def example_shapes(
    trained: TrainedModel, input_size: int | Sequence[int] | None = None
) -> list[tuple[int, ...]]:
    """The input the network is exported on, then a second input for the parity check.

    Export records one path through the network's Python code. Same-padding networks
    branch on whether a size needs padding to a multiple of ``size_multiple``, so they are
    exported on a size that does (the general path) and checked on the requested size too,
    with another batch size. Valid-padding networks are exported on the requested size,
    raised to the nearest valid one, and checked on the next smaller valid size.

    Args:
        trained: The checkpoint's network and config.
        input_size: Spatial size, one per axis or one for all (default: 256 in 2-D, 64 in 3-D).
    """
    model = trained.config["model"]
    spatial_dims = int(model.get("spatial_dims", 2))
    size = input_size or DEFAULT_INPUT_SIZE[spatial_dims]
    sizes = [int(size)] * spatial_dims if isinstance(size, int) else [int(s) for s in size]
    net = trained.net
    if getattr(net, "padding", "same") == "valid":
        depth, dilation = net.depth, getattr(net, "bottleneck_dilation", 1)
        smallest = input_size_for_output(1, depth, dilation)
        exported = [
            min(valid_input_sizes(depth, s, s + 2**depth, dilation) or [smallest]) for s in sizes
        ]
        checked = [max(smallest, s - 2**depth) for s in exported]
    else:
        multiple = getattr(net, "size_multiple", 1)
        exported = [max(1, s - s // 4 + 1) for s in sizes]
        exported = [s + 1 if multiple > 1 and s % multiple == 0 else s for s in exported]
        checked = sizes
    channels = trained.in_channels
    return [(1, channels, *exported), (2, channels, *checked)]


def _metadata(trained: TrainedModel) -> dict[str, Any]:
    return {
        "model": trained.config["model"],
        "mean": trained.mean,
        "std": trained.std,
        "class_names": trained.class_names,
        "preprocessing": "intensities scaled to [0, 1], then (x - mean) / std per channel",
    }


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export a checkpoint's network and check the exported file against PyTorch.

    Args:
        cfg: The composed ``export`` config.

    Returns:
        ``format``, ``output`` (path written) and ``max_abs_diff`` (over the parity inputs).

    Raises:
        ValueError: Unknown format, missing packages, or a failed parity check.
    """
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ValueError(
            f"missing {', '.join(f'{key}=...' for key in missing)}; usage: unetlab-export "
            "ckpt_path=PATH format=onnx|torchscript|bioimageio [output=FILE]"
        )
    if cfg.format == "bioimageio":
        from unetlab.bioimageio import export_from_config

        return export_from_config(cfg, load_trained_model(cfg.ckpt_path))
    if cfg.format not in EXPORT_FORMATS:
        raise ValueError(
            f"format={cfg.format} is not supported; choose one of "
            f"{', '.join([*EXPORT_FORMATS, 'bioimageio'])}"
        )
    chosen = EXPORT_FORMATS[cfg.format]
    trained = load_trained_model(cfg.ckpt_path)
    output = Path(cfg.output) if cfg.output else Path(cfg.ckpt_path).with_suffix(chosen.suffix)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"output={output}: cannot create its folder ({error})") from None
    input_size = cfg.input_size
    if OmegaConf.is_config(input_size):
        input_size = OmegaConf.to_container(input_size)
    shapes = example_shapes(trained, input_size)
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randn(shape, generator=generator) for shape in shapes]
    chosen.save(trained.net, inputs[0], output, _metadata(trained), cfg.opset)
    log.info("wrote %s", output)
    run = chosen.load(output)
    worst = 0.0
    for x in inputs:
        with torch.inference_mode():
            expected = trained.net(x).numpy()
        actual = run(x.numpy())
        if actual.shape != expected.shape:
            raise ValueError(
                f"{output}: the exported model returned shape {actual.shape} for input "
                f"{tuple(x.shape)}; PyTorch returns {expected.shape}"
            )
        difference = float(np.abs(actual - expected).max())
        worst = max(worst, difference)
        print(
            f"parity {chosen.runtime} vs PyTorch: max abs diff {difference:.2e} on input "
            f"{tuple(x.shape)} (tolerance {cfg.tolerance:.0e})",
            flush=True,
        )
    if worst > cfg.tolerance:
        raise ValueError(
            f"{output}: parity check failed: max abs diff {worst:.2e} > tolerance={cfg.tolerance}"
        )
    return {"format": cfg.format, "output": str(output), "max_abs_diff": worst}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export")
def main(cfg: DictConfig) -> None:
    """Hydra entry point; expected problems end the run with one line on stderr."""
    try:
        result = export(cfg)
    except (ValueError, FileNotFoundError) as error:
        exit_with_error(error, str(error), prog="unetlab-export")
    fields = (
        f"{key}={value:.2e}" if isinstance(value, float) else f"{key}={value}"
        for key, value in result.items()
    )
    print(f"RESULT {' '.join(fields)}", flush=True)


if __name__ == "__main__":
    main()

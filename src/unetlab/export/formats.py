"""Export formats and their parity check.

Every format is an :class:`ExportFormat` in :data:`EXPORT_FORMATS`: a file suffix, a
function that writes the file and one that loads it back as a callable of a float32 array.
:func:`check_parity` runs such a callable on example inputs and compares its logits with
PyTorch's.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

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


def check_parity(
    run: Runner,
    cases: Sequence[tuple[np.ndarray, np.ndarray]],
    path: Path,
    runtime: str,
    tolerance: float,
) -> float:
    """Run an exported model on example inputs and compare with PyTorch's logits.

    Prints one ``parity <runtime> vs PyTorch: ...`` line per input.

    Args:
        run: The exported model as a function of a float32 array.
        cases: ``(input, PyTorch logits)`` pairs.
        path: The exported file (named in errors).
        runtime: What runs the file, e.g. ``onnxruntime``.
        tolerance: Largest allowed absolute difference.

    Returns:
        The largest absolute difference over all inputs.

    Raises:
        ValueError: A shape differs, or a difference exceeds ``tolerance``.
    """
    worst = 0.0
    for x, expected in cases:
        actual = run(x)
        if actual.shape != expected.shape:
            raise ValueError(
                f"{path}: the exported model returned shape {actual.shape} for input "
                f"{tuple(x.shape)}; PyTorch returns {expected.shape}"
            )
        difference = float(np.abs(actual - expected).max())
        worst = max(worst, difference)
        print(
            f"parity {runtime} vs PyTorch: max abs diff {difference:.2e} on input "
            f"{tuple(x.shape)} (tolerance {tolerance:.0e})",
            flush=True,
        )
    if worst > tolerance:
        raise ValueError(
            f"{path}: parity check failed: max abs diff {worst:.2e} > tolerance={tolerance}"
        )
    return worst

"""BioImage Model Zoo packages: writing a trained network as a ``model.zip`` and reading it back.

The package follows the bioimage.io model format 0.5 and holds TorchScript and ONNX weights,
the input tile rule, the preprocessing of training, a test input with its expected output,
a cover image and a README. Its ``config.unetlab`` entry keeps the network's config and
statistics, so :func:`load_bioimageio` rebuilds a :class:`~unetlab.checkpoint.loading.TrainedModel`
that ``unetlab-predict model=...`` runs like a checkpoint.

Preprocessing is written as two steps, as in training: ``scale_linear`` with gain 1/255 for
8-bit inputs (``scale_range`` between the 0.5th and 99.5th percentiles per channel for other
types, and for every input of a ``data.intensity_scaling=per_image`` run), then ``fixed_zero_mean_unit_variance`` with the training mean and std per channel.
The outputs are the network's logits, one channel per class; the class of a pixel is the
channel with the largest value.

Nothing here reaches the network: citations carry DOIs only (DOIs are not resolved, URLs
would be), and validation runs with ``perform_io_checks`` on local files only.
"""

from __future__ import annotations

import json
import logging
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from unetlab.checkpoint import TrainedModel
from unetlab.data.mirror import crop_mirrored
from unetlab.data.normalization import config_intensity_scaling, config_percentiles, preprocess
from unetlab.data.synthetic import generate_nuclei_image
from unetlab.export.formats import EXPORT_FORMATS, check_parity, save_onnx, save_torchscript
from unetlab.inference.io import overlay_rgb, read_input
from unetlab.labels import default_class_names
from unetlab.models.size_planner import valid_input_sizes, valid_output_size

log = logging.getLogger(__name__)

INPUT_ID = "image"
OUTPUT_ID = "logits"
CONFIG_KEY = "unetlab"
"""Name of this project's entry in the package's ``config``."""
SAMPLE_SIZE = {2: 128, 3: 32}
"""Largest spatial size of the test input (kept small: the model test runs it)."""

UNET_CITATION = {
    "text": "Ronneberger, Fischer and Brox. U-Net: Convolutional Networks for Biomedical "
    "Image Segmentation. MICCAI 2015.",
    "doi": "10.1007/978-3-319-24574-4_28",
}


def _spec() -> Any:
    try:
        from bioimageio.spec.model import v0_5
    except ImportError:
        raise ValueError(
            "format=bioimageio needs bioimageio.core: pip install 'unetlab[export]'"
        ) from None
    return v0_5


def tile_rule(net: nn.Module) -> tuple[int, int, int]:
    """``(min, step, offset)`` of the spatial axes: valid inputs are ``min + n * step``.

    The output of an axis is ``input + offset`` pixels long: ``-2 * halo`` for valid-padding
    networks, which crop ``halo`` pixels per side, and 0 for same-padding ones.
    """
    if getattr(net, "padding", "same") == "valid":
        depth, dilation = int(net.depth), int(getattr(net, "bottleneck_dilation", 1))
        step = 2**depth
        smallest = valid_input_sizes(depth, 1, 64 * step, dilation)[0]
        return smallest, step, valid_output_size(smallest, depth, dilation) - smallest
    multiple = int(getattr(net, "size_multiple", 1))
    return multiple, multiple, 0


def sample_input(trained: TrainedModel, image: np.ndarray | None) -> np.ndarray:
    """The test input, (*spatial, C), cropped to the largest valid size not above 128 (2-D).

    Args:
        trained: The network and its config.
        image: An image (*spatial) or (*spatial, C); None = a synthetic nuclei image.
    """
    spatial_dims = int(trained.config["model"].get("spatial_dims", 2))
    smallest, step, _ = tile_rule(trained.net)
    largest = max(SAMPLE_SIZE[spatial_dims], smallest)
    if image is None:
        if spatial_dims != 2:
            raise ValueError("3-D networks need a sample image: pass sample=PATH of a volume")
        size = smallest + (largest - smallest) // step * step
        image, _ = generate_nuclei_image(np.random.default_rng(0), size)
    if image.ndim == spatial_dims:
        image = image[..., None]
    if image.shape[-1] != trained.in_channels:
        image = np.repeat(image[..., :1], trained.in_channels, axis=-1)
    sizes = []
    for length in image.shape[:-1]:
        if length < smallest:
            raise ValueError(
                f"sample image is {length} pixels along an axis; the network needs at least "
                f"{smallest}: give a larger sample image"
            )
        sizes.append(smallest + (min(length, largest) - smallest) // step * step)
    return np.ascontiguousarray(image[tuple(slice(0, s) for s in sizes)])


def _statistics(trained: TrainedModel) -> tuple[list[float], list[float]]:
    channels = trained.in_channels
    mean = [float(m) for m in trained.mean] or [0.0] * channels
    std = [float(s) for s in trained.std] or [1.0] * channels
    return mean, std


def model_input(trained: TrainedModel, image: np.ndarray) -> np.ndarray:
    """(1, C, *spatial) float32 network input of one (*spatial, C) image, as in training."""
    config = trained.config
    return preprocess(
        image,
        *_statistics(trained),
        config_percentiles(config),
        scaling=config_intensity_scaling(config),
    )[None]


def _check_parity(root: Path, x: np.ndarray, logits: np.ndarray, tolerance: float) -> None:
    """Run both weight files on the network input ``x``; raise when they differ from PyTorch."""
    for name, chosen in [("weights.pt", "torchscript"), ("weights.onnx", "onnx")]:
        exported = EXPORT_FORMATS[chosen]
        check_parity(
            exported.load(root / name), [(x, logits)], root / name, exported.runtime, tolerance
        )


def _cover(image: np.ndarray, logits: np.ndarray, path: Path) -> None:
    """The image and the image with its predicted classes drawn over it, side by side."""
    spatial_dims = image.ndim - 1
    labels = logits[0].argmax(0)
    if spatial_dims == 3:
        image, labels = image[image.shape[0] // 2], labels[labels.shape[0] // 2]
    starts = [(a - b) // 2 for a, b in zip(image.shape[:2], labels.shape, strict=True)]
    image = crop_mirrored(image, starts, labels.shape)
    plain = overlay_rgb(image, np.zeros_like(labels))
    Image.fromarray(np.concatenate([plain, overlay_rgb(image, labels)], axis=1)).save(path)


def _readme(name: str, description: str, trained: TrainedModel, rule: tuple[int, int, int]) -> str:
    smallest, step, offset = rule
    classes = ", ".join(trained.class_names) or f"{trained.num_classes} classes"
    return (
        f"# {name}\n\n{description}\n\n"
        "## Input\n\n"
        f"`{INPUT_ID}`: batch, {trained.in_channels} channel(s), then the spatial axes. "
        f"Tiles must be `{smallest} + n * {step}` pixels along each spatial axis.\n\n"
        "Preprocessing (as in training): "
        + (
            "8-bit images are divided by 255, other types are scaled"
            if config_intensity_scaling(trained.config) == "by_dtype"
            else "every image is scaled"
        )
        + " between its 0.5th and 99.5th percentiles per channel; then the training "
        "mean is subtracted and the result divided by the training std, per channel.\n\n"
        "## Output\n\n"
        f"`{OUTPUT_ID}`: one channel per class ({classes}); the class of a pixel is the "
        "channel with the largest value. "
        + (
            f"The network uses unpadded convolutions: each output axis is {-offset} pixels "
            f"shorter than the input ({-offset // 2} per side); overlap tiles by that much.\n"
            if offset
            else "The output has the size of the input.\n"
        )
        + "\n## Validation\n\n"
        "The TorchScript and ONNX weights reproduce the PyTorch logits of the test input; "
        "the package passes `bioimageio.core`'s model test.\n"
    )


def export_bioimageio(
    trained: TrainedModel,
    output: str | Path,
    sample_image: np.ndarray | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    authors: Sequence[str] = ("unetlab developers",),
    license: str = "MIT",
    tags: Sequence[str] = (),
    opset: int | None = None,
    tolerance: float = 1e-4,
) -> Path:
    """Write a BioImage Model Zoo package (zip) of a trained network.

    Both weight files are run on the test input and compared with PyTorch first.

    Args:
        trained: The checkpoint's network, config and statistics.
        output: The ``.zip`` to write.
        sample_image: Test input (*spatial) or (*spatial, C); None = a synthetic nuclei image.
        name: Model name; None = the network's class name and the class names.
        description: One-paragraph description; None = a generated one.
        authors: Names of the people who trained the model.
        license: SPDX license identifier of the weights.
        tags: Extra keywords.
        opset: ONNX opset; None = the exporter's default.
        tolerance: Largest allowed difference between the weight files' and PyTorch's logits.

    Returns:
        The path of the package.

    Raises:
        ValueError: Missing packages, an unusable sample image or a failed parity check.
    """
    v0_5 = _spec()
    from bioimageio.spec import save_bioimageio_package

    output = Path(output)
    model = trained.config["model"]
    spatial_dims = int(model.get("spatial_dims", 2))
    spatial = ["z", "y", "x"][-spatial_dims:]
    mean, std = _statistics(trained)
    class_names = trained.class_names or default_class_names(trained.num_classes)
    rule = tile_rule(trained.net)
    smallest, step, offset = rule
    network = type(trained.net).__name__
    name = name or f"{network} {' vs '.join(class_names)}"
    description = description or (
        f"{network} ({model.get('padding', 'same')} padding, depth "
        f"{getattr(trained.net, 'depth', '?')}) segmenting {', '.join(class_names)}; "
        "trained with unetlab."
    )
    image = sample_input(trained, sample_image)
    x = model_input(trained, image)
    with torch.inference_mode():
        logits = trained.net(torch.from_numpy(x)).numpy().astype(np.float32)

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        np.save(root / "test_input.npy", np.moveaxis(image, -1, 0)[None])
        np.save(root / "test_output.npy", logits)
        _cover(image, logits, root / "cover.png")
        (root / "README.md").write_text(_readme(name, description, trained, rule))

        net = trained.net
        metadata = {
            "model": model,
            "network": {
                "padding": str(getattr(net, "padding", "same")),
                "depth": int(getattr(net, "depth", 0)),
                "bottleneck_dilation": int(getattr(net, "bottleneck_dilation", 1)),
                "size_multiple": int(getattr(net, "size_multiple", 1)),
            },
            "mean": mean,
            "std": std,
            "percentiles": list(config_percentiles(trained.config)),
            "intensity_scaling": config_intensity_scaling(trained.config),
            "class_names": class_names,
        }
        example = torch.zeros(1, trained.in_channels, *[smallest + step] * spatial_dims)
        if getattr(trained.net, "padding", "same") == "same" and step > 1:
            example = torch.zeros(1, trained.in_channels, *[smallest + step + 1] * spatial_dims)
        save_torchscript(trained.net, example, root / "weights.pt", metadata, opset)
        save_onnx(trained.net, example, root / "weights.onnx", metadata, opset)
        import onnx

        _check_parity(root, x, logits, tolerance)
        opset_version = onnx.load(str(root / "weights.onnx")).opset_import[0].version

        by_dtype = config_intensity_scaling(trained.config) == "by_dtype"
        if image.dtype == np.uint8 and by_dtype:
            scaling = v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(gain=1 / 255))
        else:
            low, high = config_percentiles(trained.config)
            scaling = v0_5.ScaleRangeDescr(
                kwargs=v0_5.ScaleRangeKwargs(
                    axes=[v0_5.AxisId(a) for a in spatial],
                    min_percentile=low,
                    max_percentile=high,
                    eps=1e-6,
                )
            )
        standardising = v0_5.FixedZeroMeanUnitVarianceDescr(
            kwargs=v0_5.FixedZeroMeanUnitVarianceAlongAxisKwargs(
                axis=v0_5.AxisId("channel"), mean=mean, std=std
            )
        )
        input_axes = [
            v0_5.BatchAxis(),
            v0_5.ChannelAxis(
                channel_names=[v0_5.Identifier(f"channel{i}") for i in range(len(mean))]
            ),
            *[
                v0_5.SpaceInputAxis(
                    id=v0_5.AxisId(a), size=v0_5.ParameterizedSize(min=smallest, step=step)
                )
                for a in spatial
            ],
        ]
        output_axes = [
            v0_5.BatchAxis(),
            v0_5.ChannelAxis(channel_names=[v0_5.Identifier(c) for c in class_names]),
            *[
                v0_5.SpaceOutputAxis(
                    id=v0_5.AxisId(a),
                    size=v0_5.SizeReference(
                        tensor_id=v0_5.TensorId(INPUT_ID), axis_id=v0_5.AxisId(a), offset=offset
                    ),
                )
                for a in spatial
            ],
        ]
        torch_version = v0_5.Version(torch.__version__.split("+")[0])
        description_ = v0_5.ModelDescr(
            name=name,
            description=description,
            authors=[v0_5.Author(name=author) for author in authors],
            cite=[v0_5.CiteEntry(**UNET_CITATION)],
            license=license,
            tags=["unet", "segmentation", f"{spatial_dims}d", "unetlab", *tags],
            documentation=v0_5.FileDescr(source=root / "README.md"),
            covers=[v0_5.FileDescr(source=root / "cover.png")],
            inputs=[
                v0_5.InputTensorDescr(
                    id=v0_5.TensorId(INPUT_ID),
                    axes=input_axes,
                    test_tensor=v0_5.FileDescr(source=root / "test_input.npy"),
                    data=v0_5.IntervalOrRatioDataDescr(type=str(image.dtype)),
                    preprocessing=[
                        v0_5.EnsureDtypeDescr(kwargs=v0_5.EnsureDtypeKwargs(dtype="float32")),
                        scaling,
                        standardising,
                        v0_5.EnsureDtypeDescr(kwargs=v0_5.EnsureDtypeKwargs(dtype="float32")),
                    ],
                )
            ],
            outputs=[
                v0_5.OutputTensorDescr(
                    id=v0_5.TensorId(OUTPUT_ID),
                    axes=output_axes,
                    test_tensor=v0_5.FileDescr(source=root / "test_output.npy"),
                )
            ],
            weights=v0_5.WeightsDescr(
                torchscript=v0_5.TorchscriptWeightsDescr(
                    source=root / "weights.pt", pytorch_version=torch_version
                ),
                onnx=v0_5.OnnxWeightsDescr(
                    source=root / "weights.onnx",
                    opset_version=opset_version,
                    parent="torchscript",
                ),
            ),
            config=v0_5.Config(**{CONFIG_KEY: json.loads(json.dumps(metadata))}),
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        save_bioimageio_package(description_, output_path=output)
    return output


def test_package(path: str | Path) -> None:
    """Validate a package and run ``bioimageio.core``'s model test on it, offline.

    Raises:
        ValueError: The package is not valid or does not reproduce its test output.
    """
    from bioimageio.core import test_model

    summary = test_model(Path(path), devices=["cpu"])
    if summary.status != "passed":
        failures = [
            f"{detail.name}: {'; '.join(error.msg for error in detail.errors)[:300]}"
            for detail in summary.details
            if detail.status == "failed"
        ]
        raise ValueError(f"{path}: bioimageio model test failed: {' | '.join(failures)}")


def export_from_config(cfg: Any, trained: TrainedModel) -> dict[str, Any]:
    """``unetlab-export format=bioimageio``: write the package and test it.

    Args:
        cfg: The composed ``export`` config (its ``bioimageio`` group describes the model).
        trained: The checkpoint's network.

    Returns:
        ``format``, ``output`` (the package) and ``tested`` (whether the model test ran).
    """
    options = cfg.bioimageio
    output = Path(cfg.output) if cfg.output else Path(cfg.ckpt_path).with_suffix(".zip")
    sample = None
    if options.sample:
        spatial_dims = int(trained.config["model"].get("spatial_dims", 2))
        sample = read_input(options.sample, spatial_dims).items[0]
    export_bioimageio(
        trained,
        output,
        sample,
        name=options.name,
        description=options.description,
        authors=list(options.authors),
        license=options.license,
        tags=list(options.tags),
        opset=cfg.opset,
        tolerance=cfg.tolerance,
    )
    log.info("wrote %s", output)
    if options.test:
        test_package(output)
        log.info("%s: bioimageio.core model test passed", output)
    return {"format": "bioimageio", "output": str(output), "tested": bool(options.test)}


class PackagedNetwork(nn.Module):
    """A package's TorchScript network with the attributes the tile planner reads.

    Args:
        module: The loaded TorchScript module.
        network: ``padding``, ``depth``, ``bottleneck_dilation`` and ``size_multiple``.
    """

    def __init__(self, module: torch.jit.ScriptModule, network: dict[str, Any]) -> None:
        super().__init__()
        self.module = module
        self.padding = str(network["padding"])
        self.depth = int(network["depth"])
        self.bottleneck_dilation = int(network["bottleneck_dilation"])
        self.size_multiple = int(network["size_multiple"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


def load_bioimageio(path: str | Path) -> TrainedModel:
    """Rebuild a :class:`TrainedModel` from a package written by :func:`export_bioimageio`.

    The network is the package's TorchScript weights; the statistics come from its
    ``fixed_zero_mean_unit_variance`` preprocessing.

    Raises:
        FileNotFoundError: The package does not exist.
        ValueError: The file is not a package this project wrote.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model={path}: package not found; pass the .zip to predict with")
    v0_5 = _spec()
    from bioimageio.spec import load_model_description

    description = load_model_description(path, perform_io_checks=False)
    if not isinstance(description, v0_5.ModelDescr):
        raise ValueError(f"model={path}: not a bioimage.io model package (format 0.5)")
    extra = (description.config.model_extra or {}).get(CONFIG_KEY)
    torchscript = description.weights.torchscript
    if extra is None or torchscript is None:
        raise ValueError(
            f"model={path}: the package has no '{CONFIG_KEY}' config or no TorchScript "
            "weights; only packages written by unetlab-export format=bioimageio can be run here"
        )
    mean, std = extra["mean"], extra["std"]
    for step in description.inputs[0].preprocessing:
        if isinstance(step, v0_5.FixedZeroMeanUnitVarianceDescr):
            kwargs = step.kwargs
            mean = list(np.atleast_1d(kwargs.mean).astype(float))
            std = list(np.atleast_1d(kwargs.std).astype(float))
    with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as folder:
        weights = Path(archive.extract(str(torchscript.source), folder))
        module = torch.jit.load(str(weights), map_location="cpu")
    net = PackagedNetwork(module, dict(extra["network"])).eval()
    return TrainedModel(
        net=net,
        config={
            "model": dict(extra["model"]),
            "data": {
                "percentiles": extra.get("percentiles"),
                "intensity_scaling": extra.get("intensity_scaling", "by_dtype"),
            },
        },
        mean=mean,
        std=std,
        class_names=list(extra.get("class_names") or []),
    )

"""Prediction entry point: ``unetlab-predict ckpt_path=PATH input=FILE|DIR|GLOB output=DIR``.

Also ``python -m unetlab.predict``; options in ``conf/predict.yaml``. ``model=PACKAGE.zip``
instead of ``ckpt_path`` runs a BioImage Model Zoo package written by ``unetlab-export
format=bioimageio`` (its TorchScript weights and preprocessing).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from unetlab.checkpoint import TrainedModel, load_trained_model
from unetlab.cli.result import print_result
from unetlab.cli.runner import check_command_line, command_args, run_command
from unetlab.config import ConfigError
from unetlab.config_location import CONFIG_DIR
from unetlab.data.formats import file_stem, is_nifti
from unetlab.data.normalization import (
    config_intensity_scaling,
    config_percentiles,
    preprocess,
    unit_image,
)
from unetlab.data.resampling import resampled_shape, resize
from unetlab.inference.ensemble import check_ensemble, checkpoint_paths, mean_probability_logits
from unetlab.inference.io import (
    PALETTE,
    InputImage,
    find_inputs,
    label_dtype,
    mask_path,
    overlay_rgb,
    read_input,
    write_mask,
    write_overlay,
    write_probabilities,
)
from unetlab.inference.outputs import labels_from_logits, probabilities_from_logits
from unetlab.inference.runner import parse_precision
from unetlab.inference.tiling import overlap_tile_predict, plan_tiles
from unetlab.inference.tta import parse_tta
from unetlab.inference.windows import BLEND_MODES
from unetlab.instances import (
    InstancePostprocess,
    checkpoint_target,
    instance_dtype,
    instance_labels,
    object_palette,
)

log = logging.getLogger(__name__)

PROG = "unetlab-predict"
USAGE = "unetlab-predict ckpt_path=PATH|model=PACKAGE.zip input=FILE|DIR|GLOB output=DIR"
DEFAULT_TILE_SIZE = {2: 512, 3: 128}


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA, then MPS, then CPU) or an explicit torch device name.

    Raises:
        ValueError: The device is unknown or not available here.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device={name!r} is not a device; use auto, cpu, cuda or mps") from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }.get(device.type, False)
    if not available:
        raise ValueError(f"device={name}: not available on this machine; use device=auto or cpu")
    return device


def prepare_output(output: str | Path) -> Path:
    """Create the output folder and make sure files can be written into it.

    Raises:
        ValueError: The folder cannot be created or written.
    """
    path = Path(output).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise ValueError(
            f"output={output}: cannot write there ({type(error).__name__}: {error.strerror or error}); "
            "choose a folder you can write to"
        ) from None
    return path


def check_checkpoint(trained: TrainedModel, ckpt_path: str) -> tuple[np.ndarray, np.ndarray]:
    """Check the checkpoint's classes and statistics agree; return the mean and std.

    Raises:
        ValueError: Class names or statistics do not match the network's config.
    """
    channels, classes = trained.in_channels, trained.num_classes
    if trained.class_names and len(trained.class_names) != classes:
        raise ValueError(
            f"{ckpt_path}: the checkpoint names {len(trained.class_names)} classes "
            f"({', '.join(trained.class_names)}) but model.num_classes={classes} in its config"
        )
    mean = trained.mean or trained.config.get("data", {}).get("mean") or []
    std = trained.std or trained.config.get("data", {}).get("std") or []
    if not mean or not std:
        log.warning("%s: no input statistics stored; images are only scaled to [0, 1]", ckpt_path)
        mean, std = [0.0] * channels, [1.0] * channels
    if len(mean) != channels or len(std) != channels:
        raise ValueError(
            f"{ckpt_path}: the checkpoint stores statistics of {len(mean)} channels but "
            f"model.in_channels={channels} in its config"
        )
    return np.asarray(mean, np.float32), np.asarray(std, np.float32)


def check_input(image: InputImage, trained: TrainedModel) -> None:
    """Check the image's channels fit the network.

    Raises:
        ValueError: One line naming the file, its channels and the model's.
    """
    channels = image.items.shape[-1]
    if channels != trained.in_channels:
        hint = (
            "convert the image to grayscale"
            if trained.in_channels == 1
            else f"give images with {trained.in_channels} channels"
        )
        raise ValueError(
            f"{image.path}: image has {channels} channels but the model expects "
            f"{trained.in_channels} (model.in_channels={trained.in_channels} in the "
            f"checkpoint's config); {hint}"
        )


def check_options(cfg: DictConfig) -> None:
    """Reject missing or unsupported options before any work is done."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if cfg.get("package"):
        if "ckpt_path" not in missing:
            raise ConfigError("give ckpt_path=... or model=... (a package), not both")
        missing.remove("ckpt_path")
    if missing:
        raise ConfigError(f"missing {', '.join(f'{key}=...' for key in missing)}; usage: {USAGE}")
    if cfg.blend not in BLEND_MODES:
        raise ConfigError(
            f"blend={cfg.blend} is not supported; choose one of {', '.join(BLEND_MODES)}"
        )
    if not 0 <= cfg.overlap < 1:
        raise ConfigError(f"overlap={cfg.overlap} must be in [0, 1)")
    if cfg.batch_size < 1:
        raise ConfigError(f"batch_size={cfg.batch_size} must be >= 1")


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def _tile_size(cfg: DictConfig, spatial_dims: int) -> int | list[int]:
    return _plain(cfg.tile_size) or DEFAULT_TILE_SIZE[spatial_dims]


def _unique_stems(paths: list[Path]) -> None:
    seen: dict[str, Path] = {}
    for path in paths:
        stem = file_stem(path)
        if stem in seen:
            raise ValueError(
                f"input: {seen[stem]} and {path} would write the same output name "
                f"'{stem}'; predict them into different output folders"
            )
        seen[stem] = path


def _progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def training_grid(trained: TrainedModel, image: InputImage) -> tuple[int, ...] | None:
    """The shape of a volume on the voxel grid the network was trained on, if it differs.

    With ``data.target_spacing`` in the checkpoint's config, training resampled every volume
    to that spacing: inputs are resampled the same way, and their logits back to the input's
    grid. ``None``: the input is predicted as it is (images, or no target spacing).
    """
    target = (trained.config.get("data") or {}).get("target_spacing")
    if target is None or image.grid is None:
        return None
    shape = resampled_shape(image.grid.shape, image.grid.spacing, target)
    return None if shape == image.grid.shape else shape


def to_input_grid(logits: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Logits (K, *spatial) resampled linearly to the input's spatial ``shape``."""
    resized = resize(np.moveaxis(logits.numpy(), 0, -1), shape, order=1)
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(resized, -1, 0)))


def _checked_logits(
    logits: torch.Tensor,
    item: np.ndarray,
    grid_shape: tuple[int, ...] | None,
    trained: TrainedModel,
    cfg: DictConfig,
) -> torch.Tensor:
    """Logits on the input's grid, checked to have the checkpoint's number of classes."""
    if grid_shape is not None:
        logits = to_input_grid(logits, item.shape[:-1])
    if logits.shape[0] != trained.num_classes:
        raise ValueError(
            f"{cfg.get('package') or cfg.ckpt_path}: the network outputs "
            f"{logits.shape[0]} classes but model.num_classes={trained.num_classes} in the checkpoint's config"
        )
    return logits


def predict_file(
    image: InputImage,
    trained: TrainedModel,
    statistics: tuple[np.ndarray, np.ndarray],
    cfg: DictConfig,
    output_dir: Path,
    device: torch.device,
    advance: Callable[[int], None] | None = None,
    nets: Sequence[torch.nn.Module] | None = None,
) -> list[Path]:
    """Predict every image or volume of one input file and write its outputs.

    ``nets``: the networks of an ensemble (default: ``trained.net`` alone), whose
    probabilities are averaged.

    Returns:
        The files written.
    """
    spatial_dims = image.items.ndim - 2
    grid_shape = training_grid(trained, image)
    percentiles = config_percentiles(trained.config)
    scaling = config_intensity_scaling(trained.config)
    dtype = label_dtype(trained.num_classes)
    labels = np.empty(image.items.shape[:-1], dtype)
    probabilities: list[np.ndarray] = []
    objects: list[np.ndarray] = []
    postprocess = InstancePostprocess(**_plain(cfg.postprocess)) if cfg.instances else None
    target = checkpoint_target(trained.config)
    written: list[Path] = []
    nets = [trained.net] if nets is None else nets
    options = {
        "tile_size": _tile_size(cfg, spatial_dims),
        "overlap": cfg.overlap,
        "batch_size": cfg.batch_size,
        "blend": cfg.blend,
        "tta": _plain(cfg.tta),
        "device": device,
        "progress": advance,
        "precision": cfg.precision,
        "channels_last": cfg.channels_last,
    }
    # Labels alone are stitched row by row of tiles, without logits of every class.
    labels_only = (
        not cfg.save_probabilities and postprocess is None and grid_shape is None and len(nets) == 1
    )
    for index, item in enumerate(image.items):
        # The normalised input is only referenced by the call, so it is freed right after.
        if labels_only:
            labels[index] = overlap_tile_predict(
                preprocess(item, *statistics, percentiles, grid_shape, scaling),
                nets[0],
                labels_only=True,
                label_dtype=dtype,
                **options,
            )
        else:
            network_image = preprocess(item, *statistics, percentiles, grid_shape, scaling)
            if len(nets) == 1:
                logits = overlap_tile_predict(network_image, nets[0], **options)
            else:
                logits = mean_probability_logits(
                    [partial(overlap_tile_predict, network_image, net, **options) for net in nets]
                )
            del network_image
            logits = _checked_logits(logits, item, grid_shape, trained, cfg)
            labels[index] = labels_from_logits(logits, dtype)
            if cfg.save_probabilities:
                probabilities.append(probabilities_from_logits(logits))
            if postprocess is not None:
                objects.append(instance_labels(logits, target, postprocess))
            del logits
        if cfg.save_overlay:
            # Scaled again rather than kept through the tiling: it is cheap, memory is not.
            # With instances, every object is outlined in its own colour.
            plane = unit_image(item, percentiles, scaling=scaling)
            plane_labels = objects[index] if objects else labels[index]
            name = image.stem + (f"_{index:03d}" if len(image.items) > 1 else "")
            if spatial_dims == 3:
                middle = plane.shape[0] // 2
                plane, plane_labels = plane[middle], plane_labels[middle]
                name += f"_z{middle:03d}"
            path = output_dir / "overlays" / f"{name}.png"
            palette = object_palette() if objects else PALETTE
            write_overlay(
                path, overlay_rgb(plane, plane_labels, cfg.overlay_alpha, palette=palette)
            )
            written.append(path)
    path = mask_path(output_dir, image, cfg.mask_format)
    write_mask(path, labels if image.stacked else labels[0], image.grid)
    written.insert(0, path)
    if objects:
        stacked = np.stack(objects)
        stacked = stacked.astype(instance_dtype(stacked), copy=False)
        path = output_dir / "instances" / f"{image.stem}.tif"
        write_mask(path, stacked if image.stacked else stacked[0], image.grid)
        written.insert(1, path)
    if probabilities:
        spatial = "ZYX"[-spatial_dims:]
        if image.stacked:
            data, axes = (
                np.stack(probabilities),
                ("Z" if spatial_dims == 2 else "Q") + "C" + spatial,
            )
        else:
            data, axes = probabilities[0], "C" + spatial
        suffix = ".nii.gz" if is_nifti(image.path) else ".tif"
        path = output_dir / "probabilities" / f"{image.stem}{suffix}"
        write_probabilities(path, data, axes, image.grid)
        written.insert(2 if objects else 1, path)
    return written


def load_model(path: str | Path, package: bool = False) -> TrainedModel:
    """Load a training checkpoint, or a BioImage Model Zoo package.

    Raises:
        ValueError: The weights do not fit the network built from the stored config.
    """
    try:
        if package:
            from unetlab.export.bioimageio import load_bioimageio

            return load_bioimageio(path)
        return load_trained_model(path)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise ValueError(
            f"{path}: the weights do not fit the network built from its config ({first_line})"
        ) from None


def predict(cfg: DictConfig) -> dict[str, Any]:
    """Predict every input image with a trained checkpoint and write the results.

    Args:
        cfg: The composed ``predict`` config.

    Returns:
        Summary: ``images``, ``tiles``, ``seconds``, ``output`` and ``files`` (paths written).
    """
    started = time.perf_counter()
    check_options(cfg)
    names = parse_tta(_plain(cfg.tta))
    inputs = find_inputs(cfg.input)
    _unique_stems(inputs)
    output_dir = prepare_output(cfg.output)
    device = resolve_device(cfg.device)
    parse_precision(_plain(cfg.precision), device)
    paths = [cfg.package] if cfg.get("package") else checkpoint_paths(_plain(cfg.ckpt_path))
    models = [(path, load_model(path, bool(cfg.get("package")))) for path in paths]
    check_ensemble(models)
    for path, model in models:
        statistics = check_checkpoint(model, str(path))
        model.net.to(device)
    trained = models[0][1]
    nets = [model.net for _, model in models]
    spatial_dims = int(trained.config["model"].get("spatial_dims", 2))
    log.info(
        "%d file(s) from %s with %s%s on %s; tta=%s",
        len(inputs),
        cfg.input,
        type(trained.net).__name__,
        f" (ensemble of {len(nets)})" if len(nets) > 1 else "",
        device,
        ",".join(names),
    )
    files: list[Path] = []
    total_tiles = 0
    with _progress_bar(cfg.progress) as bar:
        images_task = bar.add_task("images", total=len(inputs))
        tiles_task = bar.add_task("tiles", total=None)
        for path in inputs:
            image = read_input(path, spatial_dims)
            check_input(image, trained)
            shape = training_grid(trained, image) or image.items.shape[1:-1]
            grid = plan_tiles(shape, trained.net, _tile_size(cfg, spatial_dims), cfg.overlap)
            tiles = grid.num_tiles * len(image.items) * len(nets)
            bar.reset(tiles_task, total=tiles, description=f"tiles of {path.name}")
            written = predict_file(
                image,
                trained,
                statistics,
                cfg,
                output_dir,
                device,
                advance=lambda n: bar.advance(tiles_task, n),
                nets=nets,
            )
            total_tiles += tiles
            files += written
            bar.advance(images_task)
            size = "x".join(map(str, image.items.shape[1:-1]))
            log.info(
                "%s: %s, %d tiles of %s -> %s",
                path,
                f"{len(image.items)} x {size}" if image.stacked else size,
                grid.num_tiles,
                "x".join(map(str, grid.input_shape)),
                written[0],
            )
    return {
        "images": len(inputs),
        "tiles": total_tiles,
        "seconds": time.perf_counter() - started,
        "output": str(output_dir),
        "files": files,
    }


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def _hydra_main(cfg: DictConfig) -> None:
    summary = run_command(PROG, lambda: predict(cfg))
    fields = ("images", "tiles", "seconds", "output")
    print_result({key: summary[key] for key in fields}, {"seconds": ".1f"})


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point; ``model=PACKAGE.zip`` is read as ``package=PACKAGE.zip``.

    ``model`` is the config group of networks in training, so Hydra would look for a
    network config of that name. Problems end with one line and the codes of
    :mod:`unetlab.cli.runner`.

    Args:
        argv: The overrides; default the command line.
    """
    args = [
        "package=" + arg.removeprefix("model=") if arg.startswith("model=") else arg
        for arg in command_args(argv)
    ]
    check_command_line(PROG, "predict", command_args(args))
    _hydra_main()


if __name__ == "__main__":
    main()

"""Export command: ``unetlab-export ckpt_path=PATH format=onnx|torchscript|bioimageio``.

Also ``python -m unetlab.export``; options in ``conf/export.yaml``. After writing the file,
the exported model is run on example inputs of two sizes and its logits are compared with
PyTorch's (:func:`~unetlab.export.formats.check_parity`); the run fails when they differ by
more than ``tolerance``. ``format=bioimageio`` writes a BioImage Model Zoo package instead
(:mod:`unetlab.export.bioimageio`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from unetlab.checkpoint import TrainedModel, load_trained_model
from unetlab.cli.result import print_result
from unetlab.cli.runner import check_command_line, check_required, command_args, run_command
from unetlab.config import ConfigError
from unetlab.config_location import CONFIG_DIR
from unetlab.export.formats import EXPORT_FORMATS, check_parity
from unetlab.models.size_planner import input_size_for_output, valid_input_sizes

log = logging.getLogger(__name__)

PROG = "unetlab-export"
USAGE = "unetlab-export ckpt_path=PATH format=onnx|torchscript|bioimageio [output=FILE]"
DEFAULT_INPUT_SIZE = {2: 256, 3: 64}


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
        ConfigError: A missing required value or an unknown format.
        ValueError: Missing packages, or a failed parity check.
    """
    check_required(cfg, USAGE)
    if cfg.format == "bioimageio":
        from unetlab.export.bioimageio import export_from_config

        return export_from_config(cfg, load_trained_model(cfg.ckpt_path))
    if cfg.format not in EXPORT_FORMATS:
        raise ConfigError(
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
    with torch.inference_mode():
        cases = [(x.numpy(), trained.net(x).numpy()) for x in inputs]
    worst = check_parity(chosen.load(output), cases, output, chosen.runtime, cfg.tolerance)
    return {"format": cfg.format, "output": str(output), "max_abs_diff": worst}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export")
def _hydra_main(cfg: DictConfig) -> None:
    result = run_command(PROG, lambda: export(cfg))
    print_result(result, {"max_abs_diff": ".2e"})


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point; problems end with one line and the codes of
    :mod:`unetlab.cli.runner`.

    Args:
        argv: The overrides; default the command line.
    """
    check_command_line(PROG, "export", command_args(argv))
    _hydra_main()

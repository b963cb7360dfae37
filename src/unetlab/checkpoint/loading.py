"""Loading training checkpoints safely and rebuilding their networks."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import torch
from torch import nn

CONFIG_KEY = "unetlab_config"
DATA_KEY = "unetlab_data"


@dataclass
class TrainedModel:
    """A network rebuilt from a checkpoint, with what is needed to feed it.

    Attributes:
        net: The network in eval mode.
        config: The run's resolved training config (plain dict).
        mean: Per-channel mean used to standardise inputs (after scaling to [0, 1]).
        std: Per-channel standard deviation.
        class_names: One name per class.
    """

    net: nn.Module
    config: dict[str, Any]
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)

    @property
    def in_channels(self) -> int:
        return int(self.config["model"]["in_channels"])

    @property
    def num_classes(self) -> int:
        return int(self.config["model"]["num_classes"])


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """``torch.load`` with ``weights_only=True``: tensors and plain containers only.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not a checkpoint this project can read safely (truncated,
            or it carries pickled objects, which are never executed).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found; pass ckpt_path=PATH of a .ckpt")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(
            f"{path}: refused to load: the file holds pickled objects that are not plain "
            f"tensors or containers ({first_line}); only load checkpoints you trust "
            "and that this project wrote"
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise ValueError(
            f"{path}: not a readable checkpoint ({type(error).__name__}: {error}); "
            "the file may be truncated — use another checkpoint such as last.ckpt"
        ) from None


def load_trained_model(path: str | Path, map_location: str | torch.device = "cpu") -> TrainedModel:
    """Rebuild the network of a training checkpoint from the config stored inside it."""
    checkpoint = load_checkpoint(path, map_location)
    config = checkpoint.get(CONFIG_KEY)
    if config is None:
        raise ValueError(
            f"{path}: checkpoint has no '{CONFIG_KEY}' entry; it was not written by "
            "unetlab's train.py"
        )
    model_config = dict(config["model"])
    if model_config.get("encoder_weights") is not None:
        # The checkpoint's weights replace any pretrained ones: do not look for those files.
        model_config["encoder_weights"] = None
        model_config["weights_path"] = None
    net = hydra.utils.instantiate(model_config)
    prefix = "net."
    state = {
        key[len(prefix) :]: value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(prefix)
    }
    net.load_state_dict(state)
    net.eval()
    data = checkpoint.get(DATA_KEY, {})
    return TrainedModel(
        net=net,
        config=config,
        mean=list(data.get("mean") or []),
        std=list(data.get("std") or []),
        class_names=list(data.get("class_names") or []),
    )

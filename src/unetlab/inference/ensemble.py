"""Ensembles of checkpoints (k-fold models, as nnU-Net averages its folds).

Every network predicts the whole image; their probabilities (softmax, or sigmoid for one
class) are averaged. The mean is returned as logits again (``log p``, or ``logit p`` for one
class), so labels and probabilities follow from it as from one network's logits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from unetlab.checkpoint import TrainedModel
from unetlab.data.normalization import config_intensity_scaling, config_percentiles

LAST_CHECKPOINT = "last.ckpt"
PROBABILITY_FLOOR = 1e-7
"""Probabilities are clipped to ``[floor, 1 - floor]`` before ``log``, so logits stay finite."""


def best_checkpoint(folder: Path) -> Path:
    """The best checkpoint of a run's ``checkpoints/`` folder (not ``last.ckpt``).

    Raises:
        ValueError: None or several candidates.
    """
    found = sorted(path for path in folder.glob("*.ckpt") if path.name != LAST_CHECKPOINT)
    if len(found) != 1:
        names = ", ".join(path.name for path in found) or "none"
        raise ValueError(
            f"ckpt_path: {folder} holds {len(found)} best checkpoints ({names}); expected one. "
            "Give the checkpoints as a list: ckpt_path=[a.ckpt,b.ckpt]"
        )
    return found[0]


def checkpoint_paths(ckpt_path: str | Path | Sequence[str | Path]) -> list[Path]:
    """The checkpoints of a ``ckpt_path`` setting.

    Args:
        ckpt_path: One ``.ckpt`` file, a list of them, or a folder (a k-fold sweep): the best
            checkpoint of every ``checkpoints/`` folder below it.

    Raises:
        ValueError: An empty list, or a folder without run checkpoints.
    """
    if isinstance(ckpt_path, str | Path):
        path = Path(ckpt_path).expanduser()
        if not path.is_dir():
            return [path]
        folders = sorted(p for p in path.glob("**/checkpoints") if p.is_dir())
        if not folders:
            raise ValueError(
                f"ckpt_path={ckpt_path}: a folder without run checkpoints "
                "(<run>/checkpoints/*.ckpt below it); give a .ckpt file or a sweep folder"
            )
        return [best_checkpoint(folder) for folder in folders]
    paths = [Path(p).expanduser() for p in ckpt_path]
    if not paths:
        raise ValueError("ckpt_path=[]: give at least one checkpoint")
    return paths


def _signature(trained: TrainedModel) -> dict[str, Any]:
    data = trained.config.get("data") or {}
    return {
        "number of classes": trained.num_classes,
        "class names": trained.class_names,
        "input channels": trained.in_channels,
        "spatial dimensions": int(trained.config["model"].get("spatial_dims", 2)),
        "input mean": trained.mean or data.get("mean") or [],
        "input std": trained.std or data.get("std") or [],
        "intensity percentiles": config_percentiles(trained.config),
        "intensity scaling": config_intensity_scaling(trained.config),
        "target spacing": data.get("target_spacing"),
    }


def check_ensemble(models: Sequence[tuple[Path, TrainedModel]]) -> None:
    """Check that the networks of an ensemble take and give the same things.

    Raises:
        ValueError: One line naming the first checkpoint that differs from the first one,
            the property and both values.
    """
    (first_path, first), *others = models
    reference = _signature(first)
    for path, trained in others:
        for name, value in _signature(trained).items():
            if value != reference[name]:
                raise ValueError(
                    f"ckpt_path: {first_path} and {path} differ in {name} "
                    f"({reference[name]} vs {value}); an ensemble needs checkpoints trained "
                    "on the same classes and data"
                )


def mean_probability_logits(
    predictions: Sequence[Callable[[], torch.Tensor]] | Sequence[torch.Tensor],
) -> torch.Tensor:
    """Average the probabilities of several logit arrays (K, *spatial); return them as logits.

    Args:
        predictions: Logits, or functions that compute them (called one at a time, so only
            one network's logits and the running sum are held).

    Returns:
        Float32 ``log(mean p)`` (softmax) or ``logit(mean p)`` (sigmoid, one class).
    """
    total: torch.Tensor | None = None
    for prediction in predictions:
        logits = prediction() if callable(prediction) else prediction
        probabilities = torch.sigmoid(logits) if logits.shape[0] == 1 else logits.softmax(0)
        total = probabilities if total is None else total.add_(probabilities)
        del logits
    assert total is not None, "no prediction to average"
    mean = total.div_(len(predictions))
    if mean.shape[0] == 1:
        return torch.logit(mean, eps=PROBABILITY_FLOOR)
    return mean.clamp_(min=PROBABILITY_FLOOR).log_()

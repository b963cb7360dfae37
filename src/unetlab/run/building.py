"""Building a run's LightningModule and fitting its data module to the network."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig

if TYPE_CHECKING:
    from torch import nn

    from unetlab.lightning_module import UNetModule


def build_module(
    cfg: DictConfig,
    class_names: list[str],
    em_membrane_class: int | None = None,
    net: nn.Module | None = None,
) -> UNetModule:
    """Instantiate network, loss, optimizer and schedule into a ``UNetModule``.

    Args:
        cfg: The training config.
        class_names: One name per class.
        em_membrane_class: The membrane class of EM data (adds the ISBI test metrics).
        net: An already built network (e.g. from a checkpoint) instead of ``cfg.model``.
    """
    from unetlab.config import resolved_container
    from unetlab.instances import checkpoint_target, instance_predictor
    from unetlab.lightning_module import UNetModule
    from unetlab.losses import DeepSupervisionLoss
    from unetlab.models import SegmentationNet

    if net is None:
        net = hydra.utils.instantiate(cfg.model)
        if isinstance(net, SegmentationNet):  # model.channels_last, model.compile
            net.apply_run_options()
    loss = hydra.utils.instantiate(cfg.loss)
    if cfg.model.get("deep_supervision"):
        loss = DeepSupervisionLoss(loss)
    scheduler = hydra.utils.instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    module = UNetModule(
        net=net,
        loss=loss,
        optimizer=hydra.utils.instantiate(cfg.optimizer),
        scheduler=scheduler,
        num_classes=cfg.model.num_classes,
        class_names=class_names,
        monitor=cfg.monitor.metric,
        ignore_index=cfg.data.get("ignore_index"),
        run_config=resolved_container(cfg),
        em_membrane_class=em_membrane_class,
    )
    # Objects are scored as `unetlab-predict instances=true` writes them.
    module.predicted_instances = instance_predictor(checkpoint_target(cfg))
    return module


def build_run(
    cfg: DictConfig,
    class_names: list[str] | None = None,
    net: nn.Module | None = None,
) -> tuple[Any, UNetModule]:
    """The data module and the module of a run, fitted to each other.

    The data module learns the network's valid input sizes and, for a loss that needs them,
    how to make weight maps.

    Args:
        cfg: The training config.
        class_names: One name per class; default the data module's.
        net: An already built network (e.g. from a checkpoint) instead of ``cfg.model``.

    Returns:
        ``(datamodule, module)``.
    """
    datamodule = hydra.utils.instantiate(cfg.data)
    module = build_module(
        cfg,
        class_names or datamodule.class_names,
        getattr(datamodule, "em_membrane_class", None),
        net=net,
    )
    if hasattr(datamodule, "configure_for_model"):
        datamodule.configure_for_model(module.net)
    if getattr(module.loss, "requires_weight_map", False):
        datamodule.weight_map_fn = module.loss.make_weight_map
    return datamodule, module

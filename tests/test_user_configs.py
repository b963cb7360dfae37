"""A user's experiment in their own folder, found through ``hydra.searchpath``."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from tests.user_configs import write_user_configs
from unetlab.config_location import CONFIG_DIR


def test_user_experiment_from_own_folder(make_config, tmp_path: Path) -> None:
    folder = write_user_configs(tmp_path / "home")
    cfg = make_config([f"hydra.searchpath=[file://{folder}]", "experiment=my_exp"], tiny=False)
    assert cfg.hydra.runtime.choices["experiment"] == "my_exp"
    assert cfg.model._target_ == "unetlab.models.AttentionUNet"
    assert (cfg.model.base_channels, cfg.model.depth) == (4, 2)
    assert cfg.task_name == "my_exp"
    # The package's own groups still compose around it.
    package_loss = OmegaConf.load(Path(CONFIG_DIR, "loss", "dice_ce.yaml"))
    assert cfg.loss._target_ == package_loss._target_
    sources = [source.path for source in cfg.hydra.runtime.config_sources]
    assert str(folder) in sources and CONFIG_DIR in sources

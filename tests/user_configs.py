"""A user's own config folder, kept outside the package, as docs/configs.md describes."""

from __future__ import annotations

from pathlib import Path

# The tiny network and data of the tests, as a user's experiment overlay.
MY_EXPERIMENT = """\
# @package _global_
defaults:
  - override /model: attention_unet
task_name: my_exp
model:
  base_channels: 4
  depth: 2
data:
  batch_size: 4
  num_workers: 0
  source:
    num_images: 12
    image_size: 32
trainer:
  max_epochs: 1
  accelerator: cpu
  enable_progress_bar: false
"""


def write_user_configs(folder: Path) -> Path:
    """Write ``folder/my_configs/experiment/my_exp.yaml``; returns ``folder/my_configs``."""
    experiment = folder / "my_configs" / "experiment" / "my_exp.yaml"
    experiment.parent.mkdir(parents=True, exist_ok=True)
    experiment.write_text(MY_EXPERIMENT)
    return experiment.parents[1]

"""Prediction on images of any size: overlap-tile planning, blending, stitching, test-time
augmentation, precision and ensembles."""

from __future__ import annotations

from unetlab.data.mirror import mirror_pad
from unetlab.inference.ensemble import checkpoint_paths, mean_probability_logits
from unetlab.inference.runner import PRECISIONS, parse_precision
from unetlab.inference.stitching import LabelStitcher, LogitStitcher
from unetlab.inference.tiling import TileGrid, overlap_tile_predict, plan_tiles
from unetlab.inference.tta import D4_TRANSFORMS, TTAPredictor, parse_tta
from unetlab.inference.windows import BLEND_MODES, blend_window_1d

__all__ = [
    "BLEND_MODES",
    "D4_TRANSFORMS",
    "PRECISIONS",
    "LabelStitcher",
    "LogitStitcher",
    "TTAPredictor",
    "TileGrid",
    "blend_window_1d",
    "checkpoint_paths",
    "mean_probability_logits",
    "mirror_pad",
    "overlap_tile_predict",
    "parse_precision",
    "parse_tta",
    "plan_tiles",
]

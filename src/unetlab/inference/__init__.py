"""Prediction on images of any size: overlap-tile planning, blending, test-time augmentation."""

from __future__ import annotations

from unetlab.data.mirror import mirror_pad
from unetlab.inference.tiling import TileGrid, overlap_tile_predict, plan_tiles
from unetlab.inference.tta import D4_TRANSFORMS, TTAPredictor, parse_tta
from unetlab.inference.windows import BLEND_MODES, blend_window_1d

__all__ = [
    "BLEND_MODES",
    "D4_TRANSFORMS",
    "TTAPredictor",
    "TileGrid",
    "blend_window_1d",
    "mirror_pad",
    "overlap_tile_predict",
    "parse_tta",
    "plan_tiles",
]

"""Draw the README picture: orthogonal slices of a volume with a trained 3-D U-Net's prediction.

Usage: python scripts/plot_volume_slices.py CKPT IMAGE [MASK] [--output PNG]
e.g.   python scripts/plot_volume_slices.py logs/train/runs/<run>/checkpoints/last.ckpt \\
           data/cache/synthetic3d/cells3d_<hash>/images/cells_0002.nii.gz \\
           data/cache/synthetic3d/cells3d_<hash>/masks/cells_0002.nii.gz

The volume (NIfTI or multi-page TIFF) is normalised as in training and predicted tile by
tile; the planes are drawn to the scale of its voxel spacing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from unetlab.checkpoint import load_trained_model
from unetlab.data.io import read_volume
from unetlab.data.normalization import config_percentiles, network_layout, unit_image
from unetlab.inference import overlap_tile_predict
from unetlab.visualization.volumes import plot_orthogonal_slices


def main(argv: list[str] | None = None) -> None:
    """Predict the volume with the checkpoint and save the figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpt", type=Path, help="training checkpoint of a 3-D model")
    parser.add_argument("image", type=Path, help="volume to predict (.nii, .nii.gz, .tif)")
    parser.add_argument("mask", type=Path, nargs="?", help="its ground-truth label volume")
    parser.add_argument("--output", type=Path, default=Path("docs/images/volume_slices.png"))
    args = parser.parse_args(argv)

    trained = load_trained_model(args.ckpt)
    volume = read_volume(args.image)
    percentiles = config_percentiles(trained.config)
    unit = unit_image(volume.with_channels(), percentiles)
    net_input = network_layout(unit, trained.mean, trained.std)
    logits = overlap_tile_predict(net_input, trained.net, tile_size=128)
    prediction = logits.argmax(0).numpy()
    truth = read_volume(args.mask).array if args.mask else None
    title = f"{args.image.name}: prediction of {type(trained.net).__name__} (3-D)"
    figure = plot_orthogonal_slices(unit[..., 0], prediction, truth, volume.spacing, title=title)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=100)
    if truth is not None:
        overlap = np.logical_and(prediction > 0, truth > 0).sum()
        union = np.logical_or(prediction > 0, truth > 0).sum()
        print(f"foreground IoU {overlap / max(union, 1):.3f}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

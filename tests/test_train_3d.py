"""Training on volumes: `python train.py model.spatial_dims=3 data=synthetic3d` and variants."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import TINY_OVERRIDES, run_train
from unetlab.train import train

VOLUME_OVERRIDES = (
    *(o for o in TINY_OVERRIDES if not o.startswith("data.source.")),
    "model.spatial_dims=3",
    "data=synthetic3d",
    "data.source.num_volumes=6",
    "data.source.volume_shape=[16,32,32]",
    "data.patch_size=16",
    "data.batch_size=2",
)


def test_training_on_volumes(make_config) -> None:
    metrics, objects = train(make_config(VOLUME_OVERRIDES, tiny=False))
    assert 0.0 <= metrics["val/miou_best"] <= 1.0 and 0.0 <= metrics["test/miou"] <= 1.0
    batch = next(iter(objects["datamodule"].val_dataloader()))
    assert batch["image"].shape[1:] == (1, 16, 32, 32)
    run_dir = Path(metrics["output_dir"])
    assert Path(metrics["ckpt_path"]).is_file() and (run_dir / "predictions.png").is_file()


def test_valid_3d_unet_with_weight_maps_and_elastic_augmentation(make_config) -> None:
    cfg = make_config(
        [
            *VOLUME_OVERRIDES,
            "model=attention_unet",
            "model.padding=valid",
            "data.patch_size=[4,8,8]",
            "data/augmentation@data.train_augmentation=elastic3d",
            "loss=weighted_ce",
            "test=false",
        ],
        tiny=False,
    )
    metrics, objects = train(cfg)
    assert 0.0 <= metrics["val/miou_best"] <= 1.0
    size, target = objects["datamodule"].sampler.patch_shapes(3)
    assert target == (4, 8, 8) and all(s > t for s, t in zip(size, target, strict=True))
    assert objects["datamodule"].datasets["train"].samples[0].weight_map.ndim == 3


def test_train_script_on_volumes(tmp_path: Path, data_cache: Path) -> None:
    result = run_train([*VOLUME_OVERRIDES, f"paths.cache_dir={data_cache}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"RESULT val/miou_best=[\d.]+ test/miou=[\d.]+ ckpt=\S+ dir=\S+", last)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data=synthetic3d"], r"data are 3-D volumes .* set model.spatial_dims=3"),
        (["model.spatial_dims=3", "data=synthetic"], r"data are 2-D images .*\(data=synthetic3d\)"),
    ],
)
def test_data_and_model_dimensions_must_agree(
    make_config, overrides: list[str], message: str
) -> None:
    cfg = make_config([*TINY_OVERRIDES[:2], *overrides], tiny=False)
    with pytest.raises(ValueError, match=message):
        train(cfg)

"""Instance targets through the data module and training, and `unetlab-predict instances=true`."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import hydra
import numpy as np
import pytest
import tifffile
import torch
from omegaconf import DictConfig
from PIL import Image
from scipy import ndimage

from tests import test_predict_cli
from tests.conftest import ROOT
from tests.test_instances import confident_logits, discs
from tests.test_predict_cli import save_png, write_checkpoint
from tests.test_train_3d import VOLUME_OVERRIDES
from unetlab.checkpoint import load_trained_model
from unetlab.data.io import read_volume
from unetlab.data.normalization import preprocess
from unetlab.data.volumes import Volume, write_volume
from unetlab.instances import (
    INSTANCE_BORDER_CLASSES,
    InstancePostprocess,
    class_instances,
    instance_border_classes,
    instance_labels,
    instances_from_logits,
)
from unetlab.metrics import predicted_instances
from unetlab.models import AttentionUNet, ResNetUNet, UNet, UNetPlusPlus
from unetlab.predict import predict
from unetlab.run.building import build_module
from unetlab.train import train

predict_config = test_predict_cli.predict_config

DSB = ROOT.parent / "shared" / "data" / "dsb2018_nuclei_dev"
INSTANCE_OVERRIDES = (
    "data.target=instance_border",
    "model.num_classes=3",
    "data.class_names=[background,interior,border]",
)


@pytest.mark.skipif(not DSB.is_dir(), reason="needs ../shared/data/dsb2018_nuclei_dev")
def test_dsb2018_config_reads_16_bit_instance_masks(make_config: Callable[..., DictConfig]) -> None:
    with open(DSB / "index.csv") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: -int(row["n_nuclei"]))
    train_ids, val_id, test_id = [rows[0]["id"], rows[1]["id"]], rows[-1]["id"], rows[-2]["id"]
    assert int(rows[0]["n_nuclei"]) > 255  # ids beyond 8 bits
    lists = ",".join(f"'{name}'" for name in train_ids)
    cfg = make_config(
        [
            "experiment=dsb2018_instances",
            f"data.root={DSB}",
            f"data.split_lists={{train:[{lists}],val:['{val_id}'],test:['{test_id}']}}",
            "data.batch_size=2",
        ],
        tiny=False,
    )
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    samples = {sample.name: sample for sample in datamodule.datasets["train"].samples}
    for row in rows[:2]:
        sample = samples[row["id"]]
        stored = np.asarray(Image.open(DSB / "masks" / f"{row['id']}.png"))
        assert stored.dtype == np.uint16
        assert sample.instances.max() == len(np.unique(stored)) - 1 == int(row["n_nuclei"])
        np.testing.assert_array_equal(sample.instances, stored)
        np.testing.assert_array_equal(sample.mask, instance_border_classes(stored))
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["image"].shape == (2, 3, 256, 256)
    assert set(batch["mask"].unique().tolist()) == {0, 1, 2}


def test_instance_border_training_with_weighted_ce_and_every_model(
    make_config: Callable[..., DictConfig],
) -> None:
    cfg = make_config([*INSTANCE_OVERRIDES, "loss=weighted_ce"])
    metrics, objects = train(cfg)
    assert 0.0 <= metrics["val/miou_best"] <= 1.0
    trained = load_trained_model(metrics["ckpt_path"])
    assert trained.config["data"]["target"] == "instance_border"
    datamodule = objects["datamodule"]
    batch = next(iter(datamodule.train_dataloader()))
    mask, weights = batch["mask"], batch["weight_map"]
    assert set(mask.unique().tolist()) == {0, 1, 2}
    # The paper's weight map weights up the border class between interiors.
    assert weights[mask == 2].mean() > 2 * weights[mask == 1].mean()
    loss = objects["module"].loss
    nets = [
        UNet(1, 3, base_channels=4, depth=2),
        ResNetUNet(1, 3, encoder="resnet18", decoder_channels=[16, 8, 8, 4, 4]),
        AttentionUNet(1, 3, base_channels=4, depth=2),
        UNetPlusPlus(1, 3, base_channels=4, depth=2),
    ]
    for net in nets:
        value = loss(net(batch["image"]), mask, weights)
        value.backward()
        assert torch.isfinite(value), type(net).__name__


def test_instance_border_training_on_volumes(make_config: Callable[..., DictConfig]) -> None:
    metrics, objects = train(make_config([*VOLUME_OVERRIDES, *INSTANCE_OVERRIDES], tiny=False))
    assert 0.0 <= metrics["val/miou_best"] <= 1.0
    sample = objects["datamodule"].datasets["val"].samples[0]
    np.testing.assert_array_equal(sample.mask, instance_border_classes(sample.instances))


def test_predict_writes_instances_of_an_instance_model(
    tmp_path: Path, make_config: Callable[..., DictConfig], data_cache: Path, predict_config
) -> None:
    metrics, _ = train(make_config(list(INSTANCE_OVERRIDES)))
    images = sorted(sorted(data_cache.glob("synthetic/*/images"))[0].glob("*.png"))[:2]
    out = tmp_path / "out"
    cfg = predict_config(
        ckpt_path=metrics["ckpt_path"],
        input=images[0].parent,
        output=out,
        instances="true",
        save_overlay="true",
        **{"postprocess.min_size": 0, "postprocess.foreground_threshold": 0.3},
    )
    summary = predict(cfg)
    trained = load_trained_model(metrics["ckpt_path"])
    statistics = (np.asarray(trained.mean), np.asarray(trained.std))
    for path in images:
        written = tifffile.imread(out / "instances" / f"{path.stem}.tif")
        pixels = np.asarray(Image.open(path))[..., None]
        with torch.no_grad():
            logits = trained.net(torch.from_numpy(preprocess(pixels, *statistics))[None])
        expected = instance_labels(
            logits[0], "instance_border", InstancePostprocess(**cfg.postprocess)
        )
        assert written.dtype == np.uint16 and written.shape == pixels.shape[:2]
        np.testing.assert_array_equal(written, expected)
        assert out / "instances" / f"{path.stem}.tif" in summary["files"]
        assert (out / "overlays" / f"{path.stem}.png").is_file()


def component_count(classes: np.ndarray, min_size: int) -> int:
    """Connected components of classes 1 and 2 with at least ``min_size`` pixels."""
    sizes = [np.bincount(ndimage.label(classes == c)[0].ravel())[1:] for c in (1, 2)]
    return int(sum((s >= min_size).sum() for s in sizes))


def checkpoint_predicting_every_class(path: Path, pixels: np.ndarray, **model: object) -> Path:
    """A tiny seeded class-map checkpoint whose head bias centres each class's logits.

    The untrained network favours one class everywhere; centred logits give every class
    a share of the pixels (*spatial, C), so there are objects to find.
    """
    write_checkpoint(path, **model)
    checkpoint = torch.load(path, weights_only=True)
    trained = load_trained_model(path)
    statistics = (np.asarray(trained.mean), np.asarray(trained.std))
    with torch.no_grad():
        logits = trained.net(torch.from_numpy(preprocess(pixels, *statistics))[None])[0]
    head = [
        k for k, v in checkpoint["state_dict"].items() if k.endswith("bias") and v.shape == (3,)
    ]
    checkpoint["state_dict"][head[-1]] -= logits.flatten(1).median(dim=1).values
    torch.save(checkpoint, path)
    return path


def test_class_map_checkpoint_falls_back_to_connected_components(
    tmp_path: Path, predict_config
) -> None:
    image = save_png(tmp_path / "a.png", (60, 70))
    pixels = np.asarray(Image.open(image))[..., None]
    ckpt = checkpoint_predicting_every_class(tmp_path / "classes.ckpt", pixels)
    tifffile.imwrite(tmp_path / "stack.tif", np.random.default_rng(4).random((2, 30, 40)))
    out = tmp_path / "out"
    predict(
        predict_config(
            ckpt_path=ckpt,
            input=tmp_path,
            output=out,
            instances="true",
            **{"postprocess.min_size": 3},
        )
    )
    classes = np.asarray(Image.open(out / "masks" / f"{image.stem}.png"))
    objects = tifffile.imread(out / "instances" / "a.tif")
    expected = component_count(classes, min_size=3)
    assert objects.dtype == np.uint16 and objects.max() == expected > 0
    for label in range(1, expected + 1):
        assert len(np.unique(classes[objects == label])) == 1
    stack = tifffile.imread(out / "instances" / "stack.tif")
    masks = tifffile.imread(out / "masks" / "stack.tif")
    assert stack.shape == (2, 30, 40)
    options = InstancePostprocess(min_size=3)
    np.testing.assert_array_equal(stack, np.stack([class_instances(m, options) for m in masks]))


def test_predict_writes_instances_of_volumes_on_their_voxel_grid(
    tmp_path: Path, predict_config
) -> None:
    volume = np.random.default_rng(2).integers(0, 4000, (9, 20, 24)).astype(np.uint16)
    source = write_volume(tmp_path / "volume.tif", Volume(volume, (2.0, 0.5, 0.25), unit="um"))
    ckpt = checkpoint_predicting_every_class(
        tmp_path / "3d.ckpt", volume[..., None], spatial_dims=3, base_channels=2
    )
    out = tmp_path / "out"
    cfg = predict_config(
        ckpt_path=ckpt,
        input=source,
        output=out,
        tile_size=16,
        instances="true",
        save_overlay="true",
    )
    predict(cfg)
    objects = read_volume(out / "instances" / "volume.tif")
    mask = tifffile.imread(out / "masks" / "volume.tif")
    assert objects.shape == (9, 20, 24) and objects.spacing == (2.0, 0.5, 0.25)
    np.testing.assert_array_equal(objects.array, class_instances(mask))
    assert objects.array.max() == component_count(mask, min_size=10) > 0
    assert (out / "overlays" / "volume_z004.png").is_file()


def test_instance_models_are_scored_on_the_objects_prediction_writes(
    make_config: Callable[..., DictConfig],
) -> None:
    truth = discs((48, 64), [(24, 22), (24, 40)], 10)
    batch = torch.stack([confident_logits(instance_border_classes(truth))] * 2)
    instance_cfg = make_config(list(INSTANCE_OVERRIDES))
    module = build_module(instance_cfg, list(INSTANCE_BORDER_CLASSES))
    scored = module.predicted_instances(batch)
    np.testing.assert_array_equal(
        scored.numpy(), instances_from_logits(batch, "instance_border").astype(scored.numpy().dtype)
    )
    assert [int(image.max()) for image in scored] == [2, 2]  # the touching discs stay apart
    classes = (truth > 0).astype(np.int64)
    classes[:3, :3] = 1  # a 9-pixel object, smaller than postprocess.min_size
    class_map = torch.stack([confident_logits(classes, num_classes=2)] * 2)
    plain = build_module(make_config(), ["background", "nucleus"])
    class_map_scored = plain.predicted_instances(class_map)
    np.testing.assert_array_equal(
        class_map_scored.numpy(), instances_from_logits(class_map, "semantic")
    )
    # the touching discs merge; the small corner object is dropped as prediction drops it
    assert [int(image.max()) for image in class_map_scored] == [1, 1]
    assert int(predicted_instances(class_map)[0].max()) == 2

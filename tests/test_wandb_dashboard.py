"""What a W&B run holds: best-value summary, model artifact, test-image table, confusion chart.

Checked by reading the offline run file and the files W&B staged for upload, against
predictions recomputed here and scored with scikit-learn.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from sklearn.metrics import confusion_matrix, jaccard_score

from tests.wandb_offline import finish_run, offline_segments
from unetlab.checkpoint import load_checkpoint
from unetlab.train import train

CLASSES = ["background", "nucleus"]


@pytest.fixture(scope="module")
def wandb_run(tmp_path_factory: pytest.TempPathFactory, data_cache: Path) -> dict:
    """One two-epoch offline W&B run: its metrics, objects and offline segment."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from tests.conftest import TINY_OVERRIDES
    from unetlab.config_location import CONFIG_DIR

    tmp_path = tmp_path_factory.mktemp("wandb_dashboard")
    patch = pytest.MonkeyPatch()
    patch.setenv("WANDB_MODE", "offline")
    patch.setenv("WANDB_SILENT", "true")
    patch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb_data"))
    patch.delenv("WANDB_RUN_ID", raising=False)
    run_dir = tmp_path / "run"
    overrides = [
        *TINY_OVERRIDES,
        f"paths.root_dir={tmp_path}",
        f"paths.cache_dir={data_cache}",
        f"paths.output_dir={run_dir}",
        f"hydra.run.dir={run_dir}",
        "logger=wandb",
        "trainer.max_epochs=2",
        # Learns enough in two epochs that both classes are predicted and scores vary.
        "optimizer.lr=0.05",
    ]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    try:
        metrics, objects = train(cfg)
        finish_run(objects["trainer"])
    finally:
        GlobalHydra.instance().clear()
        patch.undo()
    (segment,) = offline_segments(run_dir)
    return {"metrics": metrics, "objects": objects, "segment": segment, "run_dir": run_dir}


def predictions(module, loader) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``name -> (truth, predicted labels)`` of every image of ``loader``."""
    module.eval()
    out = {}
    with torch.no_grad():
        for batch in loader:
            labels = module(batch["image"]).argmax(1)
            for name, truth, predicted in zip(batch["name"], batch["mask"], labels, strict=True):
                out[name] = (truth.numpy(), predicted.numpy())
    return out


def test_val_miou_summary_is_its_maximum(wandb_run: dict) -> None:
    segment = wandb_run["segment"]
    (definition,) = [m for m in segment["metrics"] if m.name == "val/miou"]
    assert definition.summary.max and definition.step_metric == "trainer/global_step"
    history = segment["history"]["val/miou"]
    assert len(history) == 2
    assert segment["summary"]["val/miou"] == {"max": pytest.approx(max(history))}
    assert max(history) == pytest.approx(wandb_run["metrics"]["val/miou_best"])
    # What the sweeps in sweeps/ maximise: the run summary's val/miou_best.
    assert segment["summary"]["val/miou_best"] == pytest.approx(max(history))


def test_best_checkpoint_is_a_model_artifact_with_the_resolved_config(wandb_run: dict) -> None:
    segment, metrics = wandb_run["segment"], wandb_run["metrics"]
    (model,) = [a for a in segment["artifacts"] if a["type"] == "model"]
    assert model["name"] == f"model-{segment['run_id']}"
    assert set(model["aliases"]) == {"best", "latest"}
    best = Path(metrics["ckpt_path"])
    assert best.name.startswith("epoch_")
    assert model["files"]["model.ckpt"].read_bytes() == best.read_bytes()
    assert model["metadata"]["score"] == pytest.approx(metrics["val/miou_best"])
    assert model["metadata"]["monitor"] == "val/miou"
    resolved = yaml.safe_load((wandb_run["run_dir"] / "config.yaml").read_text())
    assert yaml.safe_load(model["files"]["config.yaml"].read_text()) == resolved
    assert model["metadata"]["config"] == resolved
    assert "${" not in model["files"]["config.yaml"].read_text()


def test_test_images_table_scores_each_image_worst_first(wandb_run: dict) -> None:
    segment, objects = wandb_run["segment"], wandb_run["objects"]
    (table,) = [
        a
        for a in segment["artifacts"]
        if a["name"].startswith("run-") and "testimages" in a["name"]
    ]
    content = json.loads(table["files"]["test/images.table.json"].read_text())
    assert content["columns"] == ["name", "miou", "iou/background", "iou/nucleus", "image"]
    rows = content["data"]
    # After testing, the module holds the tested (best) checkpoint's weights.
    expected = predictions(objects["module"], objects["datamodule"].test_dataloader())
    assert sorted(row[0] for row in rows) == sorted(expected)
    assert [row[1] for row in rows] == sorted(row[1] for row in rows)
    for name, miou, *per_class, picture in rows:
        truth, predicted = expected[name]
        present = np.union1d(truth, predicted)
        # Per class; NaN for a class in neither truth nor prediction.
        reference = [
            jaccard_score(truth.ravel() == c, predicted.ravel() == c) if c in present else np.nan
            for c in range(len(CLASSES))
        ]
        assert [np.nan if v is None else v for v in per_class] == pytest.approx(
            list(reference), nan_ok=True
        )
        assert miou == pytest.approx(np.nanmean(reference))
        masks = {
            layer: np.asarray(Image.open(table["files"][mask["path"]]))
            for layer, mask in picture["masks"].items()
        }
        np.testing.assert_array_equal(masks["ground_truth"], truth)
        np.testing.assert_array_equal(masks["prediction"], predicted)
    assert len({row[1] for row in rows}) > 1, "all test images scored alike"


def test_confusion_matrix_is_a_wandb_chart_beside_the_picture(wandb_run: dict) -> None:
    segment, objects, run_dir = wandb_run["segment"], wandb_run["objects"], wandb_run["run_dir"]
    history = segment["history"]
    assert history["val/confusion_matrix/_type"] == ["image-file"] * 2
    assert history["val/confusion_matrix_chart_table/_type"] == ["table-file"] * 2
    panel = segment["config"]["_wandb/visualize/val/confusion_matrix_chart"]
    assert panel["panel_config"]["panelDefId"] == "wandb/confusion_matrix/v1"
    last_table = segment["dir"] / "files" / history["val/confusion_matrix_chart_table/path"][-1]
    content = json.loads(last_table.read_text())
    assert content["columns"] == ["Actual", "Predicted", "nPredictions"]
    counts = {(actual, predicted): n for actual, predicted, n in content["data"]}
    # The last validation ran with the weights of last.ckpt.
    module = objects["module"]
    module.load_state_dict(load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"])
    pairs = predictions(module, objects["datamodule"].val_dataloader()).values()
    truth = np.concatenate([t.ravel() for t, _ in pairs])
    predicted = np.concatenate([p.ravel() for _, p in pairs])
    reference = confusion_matrix(truth, predicted, labels=[0, 1])
    for i, actual in enumerate(CLASSES):
        for j, guess in enumerate(CLASSES):
            assert counts[actual, guess] == reference[i, j]

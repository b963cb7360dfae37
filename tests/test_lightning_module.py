"""UNetModule: target cropping for valid-padding nets and the EM metrics of test runs."""

from __future__ import annotations

import functools

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from unetlab.lightning_module import UNetModule
from unetlab.losses import CrossEntropyLoss
from unetlab.metrics import info_f_score, pixel_error, rand_f_score
from unetlab.models.blocks import center_crop_like


def test_center_crop_like_takes_the_centre() -> None:
    target = torch.arange(7 * 9).reshape(1, 7, 9)
    logits = torch.zeros(1, 2, 3, 5)
    cropped = center_crop_like(target, logits)
    assert torch.equal(cropped, target[:, 2:5, 2:7])


class FixedPrediction(nn.Module):
    """Returns one-hot logits of stored label maps, one per call, whatever the input."""

    def __init__(self, predictions: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("predictions", predictions)
        self.weight = nn.Parameter(torch.zeros(()))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        labels = self.predictions[self.calls % len(self.predictions)][None]
        self.calls += 1
        return nn.functional.one_hot(labels, 2).permute(0, 3, 1, 2).float() * 10 + self.weight


def test_test_run_reports_em_metrics_per_image_mean() -> None:
    rng = np.random.default_rng(0)
    truths = torch.from_numpy(rng.random((3, 24, 24)) < 0.3).long()
    predictions = truths.clone()
    predictions[0, 5:9, :] = 1  # a membrane line that splits a cell
    predictions[2] = torch.from_numpy(rng.random((24, 24)) < 0.3).long()
    batches = [{"image": torch.zeros(1, 1, 24, 24), "mask": t[None]} for t in truths]
    module = UNetModule(
        net=FixedPrediction(predictions),
        loss=CrossEntropyLoss(),
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        class_names=["cell", "membrane"],
        em_membrane_class=1,
    )
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    (results,) = trainer.test(module, dataloaders=DataLoader(batches, batch_size=None))

    cells_true = (truths != 1).numpy()
    cells_pred = (predictions != 1).numpy()
    pairs = list(zip(cells_pred, cells_true, strict=True))
    expected = {
        "test/pixel_error": np.mean([pixel_error(p, t) for p, t in pairs]),
        "test/v_rand": np.mean([rand_f_score(p, t) for p, t in pairs]),
        "test/v_info": np.mean([info_f_score(p, t) for p, t in pairs]),
        "test/v_rand_unthinned": np.mean([rand_f_score(p, t, thinning=False) for p, t in pairs]),
    }
    for name, value in expected.items():
        assert results[name] == pytest.approx(value, abs=1e-6), name
    assert expected["test/pixel_error"] > 0
    assert 0 < expected["test/v_rand_unthinned"] < expected["test/v_rand"] < 1
    assert 0 < expected["test/v_info"] < 1


def test_em_metrics_leave_out_ignored_border() -> None:
    rng = np.random.default_rng(1)
    inner = torch.from_numpy(rng.random((20, 20)) < 0.3).long()
    truth = torch.full((24, 24), -100, dtype=torch.long)
    truth[2:22, 2:22] = inner
    prediction = torch.from_numpy(rng.random((24, 24)) < 0.5).long()
    prediction[2:22, 2:22] = inner
    module = UNetModule(
        net=FixedPrediction(prediction[None]),
        loss=CrossEntropyLoss(),
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        ignore_index=-100,
        em_membrane_class=1,
    )
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    batch = {"image": torch.zeros(1, 1, 24, 24), "mask": truth[None]}
    (results,) = trainer.test(module, dataloaders=DataLoader([batch], batch_size=None))
    assert results["test/pixel_error"] == 0.0
    assert results["test/v_rand"] == pytest.approx(1.0, abs=1e-12)
    assert results["test/v_info"] == pytest.approx(1.0, abs=1e-12)
    assert results["test/v_rand_unthinned"] == pytest.approx(1.0, abs=1e-12)
    assert results["test/miou"] == 1.0

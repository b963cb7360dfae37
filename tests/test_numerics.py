"""NaN / Inf losses stop the run or skip the batch (also under bf16 autocast); clipping applies."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY_OVERRIDES, run_train
from tests.faults import WeightProbe
from unetlab.callbacks import NonFiniteLossError, NonFiniteLossGuard
from unetlab.train import train


def poison(steps: list[int], value: str) -> list[str]:
    return [
        "+callbacks.poison._target_=tests.faults.PoisonBatch",
        f"+callbacks.poison.steps=[{','.join(map(str, steps))}]",
        f"+callbacks.poison.value={value}",
    ]


PROBE = ["+callbacks.probe._target_=tests.faults.WeightProbe"]


def callback(objects: dict, kind: type):
    (found,) = [c for c in objects["trainer"].callbacks if isinstance(c, kind)]
    return found


@pytest.mark.parametrize(
    ("precision", "value"), [("32-true", "nan"), ("bf16-mixed", "inf"), ("bf16-mixed", "nan")]
)
def test_non_finite_loss_stops_naming_step_and_learning_rate(make_config, precision, value):
    cfg = make_config([f"trainer.precision={precision}", "optimizer.lr=0.002", *poison([1], value)])
    with pytest.raises(NonFiniteLossError) as error:
        train(cfg)
    message = str(error.value)
    assert "non-finite training loss (nan) at global step 1 (epoch 0, batch 1)" in message
    assert "learning rate 0.002" in message
    assert "gradient_clip_val" in message and "action=skip" in message


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_skip_drops_the_update_and_training_goes_on(make_config, precision):
    cfg = make_config(
        [
            f"trainer.precision={precision}",
            "trainer.max_epochs=2",
            "callbacks.nan_guard.action=skip",
            *poison([1], "nan"),
            *PROBE,
        ]
    )
    metrics, objects = train(cfg)
    guard = callback(objects, NonFiniteLossGuard)
    probe = callback(objects, WeightProbe)
    assert guard.skipped_steps == [1]
    assert probe.weights_changed[1] is False
    assert probe.weights_changed[0] and probe.weights_changed[2]
    assert objects["trainer"].global_step == 4
    assert all(torch.isfinite(p).all() for p in objects["module"].parameters())
    assert math.isfinite(metrics["val/loss"]) and math.isfinite(metrics["test/miou"])


def test_skip_stops_when_every_loss_is_non_finite(make_config):
    cfg = make_config(
        [
            "callbacks.nan_guard.action=skip",
            "callbacks.nan_guard.max_consecutive_skips=1",
            *poison([0, 1], "inf"),
        ]
    )
    with pytest.raises(NonFiniteLossError, match=r"2 non-finite losses in a row"):
        train(cfg)


def test_guard_rejects_unknown_action():
    with pytest.raises(ValueError, match=r"action='ignore'; expected stop or skip"):
        NonFiniteLossGuard(action="ignore")  # type: ignore[arg-type]


def test_gradient_clipping_is_applied(make_config):
    norms = {}
    for clip in ("null", "0.01"):
        cfg = make_config([f"trainer.gradient_clip_val={clip}", "test=false", *PROBE])
        _, objects = train(cfg)
        norms[clip] = max(callback(objects, WeightProbe).grad_norms.values())
    assert norms["null"] > 0.02
    assert norms["0.01"] <= 0.01 * (1 + 1e-4)


def test_cli_reports_a_nan_loss_in_one_line(tmp_path: Path, data_cache: Path):
    result = run_train(
        [*TINY_OVERRIDES, f"paths.cache_dir={data_cache}", *poison([1], "nan")], tmp_path
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "unetlab-train: error: NonFiniteLossError: non-finite training loss (nan) at global step 1"
    )
    assert "Traceback" not in result.stderr

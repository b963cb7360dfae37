"""The pieces of the benchmark scripts that decide what the benchmark page says."""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture
def scripts(monkeypatch: pytest.MonkeyPatch) -> dict[str, ModuleType]:
    """``benchmark_page`` and ``bench_instances``, imported as the scripts import them."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return {name: importlib.import_module(name) for name in ("benchmark_page", "bench_instances")}


def test_write_section_replaces_only_its_own_section(
    tmp_path: Path, scripts: dict[str, ModuleType]
) -> None:
    write_section = scripts["benchmark_page"].write_section
    page = tmp_path / "docs" / "benchmarks.md"
    write_section(page, "speed", "## Speed\n\nfast")
    assert page.read_text() == (
        "# Benchmarks\n\n<!-- speed: begin -->\n\n## Speed\n\nfast\n\n<!-- speed: end -->\n"
    )
    page.write_text(page.read_text() + "\nA note kept by hand.\n")
    write_section(page, "objects", "## Objects\n\nF1 0.5")
    write_section(page, "speed", "## Speed\n\nfaster\n")
    write_section(page, "speed", "## Speed\n\nfaster\n")  # a rerun changes nothing
    assert page.read_text() == (
        "# Benchmarks\n\n<!-- speed: begin -->\n\n## Speed\n\nfaster\n\n<!-- speed: end -->\n"
        "\nA note kept by hand.\n"
        "\n<!-- objects: begin -->\n\n## Objects\n\nF1 0.5\n\n<!-- objects: end -->\n"
    )


def test_write_section_refuses_a_section_without_its_end(
    tmp_path: Path, scripts: dict[str, ModuleType]
) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\n<!-- speed: begin -->\n\nold\n")
    with pytest.raises(ValueError, match=r"benchmarks\.md: '<!-- speed: begin -->' has no"):
        scripts["benchmark_page"].write_section(page, "speed", "new")


def image_scores(n_true: int, n_pred: int, tp: int, iou_sum: float, dsb: float) -> dict:
    """Per-image scores as ``instance_scores`` defines them, from hand-chosen counts."""
    objects = n_true + n_pred
    if objects == 0:
        return {
            "f1_50": math.nan,
            "panoptic_quality": math.nan,
            "dsb_score": math.nan,
            "n_true": 0,
            "n_pred": 0,
        }
    return {
        "f1_50": 2 * tp / objects,
        "panoptic_quality": (iou_sum / tp) * (2 * tp / objects) if tp else 0.0,
        "dsb_score": dsb,
        "n_true": n_true,
        "n_pred": n_pred,
    }


def test_pooled_scores_pool_the_matches_of_all_images(scripts: dict[str, ModuleType]) -> None:
    per_image = [
        image_scores(n_true=3, n_pred=1, tp=1, iou_sum=0.8, dsb=0.2),  # two nuclei missed
        image_scores(n_true=1, n_pred=1, tp=1, iou_sum=0.6, dsb=0.4),
        image_scores(n_true=2, n_pred=0, tp=0, iou_sum=0.0, dsb=0.0),  # nothing predicted
        image_scores(n_true=0, n_pred=0, tp=0, iou_sum=0.0, dsb=math.nan),  # no score
    ]
    pooled = scripts["bench_instances"].pooled_scores(per_image)
    # 2 matches of 6 true and 2 predicted objects; IoU sum 1.4 of the matches.
    assert pooled["f1_50"] == pytest.approx(2 * 2 / 8)
    assert pooled["panoptic_quality"] == pytest.approx((1.4 / 2) * (2 * 2 / 8))
    assert pooled["dsb_score"] == pytest.approx((0.2 + 0.4 + 0.0) / 3)
    assert (pooled["n_true"], pooled["n_pred"]) == (6, 2)


def test_fixed_split_scores_the_last_fifth_and_tunes_on_the_end_of_training(
    scripts: dict[str, ModuleType],
) -> None:
    ids = [f"{i:03d}" for i in range(50)][::-1]
    split = scripts["bench_instances"].fixed_split(ids)
    assert split["validation"] == [f"{i:03d}" for i in range(40, 50)]
    assert split["tuning"] == [f"{i:03d}" for i in range(36, 40)]
    assert split["train"] == [f"{i:03d}" for i in range(36)]


def test_max_time_is_what_lightning_reads(scripts: dict[str, ModuleType]) -> None:
    from lightning.pytorch.callbacks import Timer

    duration = scripts["bench_instances"].max_time(93_725)
    assert duration == "01:02:02:05"
    assert Timer(duration)._duration == 93_725


def test_table_follows_each_recipe_by_the_mean_of_its_seeds(
    scripts: dict[str, ModuleType],
) -> None:
    bench = scripts["bench_instances"]
    trained = {"budget_s": 600, "train_s": 601.0, "steps": 300, "epochs": 4, "n_true": 100}
    rows = [
        {"row": "truth", "key": "d", "method": "truth", "f1_50": 0.9, "dsb_score": 0.7}
        | {"panoptic_quality": 0.8, "n_pred": 90, "n_true": 100},
        {"row": "semantic", "key": "a", "method": "semantic", "seed": 0, "n_pred": 80}
        | trained
        | {"f1_50": 0.6, "dsb_score": 0.4, "panoptic_quality": 0.5},
        {"row": "semantic", "key": "a", "method": "semantic", "seed": 1, "n_pred": 85}
        | trained
        | {"f1_50": 0.7, "dsb_score": 0.5, "panoptic_quality": 0.6},
    ]
    table = [bench.markdown_row(row) for row in bench.table_rows(rows)]
    assert table == [
        "| (a) | semantic | 600 s | 0 | 0.600 | 0.400 | 0.500 | 80 / 100 "
        "| 601 s, 300 steps (4 epochs) |",
        "| (a) | semantic | 600 s | 1 | 0.700 | 0.500 | 0.600 | 85 / 100 "
        "| 601 s, 300 steps (4 epochs) |",
        "| (a) | semantic | 600 s | mean of 0, 1 | **0.650** | **0.450** | **0.550** "
        "| 82 / 100 | — |",
        "| (d) | truth | — | — | 0.900 | 0.700 | 0.800 | 90 / 100 | — |",
    ]

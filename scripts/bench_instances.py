"""Nuclei instance segmentation: unetlab against StarDist for the same CPU time budget.

One run trains every method from scratch on the CPU, each for the same wall-clock budget,
on a fixed split of the 2018 Data Science Bowl images (``../shared/data/dsb2018_nuclei_dev``,
see ``docs/benchmarks.md``), and scores the validation images with
``unetlab.metrics.instance_scores``: F1 at IoU 0.5, the Data Science Bowl score and panoptic
quality of

- (a) unetlab semantic masks (background / nucleus) split into connected components;
- (b) the unetlab instance recipe (``experiment=dsb2018_instances``: background / interior /
  border classes, seeded watershed);
- (c) StarDist 2D with the defaults of its example notebook, for the budget and for 4x the
  budget, run by ``scripts/stardist_worker.py`` in StarDist's own virtual environment
  (TensorFlow is no dependency of unetlab);
- (d) the true foreground split into connected components: the best any class-map method can
  reach, since touching nuclei merge.

(a) and (b) run ``unetlab.train.train`` on the composed training config with
``++trainer.max_time`` as the budget, one run per seed, and label the validation images with
``unetlab.predict.predict(instances=true)``. Rows run ``--jobs`` at a time (default 2),
each in its own process pinned to its own share of the cores, so on a 2-core machine every
method trains on one core and the full run takes about 55 minutes. Writes its table to its
own section of ``docs/benchmarks.md``::

    python scripts/bench_instances.py             # full run (``make bench-instances``)
    python scripts/bench_instances.py --quick     # smoke run: 10 small images, 5 s budget
    python scripts/bench_instances.py --budget 300 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch
from benchmark_page import (
    add_run_options,
    core_groups,
    load_average,
    log,
    machine,
    machine_table,
    run_pinned,
    run_side_by_side,
    settle_run_options,
    write_section,
)
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Timer
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "dsb2018_nuclei_dev"
STARDIST_PYTHON = ROOT / ".venv-stardist" / "bin" / "python"
STARDIST_WORKER = Path(__file__).resolve().parent / "stardist_worker.py"
STARDIST_INSTALL = "stardist==0.9.2 tensorflow-cpu==2.21.0 tensorboard"
SECTION = "bench_instances"
SOFTWARE = ("torch", "lightning", "scipy", "scikit-image")
TRAIN_FRACTION = 0.8  # of the sorted ids; the rest are the validation images
TUNING_FRACTION = 0.1  # of the training ids (the last ones): model selection and tuning
STARDIST_LONG_FACTOR = 4
QUICK_IMAGES, QUICK_BUDGET_S, QUICK_SHAPE = 10, 5, (256, 256)
EXPERIMENT = "experiment=dsb2018_instances"
SPLIT_FILE, ROW_FILE = "split.json", "row.json"
TUNING_DIR, VALIDATION_DIR = "tuning", "validation"
Truths = dict[str, np.ndarray]


@dataclass(frozen=True)
class Recipe:
    """A unetlab training recipe: overrides on top of ``experiment=dsb2018_instances``."""

    key: str
    name: str
    overrides: tuple[str, ...]
    tune: bool = False


RECIPES = {
    "semantic": Recipe(
        "a",
        "unetlab semantic + connected components",
        ("data.target=semantic", "model.num_classes=2", "data.class_names=[background,nucleus]"),
    ),
    "instances": Recipe("b", "unetlab instance recipe", (), tune=True),
}
ROWS = (*RECIPES, "stardist", "truth")


def dataset_ids(data: Path, quick: bool) -> list[str]:
    """Sorted image ids of the data set; with ``quick`` the first few of one small size."""
    index = data / "index.csv"
    if not index.is_file():
        raise SystemExit(
            f"{index} not found: --data must be the dsb2018_nuclei_dev folder "
            "(images/, masks/, index.csv)"
        )
    with open(index) as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: row["id"])
    if quick:
        shape = tuple(str(side) for side in QUICK_SHAPE)
        rows = [row for row in rows if (row["height"], row["width"]) == shape][:QUICK_IMAGES]
    return [row["id"] for row in rows]


def fixed_split(ids: Sequence[str]) -> dict[str, list[str]]:
    """The first 80 % of the sorted ids train, the rest are scored.

    The last 10 % of the training ids tune: unetlab validates on them to keep its best
    checkpoint, StarDist to keep its best weights and to optimise its thresholds. Neither
    sees the scored images before predicting them.
    """
    ids = sorted(ids)
    cut = round(TRAIN_FRACTION * len(ids))
    training, validation = ids[:cut], ids[cut:]
    tuning = max(1, round(TUNING_FRACTION * len(training)))
    if len(training) - tuning < 1 or not validation:
        raise SystemExit(f"{len(ids)} images are too few for a train / tuning / validation split")
    return {"train": training[:-tuning], "tuning": training[-tuning:], "validation": validation}


def read_labels(path: Path) -> np.ndarray:
    """Instance labels from a mask PNG, TIFF or ``.npy`` file."""
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix == ".tif":
        return tifffile.imread(path)
    return np.asarray(Image.open(path))


def pooled_scores(per_image: Sequence[dict[str, float]]) -> dict[str, float]:
    """Split scores from per-image ``instance_scores``.

    F1 at IoU 0.5 and panoptic quality pool the matches of all images (as StarDist's
    ``matching_dataset`` and panoptic quality do): since ``F1 = 2 TP / (n_true + n_pred)``
    and ``PQ = 2 (IoU sum of the matches) / (n_true + n_pred)`` per image, the pooled values
    are the per-image ones weighted by ``n_true + n_pred``. The Data Science Bowl score is
    the mean over images, as the challenge defined it. Images with no object in truth or
    prediction have no score and are left out.
    """
    weights = np.array([s["n_true"] + s["n_pred"] for s in per_image], np.float64)
    scored = weights > 0
    total = weights[scored].sum()

    def pooled(key: str) -> float:
        values = np.array([s[key] for s in per_image], np.float64)[scored]
        return float((values * weights[scored]).sum() / total) if total else math.nan

    dsb = [s["dsb_score"] for s, keep in zip(per_image, scored, strict=True) if keep]
    return {
        "f1_50": pooled("f1_50"),
        "dsb_score": float(np.mean(dsb)) if dsb else math.nan,
        "panoptic_quality": pooled("panoptic_quality"),
        "n_true": int(sum(s["n_true"] for s in per_image)),
        "n_pred": int(sum(s["n_pred"] for s in per_image)),
    }


def score_folder(labels_dir: Path, suffix: str, truths: dict[str, np.ndarray]) -> dict[str, float]:
    """Pooled scores of the predicted label files ``<id><suffix>`` against ``truths``."""
    from unetlab.metrics import instance_scores

    per_image = []
    for name, truth in truths.items():
        path = labels_dir / f"{name}{suffix}"
        if not path.is_file():
            raise RuntimeError(f"{path}: no instance labels were written for {name}")
        per_image.append(instance_scores(read_labels(path).astype(np.int64), truth))
    return pooled_scores(per_image)


def truth_row(truths: dict[str, np.ndarray]) -> dict[str, Any]:
    """Row (d): the true foreground split into connected components (4-connected)."""
    from unetlab.metrics import instance_scores

    per_image = [instance_scores(ndimage.label(t > 0)[0], t) for t in truths.values()]
    return {"row": "truth", "key": "d", "method": "true foreground + connected components"} | (
        pooled_scores(per_image)
    )


def max_time(seconds: int) -> str:
    """``DD:HH:MM:SS`` of a number of seconds, as ``trainer.max_time`` takes it."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days:02d}:{hours:02d}:{minutes:02d}:{secs:02d}"


def compose_config(
    config_dir: str, name: str, overrides: Sequence[str], hydra_config: bool = False
) -> Any:
    """Compose ``name`` from ``config_dir`` as the command line would.

    Args:
        config_dir: The config folder.
        name: The primary config.
        overrides: Command-line overrides.
        hydra_config: Also set up the Hydra config (run folder) that training reads.
    """
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        cfg = compose(name, overrides=list(overrides), return_hydra_config=hydra_config)
    if hydra_config:
        HydraConfig.instance().set_config(cfg)
    return cfg


def unetlab_row(
    recipe_name: str, seed: int, budget: int, args: argparse.Namespace, truths: Truths
) -> dict[str, Any]:
    """Train one unetlab recipe for ``budget`` seconds, label the validation images, score."""
    from unetlab.config_location import CONFIG_DIR
    from unetlab.predict import predict
    from unetlab.train import train

    recipe = RECIPES[recipe_name]
    run_dir = args.work_dir / f"unetlab_{recipe_name}_seed{seed}"
    overrides = [
        EXPERIMENT,
        *recipe.overrides,
        f"data.root={args.data}",
        f"data.split_lists={args.work_dir / SPLIT_FILE}",
        f"seed={seed}",
        f"++trainer.max_time='{max_time(budget)}'",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "~callbacks.rich_progress_bar",
        "test=false",
        f"paths.root_dir={ROOT}",
        f"paths.cache_dir={args.work_dir / 'cache'}",
        f"paths.output_dir={run_dir}",
        f"hydra.run.dir={run_dir}",
    ]
    log(f"({recipe.key}) {recipe.name}, seed {seed}: training for {budget} s")
    try:
        metrics, objects = train(compose_config(CONFIG_DIR, "train", overrides, hydra_config=True))
    finally:
        GlobalHydra.instance().clear()
    trainer = objects["trainer"]
    timer = next(c for c in trainer.callbacks if isinstance(c, Timer))
    checkpoint = metrics["ckpt_path"] or str(run_dir / "checkpoints" / "last.ckpt")

    def label_images(folder: Path, output: Path, options: Sequence[str]) -> None:
        overrides = [f"ckpt_path={checkpoint}", f"input={folder}", f"output={output}"]
        overrides += ["instances=true", "device=cpu", "progress=false", *options]
        try:
            predict(compose_config(CONFIG_DIR, "predict", overrides))
        finally:
            GlobalHydra.instance().clear()

    tuned: dict[str, Any] = {}
    if recipe.tune:
        label_images(args.work_dir / TUNING_DIR, run_dir / "tuning", ["save_probabilities=true"])
        tuned = tune_on_tuning_images(run_dir / "tuning" / "probabilities", args.data)
    output = run_dir / "predictions"
    started = time.perf_counter()
    label_images(
        args.work_dir / VALIDATION_DIR,
        output,
        [f"postprocess.{key}={value}" for key, value in tuned.get("postprocess", {}).items()],
    )
    predict_s = time.perf_counter() - started
    row = {
        "row": recipe_name,
        "key": recipe.key,
        "method": recipe.name,
        "seed": seed,
        "budget_s": budget,
        "train_s": timer.time_elapsed("train"),
        "steps": trainer.global_step,
        "epochs": trainer.current_epoch,
        "predict_s": predict_s,
    } | tuned
    row |= score_folder(output / "instances", ".tif", truths)
    log(format_row(row))
    return row


def tune_on_tuning_images(probabilities_dir: Path, data: Path) -> dict[str, Any]:
    """Post-processing thresholds tuned on the tuning images' probabilities.

    The counterpart of StarDist's ``optimize_thresholds``: the grid of
    ``unetlab.instances.tuning.DEFAULT_GRID``, scored against the tuning images' labels.
    """
    from unetlab.instances.tuning import tune_postprocess

    files = sorted(probabilities_dir.glob("*.tif"))
    probabilities = [tifffile.imread(path).astype(np.float32) for path in files]
    truths = [read_labels(data / "masks" / f"{path.stem}.png") for path in files]
    started = time.perf_counter()
    result = tune_postprocess(probabilities, truths)
    chosen = result.tried[0][0]
    log(
        f"tuned post-processing on {len(files)} tuning images: {chosen} "
        f"(DSB {result.dsb_score:.3f}, F1@0.5 {result.f1_50:.3f})"
    )
    return {
        "postprocess": chosen,
        "tuning_scores": {"dsb_score": result.dsb_score, "f1_50": result.f1_50},
        "tune_s": time.perf_counter() - started,
    }


def stardist_row(
    budget: int,
    args: argparse.Namespace,
    split: dict[str, list[str]],
    truths: Truths,
    cores: list[int],
) -> dict[str, Any]:
    """StarDist 2D trained for ``budget`` seconds in its own environment, then scored."""
    output = args.work_dir / f"stardist_{budget}s"
    output.mkdir(parents=True, exist_ok=True)
    seed = args.stardist_seed
    spec = {"data": str(args.data), **split, "budget_s": budget, "seed": seed}
    spec["output"] = str(output)
    spec_file = output / "spec.json"
    spec_file.write_text(json.dumps(spec, indent=2))
    log(f"(c) StarDist 2D: training for {budget} s on cores {cores}")
    started = time.perf_counter()
    command = [str(args.stardist_python), str(STARDIST_WORKER), str(spec_file)]
    run_pinned(command, cores, output / "worker.log")
    result = json.loads((output / "result.json").read_text())
    row = {
        "row": "stardist",
        "key": "c",
        "method": "StarDist 2D",
        "seed": seed,
        "budget_s": budget,
        "train_s": result["train_s"],
        "steps": result["steps"],
        "epochs": result["epochs"],
        "predict_s": result["predict_s"],
        "worker_s": time.perf_counter() - started,
        "stardist": result,
    }
    row |= score_folder(output / "labels", ".npy", truths)
    log(format_row(row))
    return row


def prepare(args: argparse.Namespace, ids: Sequence[str]) -> tuple[dict[str, list[str]], Truths]:
    """The split, its list file and the folder of validation images; the true labels."""
    split = fixed_split(ids)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    split_lists = {"train": split["train"], "val": split["tuning"], "test": []}
    (args.work_dir / SPLIT_FILE).write_text(json.dumps(split_lists, indent=2))
    image_links(args.data, split["validation"], args.work_dir / VALIDATION_DIR)
    image_links(args.data, split["tuning"], args.work_dir / TUNING_DIR)
    truths = {
        name: read_labels(args.data / "masks" / f"{name}.png").astype(np.int64)
        for name in split["validation"]
    }
    return split, truths


def unetlab_process(
    recipe_name: str, seed: int, args: argparse.Namespace, cores: list[int]
) -> dict[str, Any]:
    """One unetlab row in a process of its own on ``cores``; its row."""
    run_dir = args.work_dir / f"unetlab_{recipe_name}_seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), *args.forwarded]
    command += ["--row", recipe_name, "--row-seed", str(seed), "--work-dir", str(args.work_dir)]
    log(f"({RECIPES[recipe_name].key}) {RECIPES[recipe_name].name}, seed {seed}: cores {cores}")
    run_pinned(command, cores, run_dir.with_suffix(".log"))
    row = json.loads((run_dir / ROW_FILE).read_text())
    log(format_row(row))
    return row


def unetlab_worker(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--row`` process: train and score one unetlab row, write its ``row.json``."""
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    _, truths = prepare(args, dataset_ids(args.data, args.quick))
    row = unetlab_row(args.row, args.row_seed, args.budget, args, truths)
    run_dir = args.work_dir / f"unetlab_{args.row}_seed{args.row_seed}"
    (run_dir / ROW_FILE).write_text(json.dumps(row, indent=2))
    return row


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def format_row(row: dict[str, Any]) -> str:
    trained = (
        f", {row['train_s']:.0f} s, {plural(row['steps'], 'step')}, "
        f"{plural(row['epochs'], 'epoch')}"
        if "train_s" in row
        else ""
    )
    seed = f" seed {row['seed']}" if "seed" in row else ""
    return (
        f"({row['key']}) {row['method']}{seed}: F1@0.5 {row['f1_50']:.3f}, "
        f"DSB {row['dsb_score']:.3f}, PQ {row['panoptic_quality']:.3f}, "
        f"{row['n_pred']} / {row['n_true']} objects{trained}"
    )


def mean_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean scores of the seeds of one recipe."""
    first = rows[0]
    mean = {key: float(np.mean([r[key] for r in rows])) for key in SCORE_KEYS}
    return {"key": first["key"], "method": first["method"], "budget_s": first["budget_s"]} | (
        mean | {"mean_of": [r["seed"] for r in rows]}
    )


SCORE_KEYS = ("f1_50", "dsb_score", "panoptic_quality", "n_pred", "n_true")


def table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in table order: each recipe's seeds followed by their mean, then the others."""
    ordered = []
    for name in ROWS:
        own = [r for r in rows if r["row"] == name]
        ordered += own
        if name in RECIPES and len(own) > 1:
            ordered.append(mean_row(own))
    return ordered


def markdown_row(row: dict[str, Any]) -> str:
    if "mean_of" in row:
        seed = "mean of " + ", ".join(str(s) for s in row["mean_of"])
        cells = [f"**{row[k]:.3f}**" for k in ("f1_50", "dsb_score", "panoptic_quality")]
        objects = f"{row['n_pred']:,.0f} / {row['n_true']:,.0f}"
    else:
        seed = str(row.get("seed", "—"))
        cells = [f"{row[k]:.3f}" for k in ("f1_50", "dsb_score", "panoptic_quality")]
        objects = f"{row['n_pred']:,} / {row['n_true']:,}"
    budget = f"{row['budget_s']} s" if "budget_s" in row else "—"
    trained = (
        f"{row['train_s']:.0f} s, {plural(row['steps'], 'step')} ({plural(row['epochs'], 'epoch')})"
        if "train_s" in row
        else "—"
    )
    return (
        f"| ({row['key']}) | {row['method']} | {budget} | {seed} | {' | '.join(cells)} "
        f"| {objects} | {trained} |"
    )


def markdown(results: dict[str, Any]) -> str:
    """The results as this script's section of ``docs/benchmarks.md``."""
    split, budget = results["split"], results["budget_s"]
    long_budget = STARDIST_LONG_FACTOR * budget
    lines = [
        "## Nuclei instances against StarDist",
        "",
        f"Written by `make bench-instances` (`{results['command']}`); do not edit by hand.",
        "",
        "Every method trains from scratch on the CPU for the same wall-clock budget "
        f"(**{budget} s**; StarDist also for {long_budget} s) on a fixed split of the 2018 Data "
        f"Science Bowl images (`dsb2018_nuclei_dev`{results['subset']}): of the ids in sorted "
        f"order, the first {TRAIN_FRACTION:.0%} train and the rest are scored "
        f"({len(split['train'])} training, {len(split['tuning'])} tuning, "
        f"{len(split['validation'])} validation images). The tuning images are the last "
        f"{TUNING_FRACTION:.0%} of the training ids: unetlab validates on them to keep its best "
        "checkpoint and (b) tunes its watershed thresholds on them, StarDist keeps its best "
        "weights and optimises its probability and overlap thresholds on them; no method "
        "sees the validation images before labelling them. Rows train "
        f"{results['jobs']} at a time, side by side, each in its own process pinned to "
        f"{plural(results['cores_per_row'], 'core')} with as many threads.",
        "",
        "| | method | budget | seed | F1@0.5 | DSB score | panoptic quality "
        "| objects found / true | trained |",
        "|---|---|---|---|---|---|---|---|---|",
        *(markdown_row(row) for row in table_rows(results["rows"])),
        "",
        "Scores from `unetlab.metrics.instance_scores`: objects matched one to one at IoU > 0.5; "
        "F1@0.5 and panoptic quality pool the matches of all validation images, the DSB score "
        "(the ratio TP / (TP + FP + FN) averaged over IoU thresholds 0.5, 0.55, ..., 0.95) is "
        "averaged over images. *Trained*: the training time as the trainer counted it "
        "(validation rounds included), optimizer steps and completed epochs. The budget "
        "starts with training, after the data are loaded: for StarDist it includes building "
        "the TensorFlow graph in the first step; unetlab and Keras both finish the step that "
        "crosses it and then validate, and unetlab always completes its first epoch.",
        "",
        "- (a) `python train.py experiment=dsb2018_instances data.target=semantic "
        "model.num_classes=2 data.class_names=[background,nucleus] "
        f"++trainer.max_time={max_time(budget)}`, then `unetlab-predict ... instances=true`, "
        "which splits the foreground of a class-map model into connected components.",
        "- (b) `python train.py experiment=dsb2018_instances "
        f"++trainer.max_time={max_time(budget)}`, then `unetlab-predict ... instances=true "
        "postprocess.*=...`: background / interior / border classes and a seeded watershed "
        "whose thresholds `unetlab.instances.tuning.tune_postprocess` chose on the tuning "
        "images (the counterpart of StarDist's `optimize_thresholds`).",
        "- (c) StarDist 2D (`scripts/stardist_worker.py`, in its own environment) with the "
        "defaults of its example notebook: 32 rays, grid (2, 2), 3 input channels, "
        "`normalize(x, 1, 99.8)` per channel, label holes filled, the notebook's augmenter, "
        "`optimize_thresholds` on the tuning images, `predict_instances`; a Keras callback "
        "ends training at the budget.",
        "- (d) The true masks' foreground split into 4-connected components: the best a "
        "method that predicts classes only can reach, since touching nuclei merge.",
        "",
        *machine_table(results, [f"| StarDist | {results['stardist_software']} |"]),
        f"| seeds | unetlab {', '.join(map(str, results['seeds']))}; StarDist "
        f"{results['stardist_seed']} |",
        "",
        "A wall-clock budget buys less training on a loaded machine: compare rows of one run.",
    ]
    return "\n".join(lines) + "\n"


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'':4s} {'method':42s} {'budget':>7s} {'seed':>9s} {'F1@0.5':>7s} {'DSB':>6s} "
        f"{'PQ':>6s} {'found/true':>11s} {'steps':>6s}"
    )
    for row in table_rows(rows):
        seed = "mean" if "mean_of" in row else str(row.get("seed", "-"))
        budget = f"{row['budget_s']}s" if "budget_s" in row else "-"
        objects = f"{row['n_pred']:.0f}/{row['n_true']:.0f}"
        print(
            f"({row['key']}) {row['method']:42s} {budget:>7s} {seed:>9s} {row['f1_50']:7.3f} "
            f"{row['dsb_score']:6.3f} {row['panoptic_quality']:6.3f} {objects:>11s} "
            f"{row.get('steps', '-')!s:>6s}"
        )


def image_links(data: Path, ids: Sequence[str], folder: Path) -> Path:
    """A folder of links to the images ``ids``, an input of ``unetlab-predict``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ids:
        link = folder / f"{name}.png"
        if not link.exists():
            link.symlink_to(data / "images" / f"{name}.png")
    return folder


def check_stardist_python(path: Path) -> None:
    if not path.is_file():
        raise SystemExit(
            f"{path} not found: StarDist runs in its own environment; create it with "
            f"`make bench-instances` or `python3 -m venv .venv-stardist && "
            f".venv-stardist/bin/pip install {STARDIST_INSTALL}`, or pass --skip stardist"
        )


def reproducing_command(args: argparse.Namespace) -> str:
    """The command line that runs the same benchmark."""
    seeds = " ".join(map(str, args.seeds))
    quick = " --quick" if args.quick else ""
    return (
        f"python scripts/bench_instances.py{quick} --budget {args.budget} --seeds {seeds} "
        f"--stardist-seed {args.stardist_seed} --jobs {args.jobs}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dsb2018_nuclei_dev")
    parser.add_argument(
        "--budget", type=int, default=600, help="training seconds per row (StarDist also 4x)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="unetlab seeds")
    parser.add_argument("--stardist-seed", type=int, default=0)
    parser.add_argument("--stardist-python", type=Path, default=STARDIST_PYTHON)
    parser.add_argument(
        "--skip", default="", help=f"comma-separated rows to leave out: {', '.join(ROWS)}"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, len(os.sched_getaffinity(0))),
        help="rows trained at the same time, each on its own share of the cores",
    )
    parser.add_argument("--row", choices=list(RECIPES), help=argparse.SUPPRESS)
    parser.add_argument("--row-seed", type=int, default=0, help=argparse.SUPPRESS)
    add_run_options(
        parser,
        "bench_instances",
        f"smoke run: the first {QUICK_IMAGES} images of {QUICK_SHAPE[0]}x{QUICK_SHAPE[1]}, "
        f"{QUICK_BUDGET_S} s budget, one seed",
    )
    raw = argv if argv is not None else sys.argv[1:]
    args = parser.parse_args(argv)
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    if not 1 <= args.jobs <= len(os.sched_getaffinity(0)):
        parser.error(f"--jobs {args.jobs}: give 1 to {len(os.sched_getaffinity(0))} (the cores)")
    unknown = args.skip - set(ROWS)
    if unknown:
        parser.error(f"--skip {','.join(sorted(unknown))}: choose from {', '.join(ROWS)}")
    if args.quick:
        if "--budget" not in raw:
            args.budget = QUICK_BUDGET_S
        if "--seeds" not in raw:
            args.seeds = args.seeds[:1]
    settle_run_options(args, raw, "bench_instances")
    args.data = args.data.resolve()
    args.forwarded = ["--data", str(args.data), "--budget", str(args.budget)]
    args.forwarded += ["--quick"] if args.quick else []
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.row is not None:
        return unetlab_worker(args)
    if "stardist" not in args.skip:
        check_stardist_python(args.stardist_python)
    ids = dataset_ids(args.data, args.quick)
    split, truths = prepare(args, ids)
    log(
        f"{len(split['train'])} training, {len(split['tuning'])} tuning, "
        f"{len(split['validation'])} validation images; budget {args.budget} s; "
        f"work folder {args.work_dir}; load average {load_average()}"
    )
    results: dict[str, Any] = {
        "machine": machine(torch.device("cpu"), SOFTWARE),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": load_average(),
        "command": reproducing_command(args),
        "subset": (
            f", its first {len(ids)} images of {QUICK_SHAPE[0]}x{QUICK_SHAPE[1]}"
            if args.quick
            else f", all {len(ids)} images"
        ),
        "split": split,
        "budget_s": args.budget,
        "seeds": args.seeds,
        "stardist_seed": args.stardist_seed,
        "stardist_software": "not run",
        "jobs": args.jobs,
        "cores_per_row": len(core_groups(args.jobs)[0]),
        "rows": [],
    }
    rows = results["rows"]
    if "truth" not in args.skip:
        rows.append(truth_row(truths))
        log(format_row(rows[-1]))
    tasks: list[tuple[int, Callable[[list[int]], dict[str, Any]]]] = []
    if "stardist" not in args.skip:
        for budget in (STARDIST_LONG_FACTOR * args.budget, args.budget):
            tasks.append(
                (budget, lambda cores, b=budget: stardist_row(b, args, split, truths, cores))
            )
    for seed in args.seeds:
        for name in RECIPES:
            if name not in args.skip:
                tasks.append(
                    (args.budget, lambda cores, n=name, s=seed: unetlab_process(n, s, args, cores))
                )
    rows += run_side_by_side(tasks, core_groups(args.jobs))
    stardist = [row for row in rows if row["row"] == "stardist"]
    if stardist:
        software = stardist[0]["stardist"]["software"]
        results["stardist_software"] = ", ".join(f"{k} {v}" for k, v in software.items())
    results["load_after"] = load_average()
    (args.work_dir / "results.json").write_text(json.dumps(results, indent=2))
    print_table(rows)
    if args.output is not None:
        write_section(args.output, SECTION, markdown(results))
        log(f"wrote {args.output}")
    return results


if __name__ == "__main__":
    main()

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
``unetlab.predict.predict(instances=true)``. Writes its table to its own section of
``docs/benchmarks.md``::

    python scripts/bench_instances.py             # full run (``make bench-instances``), ~2 h
    python scripts/bench_instances.py --quick     # smoke run: 10 small images, 5 s budget
    python scripts/bench_instances.py --budget 300 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch
from benchmark_page import (
    add_run_options,
    load_average,
    log,
    machine,
    machine_table,
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


@dataclass(frozen=True)
class Recipe:
    """A unetlab training recipe: overrides on top of ``experiment=dsb2018_instances``."""

    key: str
    name: str
    overrides: tuple[str, ...]


RECIPES = {
    "semantic": Recipe(
        "a",
        "unetlab semantic + connected components",
        ("data.target=semantic", "model.num_classes=2", "data.class_names=[background,nucleus]"),
    ),
    "instances": Recipe("b", "unetlab instance recipe", ()),
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
    recipe_name: str,
    seed: int,
    budget: int,
    args: argparse.Namespace,
    split_file: Path,
    validation_dir: Path,
    truths: dict[str, np.ndarray],
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
        f"data.split_lists={split_file}",
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
    output = run_dir / "predictions"
    started = time.perf_counter()
    try:
        predict(
            compose_config(
                CONFIG_DIR,
                "predict",
                [
                    f"ckpt_path={checkpoint}",
                    f"input={validation_dir}",
                    f"output={output}",
                    "instances=true",
                    "device=cpu",
                    "progress=false",
                ],
            )
        )
    finally:
        GlobalHydra.instance().clear()
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
    }
    row |= score_folder(output / "instances", ".tif", truths)
    log(format_row(row))
    return row


def stardist_row(
    budget: int,
    seed: int,
    args: argparse.Namespace,
    split: dict[str, list[str]],
    truths: dict[str, np.ndarray],
) -> dict[str, Any]:
    """StarDist 2D trained for ``budget`` seconds in its own environment, then scored."""
    output = args.work_dir / f"stardist_{budget}s"
    output.mkdir(parents=True, exist_ok=True)
    spec = {"data": str(args.data), **split, "budget_s": budget, "seed": seed}
    spec["output"] = str(output)
    spec_file = output / "spec.json"
    spec_file.write_text(json.dumps(spec, indent=2))
    log(f"(c) StarDist 2D: training for {budget} s")
    started = time.perf_counter()
    with open(output / "worker.log", "w") as worker_log:
        done = subprocess.run(
            [str(args.stardist_python), str(STARDIST_WORKER), str(spec_file)],
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        tail = (output / "worker.log").read_text()[-3000:]
        raise RuntimeError(f"the StarDist worker failed (see {output / 'worker.log'}):\n{tail}")
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
        "checkpoint, StarDist to keep its best weights and to optimise its probability and "
        "overlap thresholds; no method sees the validation images before labelling them.",
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
        f"++trainer.max_time={max_time(budget)}`, then `unetlab-predict ... instances=true`: "
        "background / interior / border classes and a seeded watershed.",
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


def validation_links(data: Path, ids: Sequence[str], folder: Path) -> Path:
    """A folder of links to the validation images, the input of ``unetlab-predict``."""
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
        f"--stardist-seed {args.stardist_seed}"
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
    add_run_options(
        parser,
        "bench_instances",
        f"smoke run: the first {QUICK_IMAGES} images of {QUICK_SHAPE[0]}x{QUICK_SHAPE[1]}, "
        f"{QUICK_BUDGET_S} s budget, one seed",
    )
    raw = argv if argv is not None else sys.argv[1:]
    args = parser.parse_args(argv)
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
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
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if "stardist" not in args.skip:
        check_stardist_python(args.stardist_python)
    ids = dataset_ids(args.data, args.quick)
    split = fixed_split(ids)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    split_file = args.work_dir / "split.json"
    split_file.write_text(
        json.dumps({"train": split["train"], "val": split["tuning"], "test": []}, indent=2)
    )
    validation_dir = validation_links(args.data, split["validation"], args.work_dir / "validation")
    truths = {
        name: read_labels(args.data / "masks" / f"{name}.png").astype(np.int64)
        for name in split["validation"]
    }
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
        "rows": [],
    }
    rows = results["rows"]
    if "truth" not in args.skip:
        rows.append(truth_row(truths))
        log(format_row(rows[-1]))
    for seed in args.seeds:
        for name in RECIPES:
            if name not in args.skip:
                rows.append(
                    unetlab_row(name, seed, args.budget, args, split_file, validation_dir, truths)
                )
    if "stardist" not in args.skip:
        for budget in (args.budget, STARDIST_LONG_FACTOR * args.budget):
            rows.append(stardist_row(budget, args.stardist_seed, args, split, truths))
        software = rows[-1]["stardist"]["software"]
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

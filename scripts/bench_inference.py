"""Tiled inference against MONAI's ``sliding_window_inference``, and a memory check.

Compare (default): unetlab and MONAI predict the same image with the same network, tile
size, tile batch, overlap and Gaussian blending, each in a fresh process so its peak
memory is its own. Three rows: both in float32; both under bf16 autocast; and
``unetlab-predict``'s fast settings (``precision=bf16 channels_last=true``, labels only)
against MONAI called as its documentation shows (float32, then ``argmax``). Each row gives
time, peak RSS and how far the labels agree (and, in float32, the largest logit
difference); ``--output docs/benchmarks.md`` writes the table into this script's section::

    python scripts/bench_inference.py --size 2048 --output docs/benchmarks.md

Memory check: runs ``unetlab-predict`` on a ``size`` x ``size`` 8-bit PNG with the default
network (``conf/model/unet.yaml``, random weights) and prints the command's peak RSS::

    python scripts/bench_inference.py --predict-rss --size 8192

Needs the ``bench`` extra (``pip install 'unetlab[bench]'``) for MONAI.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from benchmark_page import load_average, log, machine, write_section

METHODS = ("unetlab", "monai")
SETTINGS = {
    "fp32": "both in float32",
    "bf16": "both under bf16 autocast",
    "fast": "unetlab-predict fast settings vs MONAI as documented",
}
"""Row name -> what it compares."""
FAST_SETTINGS = ("precision=bf16", "channels_last=true")
"""The documented fast settings of ``unetlab-predict``."""
SECTION = "bench_inference"
SOFTWARE = ("torch", "monai", "numpy")


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size in MiB (Linux reports kilobytes)."""
    return resource.getrusage(who).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident set size now, in MiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def default_network(in_channels: int = 1) -> tuple[torch.nn.Module, dict]:
    """The default network of ``conf/model/unet.yaml`` with seeded random weights, in eval mode."""
    import hydra
    from omegaconf import OmegaConf

    from unetlab.config_location import CONFIG_DIR

    config = OmegaConf.to_container(OmegaConf.load(Path(CONFIG_DIR, "model", "unet.yaml")))
    config["in_channels"] = in_channels
    torch.manual_seed(0)
    return hydra.utils.instantiate(config).eval(), config


def predict_with(
    method: str, net: torch.nn.Module, image: torch.Tensor, args: argparse.Namespace
) -> torch.Tensor:
    """Logits (K, H, W), or labels (H, W) for unetlab's fast row, of ``image`` (1, C, H, W).

    ``args.setting`` picks the row: ``fp32``, ``bf16`` (autocast around either method), or
    ``fast`` (unetlab with the options ``unetlab-predict precision=bf16 channels_last=true``
    uses for a mask, MONAI as in its documentation).
    """
    device = torch.device(args.device)
    bf16 = args.setting == "bf16"
    if method == "unetlab":
        from unetlab.inference import overlap_tile_predict

        fast = args.setting == "fast"
        return overlap_tile_predict(
            image[0].numpy(),
            net,
            args.tile,
            args.overlap,
            args.batch_size,
            "gaussian",
            device=device,
            precision="bf16" if bf16 or fast else 32,
            channels_last=fast,
            labels_only=fast,
        )
    from monai.inferers import sliding_window_inference

    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = sliding_window_inference(
            image.to(device),
            roi_size=(args.tile, args.tile),
            sw_batch_size=args.batch_size,
            predictor=net,
            overlap=args.overlap,
            mode="gaussian",
            sw_device=device,
            device="cpu",
        )[0]
    return logits.float()


def labels_of(output: torch.Tensor | np.ndarray) -> np.ndarray:
    """Class labels of logits (K, H, W), or the labels themselves."""
    if isinstance(output, np.ndarray):
        return output
    return output.argmax(0).numpy().astype(np.uint8)


def tile_count(method: str, net: torch.nn.Module, args: argparse.Namespace) -> int:
    """Number of tiles a method runs over the image."""
    if method == "unetlab":
        from unetlab.inference import plan_tiles

        return plan_tiles((args.size, args.size), net, args.tile, args.overlap).num_tiles
    step = max(1, int(args.tile * (1 - args.overlap)))
    return (math.ceil(max(args.size - args.tile, 0) / step) + 1) ** 2


def run_worker(args: argparse.Namespace) -> None:
    """Time one method in this process and print a JSON line with its numbers.

    A first call on one tile-sized image loads everything lazily loaded (imports, kernels)
    before the timed call.
    """
    if args.threads:
        torch.set_num_threads(args.threads)
    net, _ = default_network()
    net.to(args.device)
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        predict_with(args.worker, net, torch.rand((1, 1, args.tile, args.tile)), args)
    image = torch.rand((1, 1, args.size, args.size), generator=generator)
    start_rss = current_rss_mb()
    timings = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        with torch.inference_mode():
            output = predict_with(args.worker, net, image, args)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - started)
    if args.save:
        np.save(args.save + ".labels.npy", labels_of(output))
        if isinstance(output, torch.Tensor):
            np.save(args.save + ".logits.npy", output.numpy())
    result = {
        "method": args.worker,
        "seconds": min(timings),
        "timings": timings,
        "tiles": tile_count(args.worker, net, args),
        "start_rss_mb": start_rss,
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": (
            torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda") else None
        ),
    }
    print(json.dumps(result), flush=True)


def run_method(method: str, setting: str, folder: Path, args: argparse.Namespace) -> dict:
    """One method of one row in a fresh process: its numbers and saved outputs' prefix."""
    save = str(folder / f"{setting}-{method}")
    command = [
        sys.executable,
        __file__,
        f"--worker={method}",
        f"--setting={setting}",
        f"--save={save}",
        *_shared_arguments(args),
    ]
    log(f"{setting}: {method}")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{method} ({setting}) failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "save": save}


def agreement(unetlab: dict, monai: dict) -> dict:
    """Fraction of equal labels, and the largest logit difference where both kept logits."""
    labels = [np.load(result["save"] + ".labels.npy") for result in (unetlab, monai)]
    logits = [Path(result["save"] + ".logits.npy") for result in (unetlab, monai)]
    difference = None
    if all(path.exists() for path in logits):
        difference = float(np.abs(np.load(logits[0]) - np.load(logits[1])).max())
    return {"equal_labels": float((labels[0] == labels[1]).mean()), "max_logit_diff": difference}


def compare(args: argparse.Namespace) -> None:
    """Run every row, each method in its own process; print the table, write it if asked."""
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for setting in args.settings.split(","):
            results = {
                method: run_method(method, setting, Path(folder), args) for method in METHODS
            }
            rows[setting] = {**results, **agreement(results["unetlab"], results["monai"])}
    text = markdown(rows, args)
    print(text)
    if args.output:
        write_section(args.output, SECTION, text)
        log(f"wrote {args.output}")


def markdown(rows: dict, args: argparse.Namespace) -> str:
    """The benchmark page's section: settings, machine and one table row per setting."""
    device = torch.device(args.device)
    about = machine(device, SOFTWARE)
    lines = [
        "## Tiled prediction against MONAI",
        "",
        f"`python scripts/bench_inference.py --size {args.size} --repeats {args.repeats} "
        "--output docs/benchmarks.md`: "
        f"a {args.size} x {args.size} image, the default network (`conf/model/unet.yaml`, "
        f"random weights), tile {args.tile}, overlap {args.overlap}, {args.batch_size} tiles "
        "per forward pass, Gaussian blending, on the same tile grid for both; each method "
        f"in a fresh process (the fastest of {args.repeats} calls after a warm-up call on one "
        "tile; peak RSS of the process). unetlab runs `overlap_tile_predict` with the options "
        "`unetlab-predict` passes; the fast row is `precision=bf16 channels_last=true` "
        "writing a mask (labels stitched row by row of tiles), against MONAI's "
        '`sliding_window_inference(..., mode="gaussian")` in float32 followed by `argmax`, '
        "as its documentation shows.",
        "",
        f"Machine: {about['CPU']}; {about['memory']}; GPU {about['GPU']}; "
        f"{about['software']}; load average {load_average()} (a shared machine: times "
        "vary with the load).",
        "",
        "| row | unetlab s | MONAI s | speed-up | unetlab peak RSS MiB | MONAI peak RSS MiB "
        "| equal labels | max logit diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for setting, row in rows.items():
        ours, theirs = row["unetlab"], row["monai"]
        difference = "" if row["max_logit_diff"] is None else f"{row['max_logit_diff']:.2e}"
        lines.append(
            f"| {SETTINGS[setting]} | {ours['seconds']:.1f} | {theirs['seconds']:.1f} "
            f"| {theirs['seconds'] / ours['seconds']:.2f}x | {ours['peak_rss_mb']:.0f} "
            f"| {theirs['peak_rss_mb']:.0f} | {100 * row['equal_labels']:.3f} % | {difference} |"
        )
    return "\n".join(lines)


def _shared_arguments(args: argparse.Namespace) -> list[str]:
    return [
        f"--size={args.size}",
        f"--tile={args.tile}",
        f"--overlap={args.overlap}",
        f"--batch-size={args.batch_size}",
        f"--device={args.device}",
        f"--threads={args.threads}",
        f"--repeats={args.repeats}",
    ]


def predict_rss(args: argparse.Namespace) -> None:
    """Run ``unetlab-predict`` on a large PNG with the default network; print its peak RSS."""
    from PIL import Image

    net, config = default_network()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        checkpoint = {
            "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
            "unetlab_config": {"model": config},
            "unetlab_data": {"mean": [0.5], "std": [0.25], "class_names": ["background", "cell"]},
        }
        torch.save(checkpoint, folder / "default.ckpt")
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 256, (args.size, args.size), dtype=np.uint8)).save(
            folder / "large.png"
        )
        del net
        command = [
            sys.executable,
            "-m",
            "unetlab.predict",
            f"ckpt_path={folder / 'default.ckpt'}",
            f"input={folder / 'large.png'}",
            f"output={folder / 'out'}",
            f"tile_size={args.tile}",
            f"overlap={args.overlap}",
            f"batch_size={args.batch_size}",
            f"device={args.device}",
            f"save_probabilities={str(args.save_all).lower()}",
            f"save_overlay={str(args.save_all).lower()}",
            "progress=false",
            *(FAST_SETTINGS if args.fast else ()),
        ]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if done.returncode:
            sys.exit(f"unetlab-predict failed:\n{done.stderr[-3000:]}")
        print(done.stdout.strip().splitlines()[-1])
    print(
        f"unetlab-predict on {args.size}x{args.size} (tile {args.tile}, batch {args.batch_size}, "
        f"outputs: mask{', probabilities, overlay' if args.save_all else ''}"
        f"{', ' + ' '.join(FAST_SETTINGS) if args.fast else ''}): "
        f"{seconds:.1f} s, peak RSS {peak_rss_mb(resource.RUSAGE_CHILDREN):.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="image edge in pixels")
    parser.add_argument("--tile", type=int, default=512, help="tile edge in pixels")
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--repeats", type=int, default=1, help="timed calls; the fastest counts")
    parser.add_argument(
        "--settings",
        default=",".join(SETTINGS),
        help=f"rows, comma-separated: {', '.join(SETTINGS)}",
    )
    parser.add_argument("--output", type=Path, help="markdown page to write the table into")
    parser.add_argument("--predict-rss", action="store_true", help="memory check of the CLI")
    parser.add_argument(
        "--save-all", action="store_true", help="with --predict-rss: probabilities and overlay too"
    )
    parser.add_argument(
        "--fast", action="store_true", help="with --predict-rss: " + " ".join(FAST_SETTINGS)
    )
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument(
        "--setting", choices=tuple(SETTINGS), default="fp32", help=argparse.SUPPRESS
    )
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
    elif args.predict_rss:
        predict_rss(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()

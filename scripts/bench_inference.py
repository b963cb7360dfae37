"""Tiled inference against MONAI's ``sliding_window_inference``, and a memory check.

Compare (default): both predict the same image with the same network, tile size, tile
batch, overlap and Gaussian blending, each in a fresh process so its peak memory is its
own; prints each one's time and peak RSS and the time ratio (unetlab / MONAI)::

    python scripts/bench_inference.py --size 4096

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

METHODS = ("unetlab", "monai")


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
    """Logits (K, H, W) of ``image`` (1, C, H, W) by one method, on the CPU."""
    device = torch.device(args.device)
    if method == "unetlab":
        from unetlab.inference import overlap_tile_predict

        return overlap_tile_predict(
            image[0].numpy(),
            net,
            args.tile,
            args.overlap,
            args.batch_size,
            "gaussian",
            device=device,
        )
    from monai.inferers import sliding_window_inference

    return sliding_window_inference(
        image.to(device),
        roi_size=(args.tile, args.tile),
        sw_batch_size=args.batch_size,
        predictor=net,
        overlap=args.overlap,
        mode="gaussian",
        sw_device=device,
        device="cpu",
    )[0]


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
            logits = predict_with(args.worker, net, image, args)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - started)
        del logits
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


def compare(args: argparse.Namespace) -> None:
    """Run every method in its own process and print the comparison."""
    results = {}
    for method in args.methods.split(","):
        command = [sys.executable, __file__, "--worker", method, *_shared_arguments(args)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"{method} failed:\n{done.stderr[-3000:]}")
        results[method] = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"image {args.size}x{args.size}, tile {args.tile}, overlap {args.overlap}, "
        f"batch {args.batch_size}, gaussian blending, device {args.device}, "
        f"{torch.get_num_threads() if not args.threads else args.threads} threads"
    )
    for method, result in results.items():
        gpu = f", peak GPU {result['peak_gpu_mb']:.0f} MiB" if result["peak_gpu_mb"] else ""
        print(
            f"{method:8s} {result['seconds']:8.2f} s  {result['tiles']:4d} tiles  "
            f"peak RSS {result['peak_rss_mb']:7.0f} MiB (+{result['peak_rss_mb'] - result['start_rss_mb']:.0f} "
            f"over the {result['start_rss_mb']:.0f} MiB before inference){gpu}"
        )
    if set(METHODS) <= set(results):
        ratio = results["unetlab"]["seconds"] / results["monai"]["seconds"]
        print(f"time ratio unetlab / monai: {ratio:.3f}")


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
        ]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if done.returncode:
            sys.exit(f"unetlab-predict failed:\n{done.stderr[-3000:]}")
        print(done.stdout.strip().splitlines()[-1])
    print(
        f"unetlab-predict on {args.size}x{args.size} (tile {args.tile}, batch {args.batch_size}, "
        f"outputs: mask{', probabilities, overlay' if args.save_all else ''}): "
        f"{seconds:.1f} s, peak RSS {peak_rss_mb(resource.RUSAGE_CHILDREN):.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="image edge in pixels")
    parser.add_argument("--tile", type=int, default=512, help="tile edge in pixels")
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--repeats", type=int, default=1, help="timed calls; the fastest counts")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument("--predict-rss", action="store_true", help="memory check of the CLI")
    parser.add_argument(
        "--save-all", action="store_true", help="with --predict-rss: probabilities and overlay too"
    )
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
    elif args.predict_rss:
        predict_rss(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()

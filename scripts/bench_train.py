"""Training and inference speed of the networks against segmentation_models_pytorch.

One run measures, on this machine:

- training throughput (forward, backward and an AdamW step; images/s) and inference
  throughput of our networks against ``segmentation_models_pytorch`` with the same
  architecture (``ResNetUNet`` / ``smp.Unet``, same ResNet encoder and decoder widths;
  ``UNetPlusPlus`` / ``smp.UnetPlusPlus``), and the peak memory of each;
- the run options of ``ResNetUNet`` against the plain network: ``model.channels_last``,
  bf16 / fp16 autocast (``trainer.precision=bf16-mixed|16-mixed``), ``model.compile``,
  ``model.checkpointing`` (with the memory it saves) and, on CUDA, ``cudnn.benchmark``
  (``trainer.benchmark=true``);
- ``MeanIoU.update`` against torchmetrics' ``MulticlassJaccardIndex`` on the same tensors;
- the start-up time of ``python train.py --help``.

Networks compared with each other are timed in the same process, alternating
(A, B, A, B, ...), and the median step is reported, so a load change on the machine hits
both. Peak memory is measured in a fresh process per network: the growth of the peak
resident set size over one inference and two training steps on CPU, or
``torch.cuda.max_memory_allocated`` on CUDA. Writes the tables to its own section of
``docs/benchmarks.md`` (the other sections of the page are kept)::

    python scripts/bench_train.py            # full run (``make bench``), tens of minutes on 2 cores
    python scripts/bench_train.py --quick    # smoke run: small images, one repetition
    python scripts/bench_train.py --device cuda

Needs the ``bench`` extra (``pip install -e '.[bench]'``) for segmentation_models_pytorch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from benchmark_page import load_average, log, machine, write_section
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
IN_CHANNELS = 1
NUM_CLASSES = 2
DECODER_CHANNELS = (256, 128, 64, 32, 16)
METRIC_BATCH, METRIC_SIZE = 8, 256  # MeanIoU against torchmetrics, also in --quick runs
SOFTWARE = ("torch", "torchvision", "segmentation-models-pytorch", "torchmetrics", "lightning")
SECTION = "bench_train"


@dataclass(frozen=True)
class Variant:
    """One network configuration to time.

    Attributes:
        network: ``resnet_unet``, ``unet_plusplus``, ``smp_unet`` or ``smp_unet_plusplus``.
        options: ``checkpointing``, ``channels_last``, ``compile`` for our networks.
        autocast: ``bfloat16``, ``float16`` or None (fp32).
        cudnn_benchmark: Set ``torch.backends.cudnn.benchmark`` while it runs.
    """

    network: str
    options: dict[str, bool] = field(default_factory=dict)
    autocast: str | None = None
    cudnn_benchmark: bool = False


def build_network(variant: Variant, encoder: str) -> nn.Module:
    """The network of ``variant`` with seeded random weights, run options applied."""
    torch.manual_seed(0)
    if variant.network.startswith("smp_"):
        import segmentation_models_pytorch as smp

        peer = smp.Unet if variant.network == "smp_unet" else smp.UnetPlusPlus
        return peer(
            encoder,
            encoder_weights=None,
            in_channels=IN_CHANNELS,
            classes=NUM_CLASSES,
            decoder_channels=DECODER_CHANNELS,
        )
    from unetlab.models import ResNetUNet, UNetPlusPlus

    if variant.network == "resnet_unet":
        net = ResNetUNet(
            IN_CHANNELS, NUM_CLASSES, encoder, decoder_channels=DECODER_CHANNELS, **variant.options
        )
    else:  # the defaults of conf/model/unet_plusplus.yaml
        net = UNetPlusPlus(IN_CHANNELS, NUM_CLASSES, base_channels=32, depth=4, **variant.options)
    return net.apply_run_options()


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Runner:
    """A network with its optimizer and inputs, stepping in training or inference.

    Args:
        variant: What to build and how to run it.
        encoder: ResNet encoder of the ResNet U-Nets.
        batch: Images per step.
        size: Image height and width.
        device: Where to run.
    """

    def __init__(
        self, variant: Variant, encoder: str, batch: int, size: int, device: torch.device
    ) -> None:
        self.variant = variant
        self.device = device
        self.model = build_network(variant, encoder).to(device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        generator = torch.Generator().manual_seed(1)
        self.images = torch.randn(batch, IN_CHANNELS, size, size, generator=generator).to(device)
        self.target = torch.randint(0, NUM_CLASSES, (batch, size, size), generator=generator)
        self.target = self.target.to(device)
        dtype = getattr(torch, variant.autocast) if variant.autocast else None
        self.autocast_dtype = dtype
        self.scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    @contextlib.contextmanager
    def _context(self) -> Iterator[None]:
        previous = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = self.variant.cudnn_benchmark
        try:
            with torch.autocast(
                self.device.type,
                dtype=self.autocast_dtype,
                enabled=self.autocast_dtype is not None,
            ):
                yield
        finally:
            torch.backends.cudnn.benchmark = previous

    def train_step(self) -> float:
        """One forward, backward and optimizer step; returns its seconds."""
        self.model.train()
        synchronize(self.device)
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        with self._context():
            loss = F.cross_entropy(self.model(self.images), self.target)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        synchronize(self.device)
        return time.perf_counter() - start

    def infer_step(self) -> float:
        """One forward pass in eval mode without autograd; returns its seconds."""
        self.model.eval()
        synchronize(self.device)
        start = time.perf_counter()
        with torch.inference_mode(), self._context():
            self.model(self.images)
        synchronize(self.device)
        return time.perf_counter() - start


def interleaved_throughput(
    runners: list[Runner], step: str, warmup: int, repeats: int, batch: int
) -> list[float]:
    """Images/s of every runner: warm-up steps, then ``repeats`` rounds in turn; medians."""
    for runner in runners:
        for _ in range(warmup):
            getattr(runner, step)()
    times: list[list[float]] = [[] for _ in runners]
    for _ in range(repeats):
        for index, runner in enumerate(runners):
            times[index].append(getattr(runner, step)())
    return [batch / statistics.median(seconds) for seconds in times]


def peak_rss_mib() -> float:
    """Peak resident set size of this process since :func:`reset_peak_rss`, in MiB.

    Linux's ``VmHWM``: unlike ``getrusage``'s ``ru_maxrss``, it is not inherited from the
    process that started this one.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmHWM line")


def reset_peak_rss() -> float:
    """Reset the peak resident set size to the current one (Linux >= 4.0); return it in MiB."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    return peak_rss_mib()


def measure_memory(variant: Variant, args: argparse.Namespace) -> dict[str, Any]:
    """Parameters and the peak memory of inference and training above the built network.

    Meant for a fresh process (``--worker``), whose allocator holds no memory freed by
    other networks.
    """
    device = torch.device(args.device)
    runner = Runner(variant, args.encoder, args.batch, args.size, device)
    result: dict[str, Any] = {"params": parameter_count(runner.model)}
    if device.type == "cuda":
        baseline = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        runner.infer_step()
        result["infer_mib"] = (torch.cuda.max_memory_allocated(device) - baseline) / 2**20
        torch.cuda.reset_peak_memory_stats(device)
        runner.train_step()
        runner.train_step()
        result["train_mib"] = (torch.cuda.max_memory_allocated(device) - baseline) / 2**20
    else:
        baseline = reset_peak_rss()
        runner.infer_step()
        result["infer_mib"] = peak_rss_mib() - baseline
        runner.train_step()
        runner.train_step()
        result["train_mib"] = peak_rss_mib() - baseline
    return result


def memory_in_fresh_process(variant: Variant, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`measure_memory` in a new Python process."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        json.dumps(asdict(variant)),
        "--device",
        args.device,
        "--encoder",
        args.encoder,
        "--batch",
        str(args.batch),
        "--size",
        str(args.size),
        *(["--threads", str(args.threads)] if args.threads else []),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory worker for {variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peer_rows(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """Our networks against their segmentation_models_pytorch peers."""
    pairs = [("resnet_unet", "smp_unet"), ("unet_plusplus", "smp_unet_plusplus")]
    rows = []
    for ours, peer in pairs:
        if ours in args.skip:
            continue
        variants = [Variant(ours), Variant(peer)]
        runners = [Runner(v, args.encoder, args.batch, args.size, device) for v in variants]
        row: dict[str, Any] = {"network": ours, "peer": peer}
        row["params"] = [parameter_count(r.model) for r in runners]
        if ours == "resnet_unet" and row["params"][0] > row["params"][1]:
            raise AssertionError(f"ResNetUNet has more parameters than smp.Unet: {row['params']}")
        log(f"{ours} vs {peer}: training")
        row["train"] = interleaved_throughput(
            runners, "train_step", args.warmup, args.repeats, args.batch
        )
        log(f"{ours} vs {peer}: inference")
        row["infer"] = interleaved_throughput(
            runners, "infer_step", args.warmup, args.repeats, args.batch
        )
        del runners
        log(f"{ours} vs {peer}: memory")
        memory = [memory_in_fresh_process(v, args) for v in variants]
        row["train_mib"] = [m["train_mib"] for m in memory]
        row["infer_mib"] = [m["infer_mib"] for m in memory]
        rows.append(row)
        log(format_peer_row(row))
    return rows


def option_variants(args: argparse.Namespace, device: torch.device) -> dict[str, Variant]:
    """The run options of ResNetUNet to compare with the plain network, by row name."""
    variants = {
        "plain": Variant("resnet_unet"),
        "channels_last": Variant("resnet_unet", {"channels_last": True}),
        "bf16 autocast": Variant("resnet_unet", autocast="bfloat16"),
        "checkpointing": Variant("resnet_unet", {"checkpointing": True}),
        "compile": Variant("resnet_unet", {"compile": True}),
    }
    if device.type == "cuda":  # CPUs emulate fp16 matrix products: many times slower
        variants["fp16 autocast"] = Variant("resnet_unet", autocast="float16")
        variants["cudnn.benchmark"] = Variant("resnet_unet", cudnn_benchmark=True)
        variants["channels_last + bf16 + cudnn.benchmark"] = Variant(
            "resnet_unet", {"channels_last": True}, "bfloat16", cudnn_benchmark=True
        )
    return {name: v for name, v in variants.items() if name == "plain" or name not in args.skip}


OPTION_SETTINGS = {
    "plain": "defaults",
    "channels_last": "`model.channels_last=true`",
    "bf16 autocast": "`trainer.precision=bf16-mixed`",
    "fp16 autocast": "`trainer.precision=16-mixed`",
    "checkpointing": "`model.checkpointing=true`",
    "compile": "`model.compile=true`",
    "cudnn.benchmark": "`trainer.benchmark=true`",
    "channels_last + bf16 + cudnn.benchmark": "the three above",
}


def option_rows(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """Each run option of ResNetUNet, timed alternately with the others, and its memory."""
    if "options" in args.skip:
        return []
    variants = option_variants(args, device)
    log(f"options: building {', '.join(variants)}")
    runners = [Runner(v, args.encoder, args.batch, args.size, device) for v in variants.values()]
    log("options: training (compile compiles during the warm-up)")
    train = interleaved_throughput(runners, "train_step", args.warmup, args.repeats, args.batch)
    log("options: inference")
    infer = interleaved_throughput(runners, "infer_step", args.warmup, args.repeats, args.batch)
    del runners
    rows = []
    for index, (name, variant) in enumerate(variants.items()):
        row = {"option": name, "train": train[index], "infer": infer[index]}
        if name == "compile":  # the compiler's own memory would be counted
            row["train_mib"] = row["infer_mib"] = None
        else:
            log(f"options: memory of {name}")
            memory = memory_in_fresh_process(variant, args)
            row["train_mib"], row["infer_mib"] = memory["train_mib"], memory["infer_mib"]
        rows.append(row)
    return rows


def metric_rows(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """``MeanIoU.update`` against ``MulticlassJaccardIndex.update``: updates/s, alternated."""
    from torchmetrics.classification import MulticlassJaccardIndex

    from unetlab.metrics import MeanIoU

    rows = []
    for classes in (2, 8):
        generator = torch.Generator().manual_seed(classes)
        shape = (METRIC_BATCH, classes, METRIC_SIZE, METRIC_SIZE)
        logits = torch.randn(shape, generator=generator).to(device)
        target = torch.randint(0, classes, (shape[0], *shape[2:]), generator=generator)
        target = target.to(device)
        metrics = [MeanIoU(classes).to(device), MulticlassJaccardIndex(classes).to(device)]
        times: list[list[float]] = [[], []]
        for repeat in range(args.metric_repeats + 1):
            for index, metric in enumerate(metrics):
                synchronize(device)
                start = time.perf_counter()
                metric.update(logits, target)
                synchronize(device)
                if repeat > 0:  # the first round warms up
                    times[index].append(time.perf_counter() - start)
        ours, peer = (1 / statistics.median(t) for t in times)
        rows.append({"classes": classes, "shape": list(shape), "ours": ours, "peer": peer})
    return rows


def startup_seconds(repeats: int) -> float:
    """Median wall time of ``python train.py --help``."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, str(ROOT / "train.py"), "--help"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def mib(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def format_peer_row(row: dict[str, Any]) -> str:
    (p_ours, p_peer), (t_ours, t_peer), (i_ours, i_peer) = row["params"], row["train"], row["infer"]
    return (
        f"{row['network']} vs {row['peer']}: params {p_ours:,} / {p_peer:,}; "
        f"train {t_ours:.2f} / {t_peer:.2f} img/s (x{t_ours / t_peer:.2f}); "
        f"infer {i_ours:.2f} / {i_peer:.2f} img/s (x{i_ours / i_peer:.2f}); "
        f"train memory {mib(row['train_mib'][0])} / {mib(row['train_mib'][1])} MiB"
    )


PEER_NAMES = {
    "smp_unet": "`smp.Unet`",
    "smp_unet_plusplus": "`smp.UnetPlusPlus`",
}


def markdown(results: dict[str, Any]) -> str:
    """The results as this script's section of ``docs/benchmarks.md``."""
    settings = results["settings"]
    memory_kind = (
        "`torch.cuda.max_memory_allocated` growth"
        if settings["device"] == "cuda"
        else "peak RSS growth"
    )
    lines = [
        "Written by `make bench` (`python scripts/bench_train.py`); do not edit by hand.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in results["machine"].items()),
        f"| load average (1/5/15 min) | {results['load_before']} at the start, "
        f"{results['load_after']} at the end |",
        f"| date | {results['date']} |",
        "",
        f"Settings: device `{settings['device']}`, batch {settings['batch']}, "
        f"{settings['size']}x{settings['size']} images, {IN_CHANNELS} input channel, "
        f"{NUM_CLASSES} classes, fp32 unless stated, AdamW, cross-entropy; encoder "
        f"`{settings['encoder']}`, decoder channels {list(DECODER_CHANNELS)}. Throughput is "
        f"images/s from the median of {plural(settings['repeats'], 'step')} after "
        f"{plural(settings['warmup'], 'warm-up step')}; networks in one table are stepped in turn (A, B, A, B, ...) so that "
        f"load on the machine hits all alike. Memory: {memory_kind} over one inference and "
        "two training steps, in a fresh process per network (MiB). On a small shared "
        "machine, other jobs slow every multi-threaded operation down (each waits for a "
        "descheduled thread) and step times grow several-fold: compare numbers taken at a "
        "low load average.",
    ]
    if settings["device"] != "cuda":
        lines += [
            "",
            "No GPU machine was available for these numbers: the GPU rows (bf16 throughput "
            "and GPU memory per variant, `cudnn.benchmark`) come from "
            "`python scripts/bench_train.py --device cuda` on a machine with one.",
        ]
    if results["peers"]:
        lines += [
            "",
            "## Our networks against segmentation_models_pytorch",
            "",
            "| network | peer | params ours / peer | train img/s ours / peer | ratio "
            "| infer img/s ours / peer | ratio | train memory ours / peer | infer memory "
            "ours / peer |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in results["peers"]:
            (t_ours, t_peer), (i_ours, i_peer) = row["train"], row["infer"]
            lines.append(
                f"| `{row['network']}` | {PEER_NAMES[row['peer']]} "
                f"| {row['params'][0]:,} / {row['params'][1]:,} "
                f"| {t_ours:.2f} / {t_peer:.2f} | **{t_ours / t_peer:.2f}x** "
                f"| {i_ours:.2f} / {i_peer:.2f} | **{i_ours / i_peer:.2f}x** "
                f"| {mib(row['train_mib'][0])} / {mib(row['train_mib'][1])} "
                f"| {mib(row['infer_mib'][0])} / {mib(row['infer_mib'][1])} |"
            )
        lines += [
            "",
            f"`resnet_unet` and `smp.Unet` share the architecture: the torchvision "
            f"`{settings['encoder']}` encoder and decoder channels {list(DECODER_CHANNELS)}. "
            "Our decoder upsamples with a 2x2 transposed convolution that halves the "
            "channels before the skip concatenation; smp upsamples by nearest neighbour and "
            "convolves the full concatenation (more multiply-adds), and ends in a 3x3 head. "
            "Our 1x1 head is one batched matrix product (`PointwiseConv2d`): with more than "
            "one thread PyTorch runs 1x1 convolutions through oneDNN, several times slower "
            "for 16 -> 2 channels at full resolution, forward and backward. "
            "`unet_plusplus` is the paper's UNet++ (`conf/model/unet_plusplus.yaml`: plain "
            f"4-level encoder, 32 base channels); `smp.UnetPlusPlus` uses the "
            f"`{settings['encoder']}` encoder, so that ratio compares two designs.",
        ]
    if results["options"]:
        plain = results["options"][0]
        lines += [
            "",
            "## Run options of `resnet_unet`",
            "",
            "| option | setting | train img/s | vs plain | infer img/s | vs plain "
            "| train memory | vs plain | infer memory |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in results["options"]:
            saved = (
                "—"
                if row["train_mib"] is None or plain["train_mib"] is None
                else f"{row['train_mib'] / plain['train_mib']:.2f}x"
            )
            lines.append(
                f"| {row['option']} | {OPTION_SETTINGS[row['option']]} "
                f"| {row['train']:.2f} | {row['train'] / plain['train']:.2f}x "
                f"| {row['infer']:.2f} | {row['infer'] / plain['infer']:.2f}x "
                f"| {mib(row['train_mib'])} | {saved} | {mib(row['infer_mib'])} |"
            )
        lines += [
            "",
            "Autocast is what `trainer.precision=bf16-mixed` / `16-mixed` turns on (fp16, "
            "with a gradient scaler, is measured on CUDA only: CPUs emulate it). `compile` is timed after its compilation (done in the "
            "warm-up steps, and again for eval mode); its memory is not measured because the "
            "compiler's own memory would count. `checkpointing` keeps only each encoder "
            "stage's and decoder block's inputs and recomputes the rest in the backward pass: "
            "the same loss and gradients (`tests/test_model_options.py`) for less memory and "
            "about one more forward pass.",
        ]
    if results["metrics"]:
        lines += [
            "",
            "## `MeanIoU.update` against torchmetrics",
            "",
            "| logits (N, C, H, W) | ours updates/s | `MulticlassJaccardIndex` updates/s | ratio |",
            "|---|---|---|---|",
        ]
        for row in results["metrics"]:
            lines.append(
                f"| {tuple(row['shape'])} | {row['ours']:.1f} | {row['peer']:.1f} "
                f"| **{row['ours'] / row['peer']:.2f}x** |"
            )
        lines += [
            "",
            "Both take the same logits and integer targets with default arguments "
            "(torchmetrics validates its inputs, as ours does). Ours takes the labels with "
            "`max(dim=1)` (the first maximum, as argmax, which over the class dimension is "
            "several times slower on CPU), checks the targets with one min/max pass and "
            "counts `target * C + label` with one `bincount`.",
        ]
    if results["startup"] is not None:
        lines += [
            "",
            "## Start-up",
            "",
            f"`python train.py --help`: **{results['startup']:.2f} s** (median of "
            f"{plural(settings['startup_repeats'], 'run')}).",
        ]
    return "\n".join(lines) + "\n"


def print_summary(results: dict[str, Any]) -> None:
    print(f"load average: {results['load_before']} -> {results['load_after']}")
    for row in results["peers"]:
        print(format_peer_row(row))
    if results["options"]:
        plain = results["options"][0]
        print(
            f"{'option':40s} {'train img/s':>12s} {'x plain':>8s} {'infer img/s':>12s}"
            f" {'x plain':>8s} {'train MiB':>10s}"
        )
        for row in results["options"]:
            print(
                f"{row['option']:40s} {row['train']:12.2f} {row['train'] / plain['train']:8.2f}"
                f" {row['infer']:12.2f} {row['infer'] / plain['infer']:8.2f}"
                f" {mib(row['train_mib']):>10s}"
            )
    for row in results["metrics"]:
        print(
            f"MeanIoU {tuple(row['shape'])}: {row['ours']:.1f} vs torchmetrics "
            f"{row['peer']:.1f} updates/s (x{row['ours'] / row['peer']:.2f})"
        )
    if results["startup"] is not None:
        print(f"python train.py --help: {results['startup']:.2f} s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--encoder", default="resnet34", help="ResNet encoder of the U-Nets")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256, help="image height and width")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per network")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per network")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--metric-repeats", type=int, default=20)
    parser.add_argument("--startup-repeats", type=int, default=3)
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated parts to leave out: resnet_unet, unet_plusplus, options, "
        "an option name (compile, checkpointing, ...), metrics, startup",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 64x64 images, batch 2, one timed step, no compile, no UNet++",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="markdown file to write (--quick writes none unless given)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    if args.quick:
        args.size, args.batch, args.repeats, args.warmup = 64, 2, 1, 1
        args.metric_repeats, args.startup_repeats = 3, 1
        args.skip |= {"compile", "unet_plusplus"}
        if "--output" not in (argv if argv is not None else sys.argv):
            args.output = None
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(measure_memory(Variant(**json.loads(args.worker)), args)))
        return {}
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    results: dict[str, Any] = {
        "machine": machine(device, SOFTWARE),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": load_average(),
        "settings": {
            key: getattr(args, key)
            for key in ("device", "encoder", "batch", "size", "repeats", "warmup")
        }
        | {"startup_repeats": args.startup_repeats},
    }
    log(f"load average {results['load_before']}")
    skip = args.skip
    results["startup"] = None if "startup" in skip else startup_seconds(args.startup_repeats)
    results["metrics"] = [] if "metrics" in skip else metric_rows(args, device)
    results["peers"] = peer_rows(args, device)
    results["options"] = option_rows(args, device)
    results["load_after"] = load_average()
    print_summary(results)
    if args.output is not None:
        write_section(args.output, SECTION, markdown(results))
        log(f"wrote {args.output}")
    return results


if __name__ == "__main__":
    main()

"""What the benchmark scripts share: the machine they ran on, and their sections of a page.

Several scripts write ``docs/benchmarks.md``. Each one owns a section between two HTML
comments (``<!-- NAME: begin -->`` and ``<!-- NAME: end -->``, invisible on the site) and
replaces only that section, so the tables of one script survive a run of another.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import queue
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
VECTOR_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_fp16")
PAGE_TITLE = "# Benchmarks"


def section_markers(name: str) -> tuple[str, str]:
    """The comments that open and close section ``name``."""
    return f"<!-- {name}: begin -->", f"<!-- {name}: end -->"


def write_section(path: Path, name: str, text: str) -> None:
    """Replace section ``name`` of the markdown page ``path`` by ``text``; keep the rest.

    A page without the section gets it at its end; a missing page is created with the
    title ``# Benchmarks``.

    Args:
        path: The markdown page.
        name: The section's name in its markers (the script that writes it).
        text: The section's markdown.
    """
    begin, end = section_markers(name)
    block = f"{begin}\n\n{text.strip()}\n\n{end}\n"
    page = path.read_text() if path.exists() else f"{PAGE_TITLE}\n"
    start = page.find(begin)
    if start < 0:
        page = page.rstrip("\n") + "\n\n" + block
    else:
        stop = page.find(end, start)
        if stop < 0:
            raise ValueError(
                f"{path}: '{begin}' has no '{end}' after it; restore the closing marker "
                "or delete the section"
            )
        rest = page[stop + len(end) :].lstrip("\n")
        page = page[:start] + block + ("\n" + rest if rest else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)


def machine(device: torch.device, packages: Sequence[str]) -> dict[str, str]:
    """What the numbers were measured on: CPU, memory, GPU, versions of ``packages``, OS."""
    cpu, memory = platform.processor() or platform.machine(), "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        lines = cpuinfo.read().splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        flags = next(
            (line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []
        )
        units = [flag for flag in VECTOR_FLAGS if flag in flags]
        cpu = (names[0] if names else cpu) + (f" ({', '.join(units)})" if units else "")
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
        memory = f"{total_kib / 2**20:.0f} GiB"
    return {
        "CPU": f"{cpu}, {len(os.sched_getaffinity(0))} cores, {torch.get_num_threads()} threads",
        "memory": memory,
        "GPU": torch.cuda.get_device_name(device) if device.type == "cuda" else "none",
        "software": software_versions(packages),
        "OS": platform.platform(),
    }


def software_versions(packages: Sequence[str]) -> str:
    """``Python 3.x, name version, ...`` for the installed ones of ``packages``."""
    versions = []
    for name in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{name} {metadata.version(name)}")
    return f"Python {platform.python_version()}, " + ", ".join(versions)


def machine_table(results: Mapping[str, Any], extra: Sequence[str] = ()) -> list[str]:
    """Markdown rows of what a run measured on: ``machine()``, ``extra`` rows, load, date.

    Args:
        results: A run's results with ``machine``, ``load_before``, ``load_after``, ``date``.
        extra: More ``| name | value |`` rows, placed after the machine's.
    """
    return [
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in results["machine"].items()),
        *extra,
        f"| load average (1/5/15 min) | {results['load_before']} at the start, "
        f"{results['load_after']} at the end |",
        f"| date | {results['date']} |",
    ]


def add_run_options(parser: argparse.ArgumentParser, script: str, quick_help: str) -> None:
    """``--work-dir``, ``--quick`` and ``--output`` of a script that trains and writes a section.

    Args:
        parser: The script's parser.
        script: The script's name: the work folder is ``logs/<script>/<time>`` by default.
        quick_help: What ``--quick`` runs.
    """
    parser.add_argument(
        "--work-dir",
        type=Path,
        help=f"runs, predictions and results.json (default logs/{script}/<time>)",
    )
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="markdown page whose section to write (--quick writes none unless given)",
    )


def settle_run_options(args: argparse.Namespace, raw: Sequence[str], script: str) -> None:
    """A quick run writes no page unless ``--output`` is given; the work folder is absolute."""
    if args.quick and "--output" not in raw:
        args.output = None
    if args.work_dir is None:
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        args.work_dir = ROOT / "logs" / script / stamp
    args.work_dir = args.work_dir.resolve()


def core_groups(jobs: int) -> list[list[int]]:
    """The cores of this process shared out into ``jobs`` equal groups, one per process.

    With fewer cores than ``jobs`` every group holds all of them (the processes share).
    """
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < jobs:
        log(f"only core(s) {cores} for {jobs} processes side by side: they share them")
        return [cores] * jobs
    size = len(cores) // jobs
    return [cores[i * size : (i + 1) * size] for i in range(jobs)]


def run_pinned(command: list[str], cores: list[int], log_file: Path) -> None:
    """Run ``command`` on ``cores`` only, with as many threads; its output to ``log_file``.

    Raises:
        RuntimeError: The command failed; the message ends with the tail of its log.
    """
    threads = str(len(cores))
    env = os.environ | {
        name: threads
        for name in (
            "OMP_NUM_THREADS",
            "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS",
            "TF_NUM_INTRAOP_THREADS",
            "TF_NUM_INTEROP_THREADS",
        )
    }
    with open(log_file, "w") as handle:
        done = subprocess.run(
            command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=lambda: os.sched_setaffinity(0, cores),
            check=False,
        )
    if done.returncode != 0:
        tail = log_file.read_text()[-3000:]
        raise RuntimeError(f"{' '.join(command[:3])} failed (see {log_file}):\n{tail}")


def run_side_by_side(
    tasks: Sequence[tuple[int, Callable[[list[int]], dict[str, Any]]]], groups: list[list[int]]
) -> list[dict[str, Any]]:
    """Run ``(budget, task)`` pairs, longest first, as many at a time as there are core groups.

    Each task gets a free group of cores and returns its row. Every task runs even if
    another fails; the failures are raised together at the end.
    """
    free: queue.Queue[list[int]] = queue.Queue()
    for group in groups:
        free.put(group)

    def run(task: Callable[[list[int]], dict[str, Any]]) -> dict[str, Any]:
        cores = free.get()
        try:
            return task(cores)
        finally:
            free.put(cores)

    ordered = sorted(tasks, key=lambda pair: -pair[0])
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        futures = [pool.submit(run, task) for _, task in ordered]
    failures = [future.exception() for future in futures if future.exception() is not None]
    if failures:
        raise SystemExit("\n".join(str(failure) for failure in failures))
    return [future.result() for future in futures]


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, ``a / b / c``."""
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def log(message: str) -> None:
    """A time-stamped progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

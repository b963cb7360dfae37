"""``trainer.precision=fastest``: the quickest precision this machine trains in, chosen at start.

bf16 autocast doubles training throughput on CPUs with AVX-512 BF16 or AMX and on recent
GPUs, but a CPU without those instructions emulates it, about ten times slower than float32.
A recipe meant for any machine (``experiment=fast``) therefore asks for ``fastest``.
"""

from __future__ import annotations

import logging

import torch
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)

FASTEST = "fastest"
GPU_ACCELERATORS = ("auto", "gpu", "cuda")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX tiles)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def fastest_dtype(device_type: str) -> str:
    """``bf16``, ``fp16`` or ``32``: the fastest autocast on a ``cpu`` or ``cuda`` device."""
    if device_type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "32"


TRAINER_PRECISIONS = {
    ("cuda", "bf16"): ("bf16-mixed", "the GPU computes bfloat16"),
    ("cuda", "fp16"): ("16-mixed", "the GPU has no bfloat16: float16 with loss scaling"),
    ("cpu", "bf16"): ("bf16-mixed", "the CPU has AVX-512 BF16 or AMX"),
    ("cpu", "32"): (
        "32-true",
        "the CPU has no AVX-512 BF16 or AMX, so bf16 would be emulated (slower)",
    ),
}


def fastest_precision(accelerator: str) -> tuple[str, str]:
    """``(precision, why)`` for training on ``accelerator`` (``trainer.accelerator``)."""
    gpu = accelerator in GPU_ACCELERATORS and torch.cuda.is_available()
    device_type = "cuda" if gpu else "cpu"
    return TRAINER_PRECISIONS[device_type, fastest_dtype(device_type)]


def resolve_precision(cfg: DictConfig) -> None:
    """Replace ``trainer.precision=fastest`` by the precision it means on this machine.

    The run's recorded config then holds the precision it trained in.
    """
    trainer = cfg.get("trainer")
    if trainer is None or trainer.get("precision") != FASTEST:
        return
    precision, why = fastest_precision(str(trainer.get("accelerator", "auto")))
    with open_dict(trainer):
        trainer.precision = precision
    log.info("trainer.precision=%s -> %s: %s", FASTEST, precision, why)

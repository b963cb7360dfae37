"""``trainer.precision=fastest``: bf16 only where the machine computes it natively."""

from __future__ import annotations

import logging

import pytest
import torch
from omegaconf import OmegaConf

from unetlab.inference.runner import parse_precision
from unetlab.precision import fastest_precision, resolve_precision


def cpu_with(monkeypatch: pytest.MonkeyPatch, *, avx512_bf16: bool, amx: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "expected"),
    [(False, False, "32-true"), (True, False, "bf16-mixed"), (False, True, "bf16-mixed")],
)
def test_cpus_get_bf16_only_with_native_support(
    monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool, expected: str
) -> None:
    cpu_with(monkeypatch, avx512_bf16=avx512_bf16, amx=amx)
    assert fastest_precision("auto")[0] == expected
    assert fastest_precision("cpu")[0] == expected


@pytest.mark.parametrize(("bf16", "expected"), [(True, "bf16-mixed"), (False, "16-mixed")])
def test_gpus_get_bf16_or_float16(monkeypatch: pytest.MonkeyPatch, bf16: bool, expected: str):
    cpu_with(monkeypatch, avx512_bf16=False, amx=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    assert fastest_precision("gpu")[0] == expected
    assert fastest_precision("cpu")[0] == "32-true"  # a CPU run on a GPU machine


def test_the_run_config_records_what_fastest_meant(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cpu_with(monkeypatch, avx512_bf16=False, amx=False)
    cfg = OmegaConf.create({"trainer": {"accelerator": "cpu", "precision": "fastest"}})
    with caplog.at_level(logging.INFO, logger="unetlab.precision"):
        resolve_precision(cfg)
    assert cfg.trainer.precision == "32-true"
    assert "trainer.precision=fastest -> 32-true: the CPU has no AVX-512 BF16" in caplog.text
    chosen = OmegaConf.create({"trainer": {"accelerator": "cpu", "precision": "bf16-mixed"}})
    resolve_precision(chosen)
    assert chosen.trainer.precision == "bf16-mixed"  # an explicit choice is kept


def test_prediction_takes_fastest_too(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu_with(monkeypatch, avx512_bf16=False, amx=False)
    assert parse_precision("fastest", "cpu") is None  # float32, no autocast
    cpu_with(monkeypatch, avx512_bf16=False, amx=True)
    assert parse_precision("fastest", "cpu") is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert parse_precision("fastest", "cuda") is torch.float16

"""The four commands report the same kinds of mistakes alike: one line, the same exit code."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import command_env
from unetlab import eval as eval_command
from unetlab import predict as predict_command
from unetlab import train as train_command
from unetlab.cli import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, result_line
from unetlab.export import command as export_command

COMMANDS = {
    "train": train_command,
    "eval": eval_command,
    "predict": predict_command,
    "export": export_command,
}
# The function each command's work goes through, to interrupt it.
WORK = {"train": "train", "eval": "evaluate", "predict": "predict", "export": "export"}
# A value each command rejects as out of range or unknown.
BAD_VALUE = {
    "train": "trainer.max_epochs=abc",
    "eval": "split=train",
    "predict": "overlap=2",
    "export": "format=tflite",
}


def required_args(command: str, tmp_path: Path, ckpt: Path) -> list[str]:
    """Arguments that make a command's config complete, with ``ckpt`` as its checkpoint."""
    if command == "train":
        return [f"hydra.run.dir={tmp_path / 'run'}", f"ckpt_path={ckpt}"]
    if command == "predict":
        image = tmp_path / "image.png"
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
        return [f"ckpt_path={ckpt}", f"input={image}", f"output={tmp_path / 'out'}"]
    return [f"ckpt_path={ckpt}"]


def run_in_process(command: str, args: list[str], capsys, monkeypatch) -> tuple[int, str]:
    """Run a command's ``main`` as its console script does; its exit code and stderr."""
    monkeypatch.setattr(sys, "argv", [f"unetlab-{command}"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        COMMANDS[command].main(args)
    return exit_info.value.code, capsys.readouterr().err


def assert_one_error_line(command: str, err: str, *expected: str) -> None:
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith(f"unetlab-{command}: error: "), err[-2000:]
    assert sum("error:" in line for line in lines) == 1, err[-2000:]
    for text in expected:
        assert text in lines[-1], lines[-1]
    assert "Traceback" not in err


@pytest.fixture
def missing_ckpt(tmp_path: Path) -> Path:
    return tmp_path / "none.ckpt"


KINDS: dict[str, tuple[int, Callable[[str, Path, Path], list[str]], str]] = {
    "unknown key": (
        EXIT_USAGE,
        lambda command, tmp, ckpt: [*required_args(command, tmp, ckpt), "no_such_key=1"],
        "no_such_key",
    ),
    "missing file": (
        EXIT_FAILURE,
        lambda command, tmp, ckpt: required_args(command, tmp, ckpt),
        "none.ckpt",
    ),
    "bad value": (
        EXIT_USAGE,
        lambda command, tmp, ckpt: [*required_args(command, tmp, ckpt), BAD_VALUE[command]],
        "",
    ),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", COMMANDS)
def test_same_mistake_same_error_line_and_exit_code(
    command: str, kind: str, tmp_path: Path, missing_ckpt: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, make_args, named = KINDS[kind]
    args = make_args(command, tmp_path, missing_ckpt)
    exit_code, err = run_in_process(command, args, capsys, monkeypatch)
    assert exit_code == code, err[-2000:]
    bad_key = BAD_VALUE[command].split("=")[0] if kind == "bad value" else named
    assert_one_error_line(command, err, bad_key)


@pytest.mark.parametrize("command", COMMANDS)
def test_interrupt_ends_with_one_line_and_code_130(
    command: str, tmp_path: Path, missing_ckpt: Path, capsys, monkeypatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    module = COMMANDS[command]
    monkeypatch.setattr(module, WORK[command], interrupted)
    args = required_args(command, tmp_path, missing_ckpt)
    exit_code, err = run_in_process(command, args, capsys, monkeypatch)
    assert exit_code == EXIT_INTERRUPTED
    assert err.strip() == f"unetlab-{command}: error: interrupted"


@pytest.mark.parametrize("command", COMMANDS)
def test_console_commands_report_a_config_mistake_alike(command: str, tmp_path: Path) -> None:
    module = "unetlab.export" if command == "export" else f"unetlab.{command}"
    result = subprocess.run(
        [sys.executable, "-m", module, "no_such_key=1"],
        cwd=tmp_path,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == EXIT_USAGE, result.stderr[-2000:]
    assert_one_error_line(command, result.stderr, "no_such_key")


def test_constructor_errors_show_the_constructors_own_message() -> None:
    from hydra.errors import InstantiationException

    from unetlab.cli import exit_code, one_line

    cause = ValueError("model.encoder='resnet99' is not supported; choose one of resnet18")
    try:
        try:
            raise cause
        except ValueError as error:
            raise InstantiationException("Error in call to target 'ResNetUNet':\n...") from error
    except InstantiationException as wrapped:
        assert one_line(wrapped) == str(cause)
        assert exit_code(wrapped) == EXIT_FAILURE
    typo = InstantiationException("Error in call to target 'X':\nTypeError('bad')\nfull_key: m")
    assert one_line(typo) == "Error in call to target 'X': TypeError('bad') full_key: m"
    assert exit_code(typo) == EXIT_USAGE


def test_result_line_formats_floats_and_keeps_the_order() -> None:
    fields = {"val/miou_best": 0.91234, "test/miou": 0.9, "ckpt": "a.ckpt", "dir": "runs/1"}
    assert result_line(fields) == (
        "RESULT val/miou_best=0.9123 test/miou=0.9000 ckpt=a.ckpt dir=runs/1"
    )
    assert result_line({"seconds": 2.26, "images": 3}, {"seconds": ".1f"}) == (
        "RESULT seconds=2.3 images=3"
    )

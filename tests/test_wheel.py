"""The wheel, installed without ``-e`` into a new virtual environment, run from another folder.

The new environment holds only unetlab from the wheel; the third-party packages are those of
the environment running the tests, reached through a ``.pth`` line (so that torch is not
installed again). The commands run without PYTHONPATH, in a folder outside the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.conftest import ROOT
from tests.user_configs import write_user_configs

SOURCES = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "src", "conf")


def build_wheel(out_dir: Path, work_dir: Path) -> Path:
    """Build the wheel from a copy of the sources (the checkout gets no build folders)."""
    source = work_dir / "source"
    source.mkdir(parents=True)
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out_dir),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = out_dir.glob("unetlab-*.whl")
    return wheel


def make_venv(path: Path, wheel: Path) -> Path:
    """A new environment with the wheel installed and this one's packages behind it."""
    venv.create(path, with_pip=False)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # A plain path line: the .pth files there (an editable install of unetlab) are not read.
    Path(purelib, "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return path / "bin"


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HYDRA_FULL_ERROR")}
    result = subprocess.run(
        command,
        cwd=cwd,
        env={**env, "WANDB_MODE": "offline", "MPLBACKEND": "Agg"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{command[0]}: {result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a new environment with the wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(tmp / "dist", tmp)
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {
        f"unetlab/conf/{p.relative_to(ROOT / 'conf')}" for p in (ROOT / "conf").rglob("*.yaml")
    }
    assert configs and configs <= names and "unetlab/py.typed" in names
    assert "hydra_plugins/unetlab_optuna_sweeper/_ask_tell.py" in names
    return make_venv(tmp / "venv", wheel)


def test_wheel_commands_run_outside_the_repository(installed: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    where = run([str(installed / "python"), "-c", "import unetlab; print(unetlab.__file__)"], work)
    assert Path(where.stdout.strip()).is_relative_to(installed.parent)
    commands = run([str(installed / "python"), "-m", "unetlab"], work).stdout
    assert [line.split()[0] for line in commands.splitlines()[:4]] == [
        "unetlab-train",
        "unetlab-eval",
        "unetlab-predict",
        "unetlab-export",
    ]

    user_configs = write_user_configs(work).relative_to(work)
    trained = run(
        [
            str(installed / "unetlab-train"),
            f"hydra.searchpath=[file://{user_configs}]",
            "experiment=my_exp",
            "++trainer.max_steps=2",
            "~callbacks.rich_progress_bar",
        ],
        work,
    )
    result = trained.stdout.strip().splitlines()[-1]
    assert result.startswith("RESULT "), trained.stdout[-2000:]
    ckpt = Path(re.search(r"ckpt=(\S+)", result).group(1))
    assert ckpt.is_file() and ckpt.is_relative_to(work / "logs" / "my_exp")

    evaluated = run([str(installed / "unetlab-eval"), f"ckpt_path={ckpt}"], work)
    assert "miou" in evaluated.stdout and (ckpt.parent / "metrics.json").is_file()

    image = np.random.default_rng(0).integers(0, 255, (40, 48), dtype=np.uint8)
    tifffile.imwrite(work / "cell.tif", image)
    run(
        [
            str(installed / "unetlab-predict"),
            f"ckpt_path={ckpt}",
            "input=cell.tif",
            "output=out",
            "progress=false",
        ],
        work,
    )
    mask = tifffile.imread(work / "out" / "masks" / "cell.tif")
    assert mask.shape == image.shape

    run(
        [
            str(installed / "unetlab-export"),
            f"ckpt_path={ckpt}",
            "format=torchscript",
            "output=model.pt",
        ],
        work,
    )
    assert (work / "model.pt").stat().st_size > 0

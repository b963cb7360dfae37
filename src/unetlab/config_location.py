"""Where the Hydra configs of every command are read from: ``CONFIG_DIR``.

The configs are edited in ``conf/`` at the top of the repository and installed as the package
``unetlab.conf``. A source checkout put first on the path (``PYTHONPATH=src``) reads its own
``conf/``; any install, editable or not, reads ``unetlab.conf``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

CONFIG_PACKAGE = "unetlab.conf"


def _config_dir() -> Path:
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "conf" / "train.yaml").is_file():
        return checkout / "conf"
    return Path(str(resources.files(CONFIG_PACKAGE)))


CONFIG_DIR = str(_config_dir())

"""`python train.py --help` starts fast: the entry point imports neither torch nor Lightning."""

from __future__ import annotations

import subprocess
import sys


def test_train_entry_point_imports_neither_torch_nor_lightning() -> None:
    code = "import sys, unetlab.train; print(sorted({'torch', 'lightning'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

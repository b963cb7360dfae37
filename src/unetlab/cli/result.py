"""The ``RESULT key=value ...`` line a command prints last, for people and scripts alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FLOAT_FORMAT = ".4f"


def result_line(fields: Mapping[str, Any], formats: Mapping[str, str] | None = None) -> str:
    """``RESULT`` followed by ``key=value`` pairs in the order given.

    Args:
        fields: The values; floats are written with four decimals unless ``formats`` says
            otherwise.
        formats: Format specifications by key, e.g. ``{"seconds": ".1f"}``.
    """
    formats = formats or {}
    parts = []
    for key, value in fields.items():
        spec = formats.get(key, FLOAT_FORMAT if isinstance(value, float) else "")
        parts.append(f"{key}={value:{spec}}")
    return "RESULT " + " ".join(parts)


def print_result(fields: Mapping[str, Any], formats: Mapping[str, str] | None = None) -> None:
    """Print :func:`result_line` on stdout."""
    print(result_line(fields, formats), flush=True)

"""What the four commands (train, eval, predict, export) share: errors and exit codes.

Every command reports an expected problem as one line on stderr,
``unetlab-<command>: error: <what is wrong and how to fix it>``, and exits with:

=====  ===========================================================================
code   meaning
=====  ===========================================================================
0      success
1      the run failed: a missing or unreadable file, bad data, diverged training,
       a failed DDP process, a failed export check
2      usage or config error: an unknown key or option, a missing required value,
       a value of the wrong type or out of range
130    interrupted (Ctrl-C)
=====  ===========================================================================

``HYDRA_FULL_ERROR=1`` shows the full traceback instead of the line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException, InstantiationException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from unetlab.cli.errors import one_line, reported_errors
from unetlab.config_location import CONFIG_DIR

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

T = TypeVar("T")


def exit_code(error: BaseException) -> int:
    """:data:`EXIT_USAGE` for config and command-line mistakes, else :data:`EXIT_FAILURE`.

    An error raised while instantiating a config object counts as what caused it.
    """
    from unetlab.config import ConfigError

    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, InstantiationException) and error.__cause__ is not None:
        return exit_code(error.__cause__)
    if isinstance(error, ConfigError | HydraException | OmegaConfBaseException):
        return EXIT_USAGE
    return EXIT_FAILURE


def report_error(prog: str, message: str) -> None:
    """Print ``<prog>: error: <message>`` on stderr."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)


def exit_with_error(prog: str, error: BaseException) -> NoReturn:
    """Report ``error`` in one line and exit with its :func:`exit_code`.

    With ``HYDRA_FULL_ERROR=1`` the error is raised again, traceback and all.
    """
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise error
    interrupted = isinstance(error, KeyboardInterrupt)
    report_error(prog, "interrupted" if interrupted else one_line(error))
    sys.exit(exit_code(error))


def run_command(prog: str, body: Callable[[], T]) -> T:
    """Run a command's body; an expected problem or Ctrl-C ends it with one line and its code.

    Args:
        prog: The command's name, e.g. ``unetlab-predict``.
        body: The work; its return value is passed on.
    """
    try:
        return body()
    except KeyboardInterrupt as error:
        exit_with_error(prog, error)
    except reported_errors() as error:
        exit_with_error(prog, error)


def compose_config(config_name: str, overrides: Sequence[str]) -> DictConfig:
    """Compose ``<config_name>.yaml`` with command-line overrides, outside any Hydra run.

    Raises:
        HydraException: An unknown key, option or malformed override.
    """
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose(config_name, overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()


def check_command_line(prog: str, config_name: str, args: Sequence[str]) -> None:
    """Compose the config once before Hydra runs, so a mistake ends as one line, code 2.

    Hydra's own report of a mistake spans several lines and exits with 1. Command lines with
    Hydra flags (``--help``, ``-m``, ``--cfg``, ...) are left to Hydra.
    """
    if any(arg.startswith("-") for arg in args):
        return
    run_command(prog, lambda: compose_config(config_name, args))


def check_required(cfg: DictConfig, usage: str) -> None:
    """Raise ``ConfigError`` naming every required value (``???``) still missing.

    Args:
        cfg: The composed config.
        usage: The command's usage line, shown with the message.
    """
    from unetlab.config import ConfigError

    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"missing {', '.join(f'{key}=...' for key in missing)}; usage: {usage}")


def command_args(argv: Sequence[str] | None) -> list[str]:
    """The command-line arguments: ``argv``, or ``sys.argv[1:]`` when it is ``None``.

    Commands run through ``hydra.main`` read ``sys.argv``, so a given ``argv`` is put there.
    """
    if argv is None:
        return sys.argv[1:]
    sys.argv[1:] = list(argv)
    return list(argv)

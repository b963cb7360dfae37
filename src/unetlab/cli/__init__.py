"""What the commands share: one-line errors, exit codes and the ``RESULT`` line."""

from unetlab.cli.errors import error_summary, one_line, reported_errors
from unetlab.cli.result import print_result, result_line
from unetlab.cli.runner import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    check_command_line,
    check_required,
    command_args,
    compose_config,
    exit_code,
    exit_with_error,
    run_command,
)

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "check_command_line",
    "check_required",
    "command_args",
    "compose_config",
    "error_summary",
    "exit_code",
    "exit_with_error",
    "one_line",
    "print_result",
    "reported_errors",
    "result_line",
    "run_command",
]

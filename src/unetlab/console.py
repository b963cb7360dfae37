"""Console output of a run: each log message once, in the run's format, without adverts.

Importing ``lightning`` gives its logger a console handler of its own (``INFO: ...``) that
also passes every message on to the root logger, where Hydra's handlers print it a second
time and write the run's log file. Lightning also prints a tip advertising its cloud service
in every run.
"""

from __future__ import annotations

import logging
import warnings

LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")
# Where Lightning's rank_zero_info messages, its tips among them, are logged.
RANK_ZERO_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
)
TIP_PREFIX = "💡 Tip:"
# Lightning's own use of a deprecated torch API, printed at every fit and test; not the user's to fix.
LIGHTNING_INTERNAL_WARNINGS = (r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",)


class DropTips(logging.Filter):
    """Drops Lightning's advertising tips (``💡 Tip: ...``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TIP_PREFIX)


DROP_TIPS = DropTips()


def one_line_per_event() -> None:
    """Print each of Lightning's messages once, through the root logger's handlers.

    Without root handlers (Lightning used outside a Hydra run or a configured program)
    Lightning keeps its own console handler; its tips are dropped either way.
    """
    import lightning  # noqa: F401 -- its import adds the handlers removed here

    for message in LIGHTNING_INTERNAL_WARNINGS:
        warnings.filterwarnings("ignore", message=message)

    for name in RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if DROP_TIPS not in logger.filters:
            logger.addFilter(DROP_TIPS)
    if not logging.getLogger().handlers:
        return
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.propagate = True

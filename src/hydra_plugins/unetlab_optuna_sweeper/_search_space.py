"""Hydra sweep expressions (``choice``, ``range``, ``interval``) as Optuna distributions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)


def distribution_from_override(override: Override) -> BaseDistribution:
    """The Optuna distribution of one sweep override.

    ``choice(a, b)`` and ``shuffle(range(...))`` are categorical, ``range(start, stop, step)``
    is a stepped int or float range (``stop`` excluded, as in Hydra), ``interval(low, high)``
    a continuous one (of integers with ``int(interval(...))``), on a log scale with
    ``tag(log, interval(...))``.
    """
    value = override.value()
    key = override.get_key_element()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        return CategoricalDistribution(
            list(override.sweep_iterator(transformer=Transformer.encode))
        )
    if override.is_range_sweep():
        numbers = list(override.sweep_iterator())
        if not numbers:
            raise ValueError(f"hydra.sweeper.params.{key}: {value} is an empty range")
        if all(isinstance(number, int) for number in numbers):
            return IntDistribution(numbers[0], numbers[-1], step=int(value.step))
        return FloatDistribution(numbers[0], numbers[-1], step=float(value.step))
    if override.is_interval_sweep():
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise ValueError(
        f"hydra.sweeper.params.{key}: {override.input_line!r} is not a sweep Optuna can sample; "
        "use choice(...), range(...) or interval(...)"
    )


def parse_search_space(
    arguments: Sequence[str],
) -> tuple[dict[str, BaseDistribution], dict[str, Any]]:
    """Split ``key=value`` overrides into sampled distributions and fixed values.

    Returns:
        The distributions by parameter name, and the fixed overrides by name (as typed).
    """
    distributions: dict[str, BaseDistribution] = {}
    fixed: dict[str, Any] = {}
    for override in OverridesParser.create().parse_overrides(list(arguments)):
        name = override.get_key_element()
        if override.is_sweep_override():
            distributions[name] = distribution_from_override(override)
        else:
            fixed[name] = override.get_value_element_as_str()
    for name in fixed:
        distributions.pop(name, None)
    return distributions, fixed


def grid_choices(distributions: dict[str, BaseDistribution]) -> dict[str, list[Any]]:
    """The values of each discrete distribution, for ``optuna.samplers.GridSampler``."""
    grid: dict[str, list[Any]] = {}
    for name, distribution in distributions.items():
        if isinstance(distribution, CategoricalDistribution):
            grid[name] = list(distribution.choices)
        elif getattr(distribution, "step", None) is not None and not distribution.log:
            count = round((distribution.high - distribution.low) / distribution.step) + 1
            grid[name] = [distribution.low + i * distribution.step for i in range(count)]
        else:
            raise ValueError(
                f"hydra.sweeper.params.{name}: the grid sampler needs choice(...) or "
                "range(...), not a continuous interval"
            )
    return grid

"""Randomness that depends on the run's seed and the epoch only (:mod:`.seeding`)."""

from unetlab.reliability.seeding import EpochShuffleSampler, derive_seed, run_seed

__all__ = ["EpochShuffleSampler", "derive_seed", "run_seed"]

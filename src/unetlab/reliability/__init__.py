"""Randomness that depends on the run's seed and the epoch only (:mod:`.seeding`)."""

from unetlab.reliability.seeding import derive_seed, run_seed

__all__ = ["derive_seed", "run_seed"]

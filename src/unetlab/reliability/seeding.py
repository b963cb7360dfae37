"""Randomness that depends on the run's seed and the epoch only, not on what ran before.

A run resumed from a checkpoint then sees the same batches, in the same order and with the
same augmentation, as a run that was never interrupted.
"""

from __future__ import annotations

import os

import numpy as np
import torch

SEED_ENV = "PL_GLOBAL_SEED"


def derive_seed(*keys: int) -> int:
    """A 32-bit seed mixed from integers such as ``(seed, epoch, rank)``.

    Neighbouring keys give unrelated seeds (numpy's ``SeedSequence``), unlike ``seed + epoch``.
    """
    entropy = [int(key) & 0xFFFF_FFFF_FFFF_FFFF for key in keys]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def run_seed(world_size: int = 1) -> int:
    """The run's seed as ``lightning.seed_everything`` recorded it.

    An unseeded single process gets torch's (random) initial seed. Unseeded processes of one
    distributed run must still agree, so they share seed 0, as Lightning's own sampler does.
    """
    seed = os.environ.get(SEED_ENV)
    if seed is not None:
        return int(seed)
    return 0 if world_size > 1 else torch.initial_seed() % 2**32

"""Global random generators reseeded per epoch, so training randomness survives a resume."""

from __future__ import annotations

import os
import random

import lightning as L
import numpy as np
import torch

from unetlab.reliability.seeding import SEED_ENV, derive_seed

# Keeps these seeds apart from the data sampler's, which mixes (seed, epoch, rank) only.
STREAM = 1


class EpochSeed(L.Callback):
    """Reseed torch, numpy and python ``random`` at the start of every training epoch.

    The seed mixes the run's seed, the epoch and the process rank. Whatever draws from the
    global generators while training (dropout, random loss terms) then depends on the epoch
    alone, not on what ran before, so a run resumed from an epoch's checkpoint repeats the
    uninterrupted run. Does nothing in unseeded runs (``seed=null``).
    """

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seed = os.environ.get(SEED_ENV)
        if seed is None:
            return
        epoch_seed = derive_seed(int(seed), trainer.current_epoch, trainer.global_rank, STREAM)
        torch.manual_seed(epoch_seed)
        np.random.seed(epoch_seed)
        random.seed(epoch_seed)

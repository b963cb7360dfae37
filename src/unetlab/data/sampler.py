"""The training set's sampler: each epoch's order and augmentation from ``(seed, epoch)`` alone.

A run resumed from a checkpoint then sees the same batches, in the same order and with the
same augmentation, as a run that was never interrupted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import Dataset, DistributedSampler

from unetlab.reliability.seeding import derive_seed, run_seed

if TYPE_CHECKING:
    import lightning as L


class EpochShuffleSampler(DistributedSampler):
    """Shuffles the training set anew each epoch as a function of ``(seed, epoch)`` alone.

    Lightning calls ``set_epoch`` before every epoch; it also reseeds the dataset's patch
    positions and augmentation (``dataset.reseed(seed)``, when the dataset has it) and the
    ``generator`` the data loader draws its worker seeds from. Pass that generator to the
    ``DataLoader``. As a ``DistributedSampler`` it also splits the data between the processes
    of a DDP run, and Lightning keeps it rather than wrapping it in its own.

    Args:
        dataset: The training dataset.
        seed: The run's seed.
        epoch: The epoch the first iteration serves.
        num_replicas: Number of processes.
        rank: This process's rank.
    """

    def __init__(
        self,
        dataset: Dataset,
        seed: int,
        epoch: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.generator = torch.Generator()
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's order and reseed the epoch's augmentation and worker seeds."""
        super().set_epoch(epoch)
        seed = derive_seed(self.seed, epoch, self.rank)
        self.generator.manual_seed(seed)
        reseed = getattr(self.dataset, "reseed", None)
        if callable(reseed):
            reseed(seed)

    @classmethod
    def for_trainer(cls, dataset: Dataset, trainer: L.Trainer | Any | None) -> EpochShuffleSampler:
        """The sampler for the epoch a trainer is about to run (also when it resumes).

        Lightning creates the first iterator of a fit, with its worker processes, before it
        calls ``set_epoch``; the sampler therefore starts at the epoch the fit loop will run
        next (its count of started epochs), which after a resume is the checkpoint's next one.

        Args:
            dataset: The training dataset.
            trainer: The trainer the data module is attached to, or ``None``.
        """
        if trainer is None:
            return cls(dataset, run_seed())
        epoch = trainer.fit_loop.epoch_progress.current.started
        world_size = trainer.world_size
        return cls(dataset, run_seed(world_size), epoch, world_size, trainer.global_rank)

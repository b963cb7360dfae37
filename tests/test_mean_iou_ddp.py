"""MeanIoU synced over two CPU processes (gloo) equals the one-process result."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from unetlab.metrics import MeanIoU

NUM_CLASSES = 4
IGNORE_INDEX = 255


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _batches(count: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        logits = torch.randn(2, NUM_CLASSES, 6, 5, generator=generator)
        logits[:, NUM_CLASSES - 1] = -10.0  # the last class is never predicted nor true
        target = torch.randint(0, NUM_CLASSES - 1, (2, 6, 5), generator=generator)
        target[torch.rand(2, 6, 5, generator=generator) < 0.1] = IGNORE_INDEX
        batches.append((logits, target))
    return batches


def _worker(
    rank: int,
    world_size: int,
    port: int,
    shards: list[list[tuple[torch.Tensor, torch.Tensor]]],
    out_dir: str,
) -> None:
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        metric = MeanIoU(NUM_CLASSES, ignore_index=IGNORE_INDEX)
        for logits, target in shards[rank]:
            metric.update(logits, target)
        torch.save(metric.compute(), Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
@pytest.mark.timeout(120)
def test_two_process_sync_equals_single_process(tmp_path: Path):
    batches = _batches(5, seed=0)
    shards = [batches[:3], batches[3:]]  # uneven on purpose
    mp.spawn(_worker, args=(2, _free_port(), shards, str(tmp_path)), nprocs=2, join=True)

    single = MeanIoU(NUM_CLASSES, ignore_index=IGNORE_INDEX)
    for logits, target in batches:
        single.update(logits, target)
    expected = single.compute()
    assert torch.isnan(expected["iou"][NUM_CLASSES - 1])  # an absent class survives the sync

    for rank in range(2):
        synced = torch.load(tmp_path / f"rank{rank}.pt")
        assert synced.keys() == expected.keys()
        assert torch.equal(synced["confusion_matrix"], expected["confusion_matrix"])
        for key in ("miou", "iou", "dice", "pixel_accuracy"):
            torch.testing.assert_close(synced[key], expected[key], equal_nan=True)

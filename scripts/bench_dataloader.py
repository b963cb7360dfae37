"""Data-loader throughput next to the training throughput of the configured model.

Usage: python scripts/bench_dataloader.py [--batches N] [--steps N] [hydra overrides]
e.g.   python scripts/bench_dataloader.py data=isbi2012 data.root=PATH data.num_workers=2

The loader is timed over ``--batches`` training batches (augmentation, patches, collation;
the first batch, which starts the workers, is not counted). Training is timed over
``--steps`` forward + backward + optimizer steps of the model on one of those batches, on
the GPU when there is one. The loader should be several times faster than training.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import hydra
import torch
from hydra import compose, initialize_config_dir

from unetlab.config_location import CONFIG_DIR
from unetlab.models.blocks import center_crop_like


def epochs(loader: torch.utils.data.DataLoader) -> Iterator[dict]:
    """Batches of epoch after epoch, each epoch loaded afresh."""
    while True:
        yield from loader


def loader_throughput(loader: torch.utils.data.DataLoader, batches: int) -> tuple[float, dict]:
    """Samples per second over ``batches`` batches after the first one."""
    iterator = epochs(loader)
    first = next(iterator)
    count, started = 0, time.perf_counter()
    for batch in itertools.islice(iterator, batches):
        count += len(batch["image"])
    return count / (time.perf_counter() - started), first


def training_throughput(cfg, batch: dict, steps: int, device: torch.device) -> float:
    """Samples per second of forward + backward + optimizer step on one batch."""
    net = hydra.utils.instantiate(cfg.model).to(device).train()
    loss_fn = hydra.utils.instantiate(cfg.loss).to(device)
    optimizer = hydra.utils.instantiate(cfg.optimizer)(params=net.parameters())
    image = batch["image"].to(device)
    mask = batch["mask"].to(device)
    weight_map = batch.get("weight_map")
    weight_map = weight_map.to(device) if weight_map is not None else None

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        logits = net(image)
        final = logits[-1] if isinstance(logits, (list, tuple)) else logits
        weights = center_crop_like(weight_map, final) if weight_map is not None else None
        loss_fn(logits, center_crop_like(mask, final), weights).backward()
        optimizer.step()

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * len(image) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=50, help="loader batches to time")
    parser.add_argument("--steps", type=int, default=5, help="training steps to time")
    args, overrides = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as output_dir:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[
                    f"paths.root_dir={Path.cwd()}",
                    f"paths.output_dir={output_dir}",
                    *overrides,
                ],
            )
        datamodule = hydra.utils.instantiate(cfg.data)
        net = hydra.utils.instantiate(cfg.model)
        loss = hydra.utils.instantiate(cfg.loss)
        if getattr(loss, "requires_weight_map", False):
            datamodule.weight_map_fn = loss.make_weight_map
        datamodule.configure_for_model(net)
        datamodule.setup("fit")
        loader_rate, batch = loader_throughput(datamodule.train_dataloader(), args.batches)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train_rate = training_throughput(cfg, batch, args.steps, device)
    shape = "x".join(str(s) for s in batch["image"].shape[1:])
    print(
        f"loader:   {loader_rate:9.1f} samples/s  (batch {len(batch['image'])} of {shape}, "
        f"num_workers={datamodule.num_workers})"
    )
    print(
        f"training: {train_rate:9.1f} samples/s  ({cfg.model._target_.rsplit('.', 1)[-1]}, "
        f"base_channels={cfg.model.get('base_channels')}, {device.type}, "
        f"{torch.get_num_threads()} threads)"
    )
    print(f"loader / training: {loader_rate / train_rate:.1f}x")


if __name__ == "__main__":
    main()

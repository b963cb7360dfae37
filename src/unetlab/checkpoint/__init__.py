"""Training checkpoints: loading them safely (:mod:`.loading`), writing them atomically
(:mod:`.writing`, imported on its own: it needs Lightning)."""

from unetlab.checkpoint.loading import (
    CONFIG_KEY,
    DATA_KEY,
    TrainedModel,
    load_checkpoint,
    load_trained_model,
)

__all__ = ["CONFIG_KEY", "DATA_KEY", "TrainedModel", "load_checkpoint", "load_trained_model"]

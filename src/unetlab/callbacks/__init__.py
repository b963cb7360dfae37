"""Lightning callbacks of unetlab."""

from unetlab.callbacks.confusion_matrix import ConfusionMatrixFigure
from unetlab.callbacks.epoch_seed import EpochSeed
from unetlab.callbacks.instance_figures import InstanceFigures
from unetlab.callbacks.numerics import NonFiniteLossError, NonFiniteLossGuard
from unetlab.callbacks.prediction_images import PredictionImages

__all__ = [
    "ConfusionMatrixFigure",
    "EpochSeed",
    "InstanceFigures",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "PredictionImages",
]

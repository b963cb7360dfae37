"""Lightning callbacks of unetlab."""

from unetlab.callbacks.confusion_matrix import ConfusionMatrixFigure
from unetlab.callbacks.epoch_seed import EpochSeed
from unetlab.callbacks.numerics import NonFiniteLossError, NonFiniteLossGuard
from unetlab.callbacks.optuna_pruning import OptunaPruning
from unetlab.callbacks.prediction_images import PredictionImages

__all__ = [
    "ConfusionMatrixFigure",
    "EpochSeed",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "OptunaPruning",
    "PredictionImages",
]

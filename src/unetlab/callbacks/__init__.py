"""Lightning callbacks of unetlab."""

from unetlab.callbacks.confusion_matrix import ConfusionMatrixFigure
from unetlab.callbacks.epoch_seed import EpochSeed
from unetlab.callbacks.instance_figures import InstanceFigures
from unetlab.callbacks.model_artifact import ModelArtifact
from unetlab.callbacks.numerics import NonFiniteLossError, NonFiniteLossGuard
from unetlab.callbacks.optuna_pruning import OptunaPruning
from unetlab.callbacks.prediction_images import PredictionImages
from unetlab.callbacks.test_images_table import TestImagesTable

__all__ = [
    "ConfusionMatrixFigure",
    "EpochSeed",
    "InstanceFigures",
    "ModelArtifact",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "OptunaPruning",
    "PredictionImages",
    "TestImagesTable",
]

"""Lightning callbacks of unetlab."""

from unetlab.callbacks.confusion_matrix import ConfusionMatrixFigure
from unetlab.callbacks.prediction_images import PredictionImages

__all__ = ["ConfusionMatrixFigure", "PredictionImages"]

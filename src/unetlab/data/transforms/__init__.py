"""albumentations transforms of our own, for images and volumes."""

from unetlab.data.transforms.elastic import ElasticDeformation
from unetlab.data.transforms.volume import DepthFlip, ElasticDeformation3D, IntensityScaleShift

__all__ = ["DepthFlip", "ElasticDeformation", "ElasticDeformation3D", "IntensityScaleShift"]

"""albumentations transforms of our own."""

from unetlab.data.transforms.elastic import ElasticDeformation

__all__ = ["ElasticDeformation"]

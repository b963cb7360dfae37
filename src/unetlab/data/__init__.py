"""Datasets, readers, augmentation and the Lightning data module."""

from unetlab.data.datamodule import BiomedicalDataModule
from unetlab.data.isbi2012 import Isbi2012
from unetlab.data.sources import FolderSource
from unetlab.data.synthetic import SyntheticNuclei
from unetlab.data.transforms import ElasticDeformation

__all__ = [
    "BiomedicalDataModule",
    "ElasticDeformation",
    "FolderSource",
    "Isbi2012",
    "SyntheticNuclei",
]

"""Datasets, readers, augmentation and the Lightning data module."""

from unetlab.data.datamodule import BiomedicalDataModule
from unetlab.data.io import read_volume
from unetlab.data.isbi2012 import Isbi2012
from unetlab.data.sources import FolderSource
from unetlab.data.synthetic import SyntheticNuclei
from unetlab.data.synthetic3d import SyntheticVolumes
from unetlab.data.transforms import ElasticDeformation
from unetlab.data.volumes import Volume, write_volume

__all__ = [
    "BiomedicalDataModule",
    "ElasticDeformation",
    "FolderSource",
    "Isbi2012",
    "SyntheticNuclei",
    "SyntheticVolumes",
    "Volume",
    "read_volume",
    "write_volume",
]

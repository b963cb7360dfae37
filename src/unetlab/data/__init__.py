"""Datasets, readers and the Lightning data module."""

from unetlab.data.datamodule import BiomedicalDataModule, FolderSource
from unetlab.data.synthetic import SyntheticNuclei

__all__ = ["BiomedicalDataModule", "FolderSource", "SyntheticNuclei"]

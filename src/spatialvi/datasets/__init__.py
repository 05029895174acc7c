"""Real data sets read from a local path, and the location of the shared data folder."""

from spatialvi.datasets._bccd import BCCD_CLASSES, bccd, bccd_boxes
from spatialvi.datasets._dlpfc import DLPFC_SECTIONS, dlpfc
from spatialvi.datasets._files import read_h5ad
from spatialvi.datasets._paths import data_dir
from spatialvi.datasets._smfish import SMFISH_CROPS, SmFishCrop, smfish

__all__ = [
    "BCCD_CLASSES",
    "DLPFC_SECTIONS",
    "SMFISH_CROPS",
    "SmFishCrop",
    "bccd",
    "bccd_boxes",
    "data_dir",
    "dlpfc",
    "read_h5ad",
    "smfish",
]

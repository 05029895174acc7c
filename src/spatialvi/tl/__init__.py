"""Analysis tools writing into AnnData: clustering, SMACOF spatial reconstruction, sub-spot grids."""

from spatialvi.tl._cluster import cluster, refine_labels
from spatialvi.tl._reconstruct import reconstruct_spatial
from spatialvi.tl._smacof import SmacofResult, smacof, torgerson
from spatialvi.tl._subspots import spot_distance, subspot_coordinates, subspot_offsets

__all__ = [
    "SmacofResult",
    "cluster",
    "reconstruct_spatial",
    "refine_labels",
    "smacof",
    "spot_distance",
    "subspot_coordinates",
    "subspot_offsets",
    "torgerson",
]

"""Analysis tools writing into AnnData: clustering, SMACOF reconstruction, sub-spots, SVGs."""

from spatialvi.tl._cluster import cluster, refine_labels
from spatialvi.tl._reconstruct import reconstruct_spatial
from spatialvi.tl._smacof import SmacofResult, smacof, torgerson
from spatialvi.tl._subspots import spot_distance, subspot_coordinates, subspot_offsets
from spatialvi.tl._svg import permutation_pvalues, spatially_variable_genes

__all__ = [
    "SmacofResult",
    "cluster",
    "permutation_pvalues",
    "reconstruct_spatial",
    "refine_labels",
    "smacof",
    "spatially_variable_genes",
    "spot_distance",
    "subspot_coordinates",
    "subspot_offsets",
    "torgerson",
]

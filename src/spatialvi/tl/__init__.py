"""Analysis tools: clustering, spatial reconstruction, SVGs (writing into AnnData), Gibbs fits.

The geometry solvers (SMACOF, Torgerson, sub-spot layouts) live in :mod:`spatialvi.geometry` and
are re-exported here, where users import them.
"""

from spatialvi.geometry import (
    SmacofResult,
    smacof,
    spot_distance,
    subspot_coordinates,
    subspot_offsets,
    torgerson,
)
from spatialvi.tl._cluster import cluster, refine_labels
from spatialvi.tl._gibbs_fit import StraussFit, fit_strauss
from spatialvi.tl._reconstruct import reconstruct_spatial
from spatialvi.tl._simulate import simulate_points
from spatialvi.tl._svg import permutation_pvalues, spatially_variable_genes

__all__ = [
    "SmacofResult",
    "StraussFit",
    "cluster",
    "fit_strauss",
    "permutation_pvalues",
    "reconstruct_spatial",
    "refine_labels",
    "simulate_points",
    "smacof",
    "spatially_variable_genes",
    "spot_distance",
    "subspot_coordinates",
    "subspot_offsets",
    "torgerson",
]

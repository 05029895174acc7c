"""Metrics: clustering agreement, spatial autocorrelation, geometry, point patterns."""

from spatialvi.geometry import similarity_fit
from spatialvi.metrics._autocorr import gearys_c, morans_i, spatial_autocorr
from spatialvi.metrics._clustering import ari, clustering_scores, nmi
from spatialvi.metrics._detection import detection_scores, match_points
from spatialvi.metrics._geometry import (
    alignment_error,
    procrustes_disparity,
    stress_1,
)
from spatialvi.metrics._integration import batch_mixing_entropy
from spatialvi.metrics._point_patterns import (
    g_function,
    k_function,
    l_function,
    pair_correlation,
)

__all__ = [
    "alignment_error",
    "ari",
    "batch_mixing_entropy",
    "clustering_scores",
    "detection_scores",
    "g_function",
    "gearys_c",
    "k_function",
    "l_function",
    "match_points",
    "morans_i",
    "nmi",
    "pair_correlation",
    "procrustes_disparity",
    "similarity_fit",
    "spatial_autocorr",
    "stress_1",
]

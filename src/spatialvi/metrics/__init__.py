"""Metrics: clustering agreement, spatial autocorrelation, geometry, point patterns,
disentanglement of a latent code and what a representation is good for."""

from spatialvi.geometry import similarity_fit
from spatialvi.metrics._autocorr import gearys_c, morans_i, spatial_autocorr
from spatialvi.metrics._clustering import ari, clustering_scores, match_labels, nmi
from spatialvi.metrics._detection import detection_scores, match_points
from spatialvi.metrics._disentanglement import (
    dci,
    factorvae_score,
    mig,
    mutual_information_matrix,
    omes,
    omes_from_relation,
    omes_relation,
    sap,
)
from spatialvi.metrics._geometry import (
    alignment_error,
    procrustes_disparity,
    stress_1,
)
from spatialvi.metrics._integration import batch_mixing_entropy
from spatialvi.metrics._point_patterns import (
    EnvelopeTest,
    envelope_test,
    g_function,
    k_function,
    l_function,
    pair_correlation,
)
from spatialvi.metrics._representation import (
    downstream_accuracy,
    inactive_dims,
    latent_feature_correlation,
)

__all__ = [
    "EnvelopeTest",
    "alignment_error",
    "ari",
    "batch_mixing_entropy",
    "clustering_scores",
    "dci",
    "detection_scores",
    "downstream_accuracy",
    "envelope_test",
    "factorvae_score",
    "g_function",
    "gearys_c",
    "inactive_dims",
    "k_function",
    "l_function",
    "latent_feature_correlation",
    "match_labels",
    "match_points",
    "mig",
    "morans_i",
    "mutual_information_matrix",
    "nmi",
    "omes",
    "omes_from_relation",
    "omes_relation",
    "pair_correlation",
    "procrustes_disparity",
    "sap",
    "similarity_fit",
    "spatial_autocorr",
    "stress_1",
]

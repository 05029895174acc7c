"""Training plans, β controllers, callbacks and the batch-size rule."""

from spatialvi.train._callbacks import RelativeEarlyStopping, Throughput
from spatialvi.train._plan import (
    EpochMetrics,
    FixedBeta,
    KLWarmup,
    PIBetaController,
    SpatialviTrainingPlan,
)
from spatialvi.train._recipe import dpvae_max_epochs, fit_batch_size, spavae_batch_size

__all__ = [
    "EpochMetrics",
    "FixedBeta",
    "KLWarmup",
    "PIBetaController",
    "RelativeEarlyStopping",
    "SpatialviTrainingPlan",
    "Throughput",
    "dpvae_max_epochs",
    "fit_batch_size",
    "spavae_batch_size",
]

"""Training plans, β controllers, callbacks and the batch-size rule."""

from spatialvi.train._callbacks import RelativeEarlyStopping, Throughput
from spatialvi.train._plan import FixedBeta, KLWarmup, PIBetaController, SpatialviTrainingPlan
from spatialvi.train._recipe import fit_batch_size, spavae_batch_size

__all__ = [
    "FixedBeta",
    "KLWarmup",
    "PIBetaController",
    "RelativeEarlyStopping",
    "SpatialviTrainingPlan",
    "Throughput",
    "fit_batch_size",
    "spavae_batch_size",
]

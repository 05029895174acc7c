"""Training plans, β controllers and callbacks."""

from spatialvi.train._callbacks import RelativeEarlyStopping
from spatialvi.train._plan import FixedBeta, PIBetaController, SpatialviTrainingPlan

__all__ = ["FixedBeta", "PIBetaController", "RelativeEarlyStopping", "SpatialviTrainingPlan"]

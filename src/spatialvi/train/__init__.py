"""spatialvi.train."""

from spatialvi.train._plan import FixedBeta, PIBetaController, SpatialviTrainingPlan

__all__ = ["FixedBeta", "PIBetaController", "SpatialviTrainingPlan"]

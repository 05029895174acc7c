"""AnnData registration for spatialvi models (scvi-tools fields and manager)."""

from spatialvi.data._manager import (
    PointSetsObsmField,
    SpatialviAnnDataManager,
    TrainingOnlyCategoricalObsField,
    TrainingOnlyField,
    TrainingOnlyObsmField,
)

__all__ = [
    "PointSetsObsmField",
    "SpatialviAnnDataManager",
    "TrainingOnlyCategoricalObsField",
    "TrainingOnlyField",
    "TrainingOnlyObsmField",
]

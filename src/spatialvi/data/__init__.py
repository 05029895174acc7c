"""AnnData registration for spatialvi models (scvi-tools fields and manager)."""

from spatialvi.data._manager import (
    SpatialviAnnDataManager,
    TrainingOnlyCategoricalObsField,
    TrainingOnlyField,
    TrainingOnlyObsmField,
)

__all__ = [
    "SpatialviAnnDataManager",
    "TrainingOnlyCategoricalObsField",
    "TrainingOnlyField",
    "TrainingOnlyObsmField",
]

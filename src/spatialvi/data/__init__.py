"""AnnData registration for spatialvi models (scvi-tools fields and manager)."""

from spatialvi.data._inmemory import (
    InMemoryDataSplitter,
    TensorBatchLoader,
    TensorStore,
    shuffled_batches,
)
from spatialvi.data._manager import (
    GeneAlignedLayerField,
    ObservationIndexField,
    PointSetsObsmField,
    SpatialviAnnDataManager,
    TrainingOnlyCategoricalObsField,
    TrainingOnlyField,
    TrainingOnlyNumericalObsField,
    TrainingOnlyObsmField,
)
from spatialvi.data._pairs import (
    PairBatchSampler,
    PairDataSplitter,
    PairedAnnDataLoader,
    pair_members,
)

__all__ = [
    "GeneAlignedLayerField",
    "InMemoryDataSplitter",
    "ObservationIndexField",
    "PairBatchSampler",
    "PairDataSplitter",
    "PairedAnnDataLoader",
    "PointSetsObsmField",
    "SpatialviAnnDataManager",
    "TensorBatchLoader",
    "TensorStore",
    "TrainingOnlyCategoricalObsField",
    "TrainingOnlyField",
    "TrainingOnlyNumericalObsField",
    "TrainingOnlyObsmField",
    "pair_members",
    "shuffled_batches",
]

"""AnnData registration shared by all spatialvi models.

Some fields are needed only to *train* a model: coordinates for DPVAE, point sets for SIVAE,
factor labels for AdaGVAE. A trained model must still encode a query AnnData that lacks them
(expression without coordinates, images without annotated points). scvi-tools' fields raise a
``KeyError`` when a registered key is absent from a new AnnData, so spatialvi marks such fields
with :class:`TrainingOnlyField` and registers them through :class:`SpatialviAnnDataManager`,
which transfers a setup to an AnnData lacking such a key by leaving the field out of that
AnnData's data registry. Minibatches from that AnnData then simply do not carry the tensor, and
modules must treat it as optional (``tensors.get(key)``). At ``setup_anndata`` time the key is
still required.
"""

from __future__ import annotations

import numpy as np
from scvi.data import AnnDataManager, _constants
from scvi.data.fields import (
    BaseAnnDataField,
    CategoricalObsField,
    LayerField,
    NumericalObsField,
    ObsmField,
)

from spatialvi._validation import gene_order


class TrainingOnlyField:
    """Marker mix-in: the field is required to set up (train) but optional on transfer."""

    def present_in(self, adata) -> bool:
        """Whether the field's key exists in ``adata``."""
        return self.attr_key in getattr(adata, self.attr_name)


class TrainingOnlyObsmField(TrainingOnlyField, ObsmField):
    """An :class:`~scvi.data.fields.ObsmField` that a query AnnData may lack."""


class PointSetsObsmField(TrainingOnlyObsmField):
    """Training-only NaN-padded point sets (``n × K_max × 2``) whose ``K_max`` may differ per AnnData.

    The padded width is an artefact of the largest pattern, not a feature dimension, so a
    query AnnData is registered with its own width instead of the training one.
    """

    def transfer_field(self, state_registry: dict, adata_target, **kwargs) -> dict:
        self.validate_field(adata_target)
        return {self.COLUMN_NAMES_KEY: self._setup_column_names(adata_target)}


class TrainingOnlyCategoricalObsField(TrainingOnlyField, CategoricalObsField):
    """A :class:`~scvi.data.fields.CategoricalObsField` that a query AnnData may lack."""


class TrainingOnlyNumericalObsField(TrainingOnlyField, NumericalObsField):
    """A :class:`~scvi.data.fields.NumericalObsField` that a query AnnData may lack."""


class ObservationIndexField(BaseAnnDataField):
    """Position ``0 … n_obs − 1`` of every observation in its AnnData, as an ``n × 1`` column.

    scvi-tools models get this by writing ``adata.obs['_indices']`` during setup; this field
    serves the positions from :class:`SpatialviAnnDataManager` instead, so that setting up a
    model leaves the user's ``obs`` untouched. Every AnnData (training or query) has it.
    """

    #: Stands in the data registry for "the observation positions" (not an AnnData attribute).
    ATTR_NAME = "obs_position"

    def __init__(self, registry_key: str):
        super().__init__()
        self._registry_key = registry_key

    @property
    def registry_key(self) -> str:
        return self._registry_key

    @property
    def attr_name(self) -> str:
        return self.ATTR_NAME

    @property
    def attr_key(self) -> None:
        return None

    @property
    def is_empty(self) -> bool:
        return False

    def validate_field(self, adata) -> None:
        """Every AnnData has positions: nothing to check."""

    def register_field(self, adata) -> dict:
        return {}

    def transfer_field(self, state_registry: dict, adata_target, **kwargs) -> dict:
        return {}

    def get_field_data(self, adata) -> np.ndarray:
        return np.arange(adata.n_obs, dtype=np.int64)[:, None]

    def get_summary_stats(self, state_registry: dict) -> dict:
        return {}

    def view_state_registry(self, state_registry: dict) -> None:
        return None


class GeneAlignedLayerField(LayerField):
    """A :class:`~scvi.data.fields.LayerField` whose query AnnData is matched by ``var_names``.

    scvi-tools' field accepts any query with as many genes as the training data, so a query
    with reordered genes would be encoded with the wrong genes in each input. This field
    records, for a query, where each training gene sits among its ``var_names``
    (:func:`spatialvi._validation.gene_order`: reordered and extra genes are fine, missing
    genes are an error that names them), and :class:`SpatialviAnnDataManager` hands out the
    matrix with the training genes in the training order.
    """

    GENE_ORDER_KEY = "gene_order"

    def transfer_field(self, state_registry: dict, adata_target, **kwargs) -> dict:
        reference = state_registry[self.COLUMN_NAMES_KEY]
        order = gene_order(reference, adata_target.var_names)
        if order is None:
            return super().transfer_field(state_registry, adata_target, **kwargs)
        self.validate_field(adata_target)
        return {
            self.N_OBS_KEY: adata_target.n_obs,
            self.N_VARS_KEY: len(reference),
            self.COLUMN_NAMES_KEY: np.asarray(reference),
            self.GENE_ORDER_KEY: order,
        }


class SpatialviAnnDataManager(AnnDataManager):
    """:class:`~scvi.data.AnnDataManager` that tolerates missing training-only fields on transfer."""

    def _add_field(self, field, adata, source_registry=None, **transfer_kwargs):
        if (
            source_registry is not None
            and isinstance(field, TrainingOnlyField)
            and not field.present_in(adata)
        ):
            source_state = source_registry[_constants._FIELD_REGISTRIES_KEY][field.registry_key][
                _constants._STATE_REGISTRY_KEY
            ]
            self._registry[_constants._FIELD_REGISTRIES_KEY][field.registry_key] = {
                # An empty data registry keeps the key out of every minibatch of this AnnData.
                _constants._DATA_REGISTRY_KEY: {},
                _constants._STATE_REGISTRY_KEY: dict(source_state),
                _constants._SUMMARY_STATS_KEY: field.get_summary_stats(source_state),
            }
            return
        super()._add_field(field, adata, source_registry=source_registry, **transfer_kwargs)

    def get_from_registry(self, registry_key: str):
        """As scvi-tools', plus the positions of :class:`ObservationIndexField`."""
        location = self.data_registry[registry_key]
        if location[_constants._DR_ATTR_NAME] == ObservationIndexField.ATTR_NAME:
            return np.arange(self.adata.n_obs, dtype=np.int64)[:, None]
        data = super().get_from_registry(registry_key)
        state = self.registry[_constants._FIELD_REGISTRIES_KEY][registry_key][
            _constants._STATE_REGISTRY_KEY
        ]
        order = state.get(GeneAlignedLayerField.GENE_ORDER_KEY)
        # A query's genes in the training order (see GeneAlignedLayerField).
        return data if order is None else data[:, order]

    def has_field_data(self, registry_key: str) -> bool:
        """Whether minibatches of the registered AnnData carry ``registry_key``."""
        return registry_key in self.data_registry

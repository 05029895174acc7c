"""The shared model base: training recipe, outputs with ``key_added``/``copy``, cloning."""

from spatialvi.model.base._model import SpatialviModel, train_docstring

__all__ = ["SpatialviModel", "train_docstring"]

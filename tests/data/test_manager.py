"""Training-only fields: a trained model encodes a query AnnData that lacks them."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import torch
from scvi.data.fields import LayerField
from scvi.model.base import BaseModelClass
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data

from spatialvi._keys import REGISTRY_KEYS
from spatialvi.data import SpatialviAnnDataManager, TrainingOnlyObsmField


class _ToyModule(BaseModuleClass):
    """z = W·log1p(x); during training a coordinate-regression term uses the spatial tensor."""

    def __init__(self, n_genes: int):
        super().__init__()
        self.linear = torch.nn.Linear(n_genes, 2)

    def _get_inference_input(self, tensors):
        return {
            "x": tensors[REGISTRY_KEYS.X_KEY],
            "spatial": tensors.get(REGISTRY_KEYS.SPATIAL_KEY),
        }

    @auto_move_data
    def inference(self, x, spatial=None):
        return {"z": self.linear(torch.log1p(x))}

    def _get_generative_input(self, tensors, inference_outputs):
        return {}

    def generative(self):
        return {}

    def loss(self, tensors, inference_outputs, generative_outputs):
        spatial = tensors[REGISTRY_KEYS.SPATIAL_KEY]  # required in training
        loss = ((inference_outputs["z"] - spatial) ** 2).sum(-1).mean()
        return LossOutput(loss=loss)


class _ToyModel(BaseModelClass):
    def __init__(self, adata):
        super().__init__(adata)
        self.module = _ToyModule(adata.n_vars)
        self.init_params_ = self._get_init_params(locals())

    def train(self):  # the mechanism under test needs no training
        raise NotImplementedError

    @classmethod
    def setup_anndata(cls, adata, spatial_key="spatial", **kwargs):
        setup_method_args = cls._get_setup_method_args(**locals())
        fields = [
            LayerField(REGISTRY_KEYS.X_KEY, None, is_count_data=True),
            TrainingOnlyObsmField(REGISTRY_KEYS.SPATIAL_KEY, spatial_key),
        ]
        manager = SpatialviAnnDataManager(fields=fields, setup_method_args=setup_method_args)
        manager.register_fields(adata, **kwargs)
        cls.register_manager(manager)

    @torch.inference_mode()
    def latent(self, adata=None):
        adata = self._validate_anndata(adata)
        loader = self._make_data_loader(adata=adata, batch_size=7, shuffle=False)
        return np.concatenate(
            [
                self.module.inference(**self.module._get_inference_input(t))["z"].cpu().numpy()
                for t in loader
            ]
        )


@pytest.fixture
def reference():
    rng = np.random.default_rng(0)
    adata = ad.AnnData(rng.poisson(3, (30, 6)).astype(np.float32))
    adata.obsm["spatial"] = rng.uniform(size=(30, 2))
    return adata


def test_setup_requires_training_only_field(reference):
    del reference.obsm["spatial"]
    with pytest.raises(KeyError, match="spatial"):
        _ToyModel.setup_anndata(reference)


def test_query_without_training_only_field(reference, tmp_path):
    _ToyModel.setup_anndata(reference)
    model = _ToyModel(reference)
    manager = model.adata_manager
    assert manager.has_field_data(REGISTRY_KEYS.SPATIAL_KEY)

    query = reference[:12].copy()
    del query.obsm["spatial"]
    z_query = model.latent(query)
    np.testing.assert_allclose(z_query, model.latent()[:12], rtol=1e-6)
    query_manager = model.get_anndata_manager(query)
    assert not query_manager.has_field_data(REGISTRY_KEYS.SPATIAL_KEY)
    assert "spatial" not in query.obsm  # the user's AnnData is not modified

    # A query that does hold the key still gets it in its minibatches.
    with_coords = reference[12:].copy()
    model.latent(with_coords)
    assert model.get_anndata_manager(with_coords).has_field_data(REGISTRY_KEYS.SPATIAL_KEY)

    # Saved and loaded without AnnData, the model replays the registry onto a query lacking it.
    model.save(tmp_path / "toy", overwrite=True)
    loaded = _ToyModel.load(tmp_path / "toy", adata=query.copy())
    np.testing.assert_allclose(loaded.latent(), z_query, rtol=1e-6)

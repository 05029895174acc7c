"""DPVAE: training, query without coordinates, save/load, bad input, real data."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scvi

from spatialvi.metrics import procrustes_disparity
from spatialvi.model import DPVAE
from spatialvi.sim import synthetic_tissue
from spatialvi.tl import reconstruct_spatial

_TRAIN = {"max_epochs": 5, "batch_size": 64, "enable_progress_bar": False}


@pytest.fixture(scope="module")
def tissue():
    return synthetic_tissue(n_spots=200, n_genes=60, n_domains=3, random_state=0)


@pytest.fixture(scope="module")
def trained(tissue):
    adata = tissue.copy()
    DPVAE.setup_anndata(adata)
    model = DPVAE(adata, n_latent=4, dp_weight=10.0, n_hidden=32)
    model.train(**_TRAIN)
    return model, adata


def test_train_and_query_without_coordinates(trained, tmp_path):
    model, adata = trained
    z = model.get_latent_representation()
    assert z.shape == (200, 4) and np.isfinite(z).all()
    assert model.coordinate_scale > 0 and model.distance_scale == pytest.approx(1.0)
    query = adata[:40].copy()
    del query.obsm["spatial"]
    np.testing.assert_allclose(model.get_latent_representation(query), z[:40], atol=1e-5)
    reconstruct_spatial(query, model)
    assert query.obsm["spatial"].shape == (40, 2)
    model.save(tmp_path / "dpvae", overwrite=True)
    loaded = DPVAE.load(tmp_path / "dpvae", adata=query.copy())
    np.testing.assert_allclose(loaded.get_latent_representation(), z[:40], atol=1e-5)
    assert loaded.coordinate_scale == pytest.approx(model.coordinate_scale)


def test_query_gene_alignment(trained):
    model, adata = trained
    z = model.get_latent_representation()
    shuffled = adata[:30, ::-1].copy()  # same genes, reversed order
    np.testing.assert_allclose(model.get_latent_representation(shuffled), z[:30], atol=1e-5)
    few = adata[:30, :10].copy()
    with pytest.raises(ValueError, match="genes"):
        model.get_latent_representation(few)


def test_masks_and_scale(tissue):
    adata = tissue.copy()
    DPVAE.setup_anndata(adata)
    with pytest.raises(ValueError, match="cluster_key"):
        DPVAE(adata, mask="cluster")
    model = DPVAE(
        adata, mask="cluster", cluster_key="domain", learn_scale=True, dp_loss="abs", n_hidden=16
    )
    model.train(max_epochs=1, batch_size=64, enable_progress_bar=False)
    assert model.distance_scale >= 0.1
    DPVAE(adata, mask="knn", likelihood="nb", dp_weight=0.0)
    with pytest.raises(KeyError, match="obsp"):
        DPVAE(adata, mask="not_a_key")
    from sklearn.neighbors import kneighbors_graph

    adata.obsp["spatial_connectivities"] = kneighbors_graph(adata.obsm["spatial"], 6)
    model = DPVAE(adata, mask="spatial_connectivities", n_hidden=16)
    model.train(max_epochs=1, batch_size=64, enable_progress_bar=False)
    assert np.isfinite(model.get_latent_representation()).all()


def test_missing_coordinates_at_training(tissue):
    adata = tissue.copy()
    del adata.obsm["spatial"]
    with pytest.raises(KeyError, match="spatial"):
        DPVAE.setup_anndata(adata)
    adata = tissue.copy()
    adata.obsm["spatial"] = adata.obsm["spatial"].astype(float)
    adata.obsm["spatial"][3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        DPVAE.setup_anndata(adata)


@pytest.mark.realdata
def test_dlpfc_151507_holdout(dlpfc_dir):
    """Short training on 80 % of 151507; the held-out 20 % is reconstructed from expression."""
    adata = ad.read_h5ad(dlpfc_dir / "dlpfc_151507.h5ad")
    rng = np.random.default_rng(0)
    test = rng.random(adata.n_obs) < 0.2
    train, query = adata[~test].copy(), adata[test].copy()
    truth = query.obsm["spatial"].copy()
    del query.obsm["spatial"]
    disparities = {}
    for weight in (0.0, 100.0):
        scvi.settings.seed = 0
        DPVAE.setup_anndata(train)
        model = DPVAE(train, dp_weight=weight)
        model.train(max_epochs=15, batch_size=256, enable_progress_bar=False)
        out = reconstruct_spatial(query, model, copy=True)
        disparities[weight] = procrustes_disparity(truth, out.obsm["spatial"])
    assert disparities[100.0] <= 0.8 * disparities[0.0], disparities


def test_kl_warmup_schedule(tissue):
    """The KL weight rises linearly over `kl_warmup_epochs` epochs, then stays at 1."""
    from lightning.pytorch.callbacks import Callback

    class RecordBeta(Callback):
        def __init__(self):
            self.betas = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == 0:
                self.betas.append(float(pl_module.kl_weight))

    adata = tissue.copy()
    DPVAE.setup_anndata(adata)
    scvi.settings.seed = 0
    record = RecordBeta()
    model = DPVAE(adata, n_latent=3, n_hidden=16)
    model.train(**{**_TRAIN, "max_epochs": 6}, kl_warmup_epochs=4, callbacks=[record])
    np.testing.assert_allclose(record.betas, [0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
    assert model.run_params_["kl_warmup_epochs"] == 4
    # The default is scvi-tools' 400-epoch warm-up: epochs 0-4 at 0, 1/400, ..., 4/400.
    record = RecordBeta()
    model = DPVAE(adata, n_latent=3, n_hidden=16)
    model.train(**_TRAIN, callbacks=[record])
    np.testing.assert_allclose(record.betas, np.arange(5) / 400)


def test_denoised_values_need_the_models_genes(trained):
    model, adata = trained
    den = model.get_denoised_expression()
    assert den.shape == adata.shape and (den >= 0).all()
    # NB means at each spot's library: they sum to about the observed library.
    library = np.asarray(adata.X.sum(1)).ravel()
    assert np.corrcoef(den.sum(1), library)[0, 1] > 0.9
    with pytest.raises(ValueError, match="var_names"):
        model.get_denoised_expression(adata[:, ::-1].copy())


def test_write_outputs_on_a_query_with_other_genes(trained):
    model, adata = trained
    query = adata[:30, ::-1].copy()  # the model's genes in another order
    del query.obsm["spatial"]
    model.write_outputs(query)
    np.testing.assert_allclose(
        query.obsm["X_dpvae"], model.get_latent_representation()[:30], atol=1e-5
    )
    assert "dpvae_denoised" not in query.layers and "denoised_key" not in query.uns["dpvae"]
    # Asking for the layer fails before anything is written.
    fresh = adata[:30, ::-1].copy()
    with pytest.raises(ValueError, match="var_names"):
        model.write_outputs(fresh, denoised=True)
    assert "X_dpvae" not in fresh.obsm and "dpvae" not in fresh.uns

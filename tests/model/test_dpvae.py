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
    xy = adata.obsm["spatial"].astype(np.float64)
    rms = np.sqrt(((xy - xy.mean(0)) ** 2).sum(1).mean())
    assert model.coordinate_scale == pytest.approx(rms, rel=1e-6)
    assert model.distance_scale == 1.0
    query = adata[:40].copy()
    del query.obsm["spatial"]
    np.testing.assert_allclose(model.get_latent_representation(query), z[:40], atol=1e-5)
    reconstruct_spatial(query, model)
    # In the reference's units: SMACOF on the latent scaled by coordinate scale / c, shifted to
    # the training centroid (five epochs leave the latent without spatial order, so only the
    # conversion is checked here; the demo test checks the reconstruction against a VAE).
    scaled = query.copy()
    scaled.obsm["X_units"] = z[:40] * model.coordinate_scale / model.distance_scale
    reconstruct_spatial(scaled, use_rep="X_units", overwrite=True)
    np.testing.assert_allclose(
        query.obsm["spatial"], scaled.obsm["spatial"] + model.coordinate_centre, atol=1e-3
    )  # µm on a ~1000 µm section; SMACOF runs in float32
    np.testing.assert_allclose(
        model.coordinate_centre, adata.obsm["spatial"].mean(0), rtol=1e-6, atol=1e-6
    )
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


def _minibatch(adata, rows):
    """The registered tensors of ``rows`` as a training minibatch would hold them (CPU)."""
    import torch

    from spatialvi._keys import REGISTRY_KEYS

    return {
        REGISTRY_KEYS.SPATIAL_KEY: torch.as_tensor(
            adata.obsm["spatial"][rows], dtype=torch.float32
        ),
        REGISTRY_KEYS.INDICES_KEY: torch.as_tensor(rows, dtype=torch.float32).reshape(-1, 1),
    }


def test_distance_preserving_loss_matches_a_direct_computation(tissue):
    """L_dp = mean over pairs of (‖z_i − z_j‖ − c‖s_i − s_j‖)², s standardised, by scipy."""
    import torch
    from scipy.spatial.distance import pdist

    from spatialvi._keys import REGISTRY_KEYS

    adata = tissue.copy()
    DPVAE.setup_anndata(adata)
    model = DPVAE(adata, n_latent=3, n_hidden=16)
    module = model.module
    rows = np.arange(0, 200, 5)  # 40 cells: 780 pairs, below max_pairs
    tensors = _minibatch(adata, rows)
    z = np.random.default_rng(0).normal(size=(len(rows), 3))
    xy = adata.obsm["spatial"].astype(np.float64)
    centre = xy.mean(0)
    s = (xy[rows] - centre) / np.sqrt(((xy - centre) ** 2).sum(1).mean())
    expected = np.mean((pdist(z) - pdist(s)) ** 2)
    got = module.distance_preserving_loss(
        torch.as_tensor(z, dtype=torch.float32), tensors[REGISTRY_KEYS.SPATIAL_KEY], tensors
    )
    assert float(got) == pytest.approx(expected, rel=1e-4)


def test_pair_masks_match_their_definitions(tissue):
    """kNN, cluster and obsp masks of one minibatch against direct constructions."""
    import torch
    from sklearn.neighbors import kneighbors_graph

    adata = tissue.copy()
    DPVAE.setup_anndata(adata)
    rows = np.random.default_rng(1).choice(adata.n_obs, 30, replace=False)
    tensors = _minibatch(adata, rows)
    s = torch.as_tensor(adata.obsm["spatial"][rows], dtype=torch.float32)

    # kNN on points in general position (the simulated grid has ties between neighbours).
    free = torch.as_tensor(np.random.default_rng(2).uniform(size=(30, 2)), dtype=torch.float32)
    knn = DPVAE(adata, mask="knn", n_neighbors=4, n_hidden=16).module._pair_mask(tensors, free)
    graph = kneighbors_graph(free.numpy(), 4).toarray() > 0
    np.testing.assert_array_equal(knn.numpy(), graph | graph.T)

    cluster = DPVAE(adata, mask="cluster", cluster_key="domain", n_hidden=16).module
    labels = adata.obs["domain"].to_numpy()[rows]
    np.testing.assert_array_equal(
        cluster._pair_mask(tensors, s).numpy(), labels[:, None] == labels[None, :]
    )

    full = kneighbors_graph(adata.obsm["spatial"], 6)
    adata.obsp["spatial_connectivities"] = full
    matrix = DPVAE(adata, mask="spatial_connectivities", n_hidden=16).module
    np.testing.assert_array_equal(
        matrix._pair_mask(tensors, s).numpy(), full.toarray()[np.ix_(rows, rows)] != 0
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mask": "knn", "n_neighbors": 5},
        {"mask": "cluster", "cluster_key": "domain", "dp_loss": "abs"},
        {"mask": "spatial_connectivities"},
        {"likelihood": "normal"},
    ],
)
def test_every_mask_and_the_gaussian_likelihood_train(tissue, kwargs):
    """One short training each: the distance loss falls and the latent stays finite.

    Measured on training seeds 0-2 (8 epochs, lr 1e-2): the last epoch's distance loss is
    0.18-0.32 (knn), 0.84-0.90 (cluster, abs) and 0.01-0.02 (obsp) of the first epoch's; the
    Gaussian likelihood's reconstruction loss falls to 0.23 of its first epoch's.
    """
    from sklearn.neighbors import kneighbors_graph

    adata = tissue.copy()
    if kwargs.get("likelihood") == "normal":
        x = adata.X.toarray().astype(np.float32)
        adata.X = np.log1p(x / x.sum(1, keepdims=True) * 1e4)
    adata.obsp["spatial_connectivities"] = kneighbors_graph(adata.obsm["spatial"], 6)
    DPVAE.setup_anndata(adata)
    scvi.settings.seed = 0
    model = DPVAE(adata, n_latent=4, n_hidden=32, **kwargs)
    model.train(**{**_TRAIN, "max_epochs": 8}, train_size=1.0, lr=1e-2)
    dp = np.asarray(model.history["dp_loss_train"], dtype=float).ravel()
    assert np.isfinite(dp).all() and dp[-1] < dp[0], dp
    z = model.get_latent_representation()
    assert z.shape == (adata.n_obs, 4) and np.isfinite(z).all()
    if kwargs.get("likelihood") == "normal":
        rec = np.asarray(model.history["reconstruction_loss_train"], dtype=float).ravel()
        assert rec[-1] < 0.5 * rec[0], rec
        assert np.isfinite(model.get_denoised_expression()).all()


def test_learned_scale_is_trained_and_bounded(tissue):
    adata = tissue.copy()
    DPVAE.setup_anndata(adata)
    with pytest.raises(ValueError, match="cluster_key"):
        DPVAE(adata, mask="cluster")
    with pytest.raises(KeyError, match="obsp"):
        DPVAE(adata, mask="not_a_key")
    fixed = DPVAE(adata, n_hidden=16)
    assert "raw_scale" not in dict(fixed.module.named_parameters())
    scvi.settings.seed = 0
    model = DPVAE(adata, learn_scale=True, n_hidden=16)
    assert model.distance_scale == pytest.approx(1.0)  # c starts at 1
    assert "raw_scale" in dict(model.module.named_parameters())
    model.train(max_epochs=3, batch_size=64, enable_progress_bar=False)
    # The optimiser moved c (it is a parameter of the loss, not a constant).
    assert abs(model.distance_scale - 1.0) > 1e-3, model.distance_scale


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
    # By default the warm-up spans the training: epochs 0-4 of 5 at 0, 1/5, ..., 4/5.
    record = RecordBeta()
    model = DPVAE(adata, n_latent=3, n_hidden=16)
    model.train(**_TRAIN, callbacks=[record])
    np.testing.assert_allclose(record.betas, np.arange(5) / 5)
    assert model.run_params_["kl_warmup_epochs"] == 5


def test_default_epochs_are_half_scvi_tools_heuristic():
    from scvi.model._utils import get_max_epochs_heuristic

    from spatialvi.train import dpvae_max_epochs

    for n in (50, 3000, 20_000, 40_000, 400_000):
        assert abs(dpvae_max_epochs(n) - get_max_epochs_heuristic(n) / 2) <= 1, n
    assert dpvae_max_epochs(3000) == 200 and dpvae_max_epochs(40_000) == 100
    assert dpvae_max_epochs(10**9) == 1  # never zero epochs
    for bad in (0, -5, 2.5):
        with pytest.raises(ValueError, match="n_obs"):
            dpvae_max_epochs(bad)


def test_denoised_values_need_the_models_genes(trained):
    model, adata = trained
    den = model.get_denoised_expression()
    assert den.shape == adata.shape
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

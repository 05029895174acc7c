"""Clustering a representation into domains, with spatial majority-vote refinement."""

from __future__ import annotations

import numpy as np
import pytest
from anndata import AnnData

from spatialvi.tl import cluster, refine_labels


def _blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    coords = rng.uniform(0, 100, size=(n, 2))
    truth = (coords[:, 0] > 50).astype(int)
    rep = np.column_stack([truth * 5.0, np.zeros(n)]) + rng.normal(scale=1.0, size=(n, 2))
    ad = AnnData(np.zeros((n, 3), dtype=np.float32), obsm={"spatial": coords, "X_rep": rep})
    return ad, truth


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", ["kmeans", "leiden"])
def test_cluster_recovers_blobs(method, seed):
    """Above 0.8 ARI, and far above the same clustering of row-shuffled features (≈ 0)."""
    from spatialvi.metrics import ari

    ad, truth = _blobs(seed=seed)
    cluster(ad, use_rep="X_rep", n_clusters=2, resolution=0.1, method=method, key_added="cl")
    assert ad.obs["cl"].dtype == "category"
    assert len(ad.obs["cl"]) == ad.n_obs
    shuffled = ad.copy()
    shuffled.obsm["X_rep"] = np.random.default_rng(seed).permutation(ad.obsm["X_rep"])
    cluster(shuffled, use_rep="X_rep", n_clusters=2, resolution=0.1, method=method, key_added="cl")
    control = ari(truth, shuffled.obs["cl"])
    assert ari(truth, ad.obs["cl"]) > max(0.8, control + 0.7), control


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_refinement_fixes_isolated_errors_and_is_vectorised(seed):
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(20), np.arange(20)), -1).reshape(-1, 2).astype(float)
    truth = (grid[:, 0] >= 10).astype(int)
    noisy = truth.copy()
    flip = rng.choice(len(truth), 20, replace=False)
    noisy[flip] = 1 - noisy[flip]
    refined = refine_labels(grid, noisy, n_neighbors=8)
    assert (refined != truth).sum() < (noisy != truth).sum() / 3


def test_refine_flag_and_copy_and_errors():
    ad, _ = _blobs()
    out = cluster(ad, use_rep="X_rep", n_clusters=2, refine=True, copy=True)
    # Default key from use_rep (stem of 'X_rep'); the input is untouched with copy=True.
    assert "rep_cluster" in out.obs and "rep_cluster" not in ad.obs
    assert out.uns["rep_cluster"]["use_rep"] == "X_rep" and "rep_cluster" not in ad.uns
    with pytest.raises(KeyError, match="X_missing"):
        cluster(ad, use_rep="X_missing", n_clusters=2)
    with pytest.raises(ValueError, match="n_clusters"):
        cluster(ad, use_rep="X_rep")
    with pytest.raises(ValueError, match="method"):
        cluster(ad, use_rep="X_rep", n_clusters=2, method="dbscan")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_standardize_lets_low_variance_dims_count(seed):
    from spatialvi.metrics import ari

    ad, truth = _blobs(seed=seed)
    rng = np.random.default_rng(seed + 2)
    # A high-variance nuisance dim dominates raw distances; standardising restores the signal.
    ad.obsm["X_rep"] = np.column_stack(
        [
            truth * 0.05 + rng.normal(scale=0.01, size=ad.n_obs),
            rng.uniform(-100, 100, size=ad.n_obs),
        ]
    )
    cluster(ad, use_rep="X_rep", n_clusters=2, key_added="raw")
    cluster(ad, use_rep="X_rep", n_clusters=2, standardize=True, key_added="std")
    assert ari(truth, ad.obs["std"]) > ari(truth, ad.obs["raw"]) + 0.5


def test_use_rep_none_finds_the_one_model_latent(caplog):
    import logging

    from spatialvi.metrics import ari

    ad, truth = _blobs()
    ad.obsm["X_dpvae"] = ad.obsm.pop("X_rep")
    with caplog.at_level(logging.INFO, logger="spatialvi.tl._cluster"):
        cluster(ad, n_clusters=2)
    assert "X_dpvae" in caplog.text
    assert ad.uns["dpvae_cluster"]["use_rep"] == "X_dpvae"
    assert ari(truth, ad.obs["dpvae_cluster"]) > 0.8
    ad.obsm["X_spavae"] = ad.obsm["X_dpvae"].copy()
    with pytest.raises(KeyError, match="X_dpvae.*X_spavae|use_rep="):
        cluster(ad, n_clusters=2)
    del ad.obsm["X_spavae"], ad.obsm["X_dpvae"]
    with pytest.raises(KeyError, match="found none"):
        cluster(ad, n_clusters=2)

"""reconstruct_spatial on precomputed latents with known geometry."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
from scipy.spatial.distance import pdist

from spatialvi.metrics import procrustes_disparity
from spatialvi.tl import reconstruct_spatial


@pytest.fixture
def adata():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1000, size=(150, 2))
    # A 4-d latent isometric to the coordinates (rotation into 4-d) plus a tiny offset dim.
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    latent = np.c_[xy, np.zeros((150, 2))] @ q
    a = ad.AnnData(np.zeros((150, 3), dtype=np.float32))
    a.obsm["truth"] = xy
    a.obsm["X_latent"] = latent
    return a


def test_reconstruct_from_latent(adata):
    reconstruct_spatial(adata, use_rep="X_latent")
    assert procrustes_disparity(adata.obsm["truth"], adata.obsm["spatial"]) < 1e-6
    assert adata.uns["reconstruct_spatial"]["method"] == "dense"
    with pytest.raises(ValueError, match="overwrite"):
        reconstruct_spatial(adata, use_rep="X_latent")


def test_reported_stress_is_the_stress_of_the_output(adata):
    """A latent that is not isometric to the plane: the stored raw stress is the stress of the
    written coordinates (recomputed here with scipy), and below that of the latent's 2-d PCA
    projection (classical MDS, SMACOF's start)."""
    rng = np.random.default_rng(1)
    noisy = adata.obsm["X_latent"] + rng.normal(0, 100.0, size=adata.obsm["X_latent"].shape)
    adata.obsm["X_noisy"] = noisy
    reconstruct_spatial(adata, use_rep="X_noisy")
    delta = pdist(noisy)
    stress = float(((delta - pdist(adata.obsm["spatial"])) ** 2).sum())
    assert adata.uns["reconstruct_spatial"]["stress"] == pytest.approx(stress, rel=1e-3)
    centred = noisy - noisy.mean(0)
    pca = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
    assert stress < float(((delta - pdist(pca)) ** 2).sum())


def test_anchors_give_absolute_positions(adata):
    mask = np.zeros(adata.n_obs, dtype=bool)
    mask[::10] = True
    reconstruct_spatial(
        adata, use_rep="X_latent", anchors=mask, spatial_key="truth", key_added="rec"
    )
    err = np.sqrt(((adata.obsm["rec"] - adata.obsm["truth"]) ** 2).sum(1))
    assert err.max() < 1.0  # µm on a 1000 µm field
    # The run parameters follow key_added; the default entry is not written.
    assert adata.uns["reconstruct_rec"]["anchors"] == 15
    assert "reconstruct_spatial" not in adata.uns
    np.testing.assert_allclose(adata.obsm["rec"][mask], adata.obsm["truth"][mask])


def test_two_dim_latent_is_used_directly(adata):
    adata.obsm["X_2d"] = adata.obsm["truth"] * 0.01
    names = adata.obs_names[:20]
    out = reconstruct_spatial(adata, use_rep="X_2d", anchors=names, spatial_key="truth", copy=True)
    np.testing.assert_allclose(out.obsm["spatial"], adata.obsm["truth"], atol=1e-8)
    assert "spatial" not in adata.obsm


def test_bad_anchors(adata):
    with pytest.raises(KeyError, match="obs_names"):
        reconstruct_spatial(adata, use_rep="X_latent", anchors=["nope"], spatial_key="truth")
    adata.obsm["X_nan"] = adata.obsm["X_latent"].copy()
    adata.obsm["X_nan"][0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        reconstruct_spatial(adata, use_rep="X_nan")

"""Reproducibility, with numbers: same seed -> same latent, another seed -> another latent,
save/load keeps every output of SpaVAE's inducing and kernel variants, DPVAE's encoding
does not depend on the order of the spots.

All trainings run on the CPU with one torch thread (bitwise-stable reductions), so the
tolerances below are float32 round-off, not slack for run-to-run noise.
"""

from __future__ import annotations

import anndata as ad
import gpytorch
import numpy as np
import pytest
import scvi
import torch

import spatialvi as sv
from helpers import train_quietly
from spatialvi._keys import LAYERS, OBS, OBSM
from spatialvi.model import DPVAE, SIVAE, AdaGVAE, SpaLDVAE, SpaVAE

SEED, OTHER_SEED = 3, 4
#: Smallest max |Δz| two seeds must give: far above float32 noise on latents of order 1.
MIN_SEED_EFFECT = 1e-3


@pytest.fixture(scope="module")
def tissue():
    return sv.sim.synthetic_tissue(n_spots=150, n_genes=30, n_domains=3, random_state=0)


@pytest.fixture(scope="module")
def patterns():
    """Twelve 16-pixel images of Poisson and Thomas patterns, laid out as
    ``sim.point_pattern_dataset`` lays them out. (That benchmark calibrates its Strauss classes
    by simulation first: 10-20 s per process, more than all the trainings here.)"""
    rng = np.random.default_rng(0)
    sets = [sv.sim.poisson_process(30.0, random_state=rng) for _ in range(6)]
    sets += [sv.sim.thomas_process(6.0, 5.0, 0.03, random_state=rng) for _ in range(6)]
    width = max(len(p) for p in sets)
    points = np.full((len(sets), width, 2), np.nan, dtype=np.float32)
    for i, p in enumerate(sets):
        points[i, : len(p)] = p
    images = np.stack([sv.sim.render_points(p, 16, random_state=rng) for p in sets])
    adata = ad.AnnData(X=np.zeros((len(sets), 0), dtype=np.float32))
    adata.obs[OBS.N_POINTS] = [len(p) for p in sets]
    adata.obsm[OBSM.IMAGE] = images[:, None]
    adata.obsm[OBSM.POINTS] = points
    return adata


@pytest.fixture(scope="module")
def sprites():
    adata = sv.sim.texture_dsprites(n_pairs=30, k=1, image_size=16, random_state=0)
    sv.pp.extract_features(adata, backbone="raw", progress_bar=False)
    return adata


def _fit(model_cls, adata, seed, init=None, **train):
    """A fresh model on ``adata`` (already set up), seeded and trained on one CPU thread."""
    torch.set_num_threads(1)
    scvi.settings.seed = seed  # once, before construction: initial weights, split, minibatches
    model = model_cls(adata, **(init or {}))
    return train_quietly(model, accelerator="cpu", **train)


def _spavae(data, seed):
    adata = data["tissue"].copy()
    SpaVAE.setup_anndata(adata)
    init = {"n_inducing": 9, "random_state": seed, "encoder_hidden": (32,), "decoder_hidden": (32,)}
    return _fit(SpaVAE, adata, seed, init, max_epochs=2, beta=1.0, batch_size=64)


def _spaldvae(data, seed):
    adata = data["tissue"].copy()
    SpaLDVAE.setup_anndata(adata)
    init = {"n_inducing": 9, "random_state": seed, "inducing": "kmeans"}
    return _fit(SpaLDVAE, adata, seed, init, max_epochs=2, beta=1.0, batch_size=64)


def _dpvae(data, seed):
    adata = data["tissue"].copy()
    DPVAE.setup_anndata(adata)
    init = {"n_latent": 4, "n_hidden": 32, "dp_weight": 10.0}
    return _fit(DPVAE, adata, seed, init, max_epochs=3, batch_size=64)


def _sivae(data, seed):
    adata = data["patterns"].copy()
    SIVAE.setup_anndata(adata)
    init = {"n_latent": 4, "n_grid": 8, "channels": (8, 8), "n_hidden": 32, "head_hidden": 8}
    return _fit(SIVAE, adata, seed, init, max_epochs=2, batch_size=8)


def _adagvae(data, seed):
    adata = data["sprites"].copy()
    names = adata.uns["texture_dsprites"]["factors"]
    AdaGVAE.setup_anndata(adata, features_key=OBSM.X_RAW, factor_keys=names, k=1)
    init = {"hidden": (32, 32), "n_latent": 4}
    return _fit(AdaGVAE, adata, seed, init, max_epochs=2, batch_size=16)


FITS = {
    "spavae": _spavae,
    "spaldvae": _spaldvae,
    "dpvae": _dpvae,
    "sivae": _sivae,
    "adagvae": _adagvae,
}


@pytest.mark.parametrize("name", list(FITS))
def test_same_seed_same_latent_other_seed_other_latent(name, tissue, patterns, sprites):
    torch.set_num_threads(1)
    data = {"tissue": tissue, "patterns": patterns, "sprites": sprites}
    fit = FITS[name]
    first = fit(data, SEED).get_latent_representation()
    again = fit(data, SEED).get_latent_representation()
    other = fit(data, OTHER_SEED).get_latent_representation()
    assert np.isfinite(first).all()
    np.testing.assert_allclose(again, first, rtol=0, atol=1e-6)
    gap = np.abs(other - first).max()
    assert gap > MIN_SEED_EFFECT, f"{name}: seeds {SEED} and {OTHER_SEED} differ by only {gap:.2e}"


# -- SpaVAE save/load ---------------------------------------------------------------------------
# test_spavae.py checks the latent after save/load for the default grid inducing points and
# the Cauchy kernel only; these are the variants it trains but never reloads, and the outputs
# (denoised counts, predict_at) it does not compare.


def _given_inducing(adata):
    """A 3 × 3 grid in the raw coordinate units, inside the section's bounding box."""
    xy = np.asarray(adata.obsm[OBSM.SPATIAL], dtype=np.float64)
    lo, hi = xy.min(0), xy.max(0)
    gx, gy = np.meshgrid(*(np.linspace(lo[d], hi[d], 5)[1:-1] for d in range(2)))
    return np.column_stack([gx.ravel(), gy.ravel()])


VARIANTS = {
    "kmeans": lambda adata: {"inducing": "kmeans", "n_inducing": 9, "random_state": 1},
    "given": lambda adata: {"inducing": _given_inducing(adata)},
    "kernel_object": lambda adata: {"kernel": _matern_kernel(), "n_inducing": 9},
}


def _matern_kernel():
    """A fresh composite GPyTorch kernel (nested parameters) with a length scale of a quarter
    of the rescaled section (``loc_range`` 20)."""
    kernel = gpytorch.kernels.ScaleKernel(gpytorch.kernels.MaternKernel(nu=2.5))
    kernel.base_kernel.lengthscale = 5.0
    return kernel


@pytest.fixture(scope="module", params=list(VARIANTS))
def spavae_variant(request, tissue):
    adata = tissue.copy()
    SpaVAE.setup_anndata(adata)
    init = {
        **VARIANTS[request.param](adata),
        "encoder_hidden": (32,),
        "decoder_hidden": (32,),
        "learn_inducing": True,  # the saved inducing points are the trained ones
    }
    model = _fit(SpaVAE, adata, SEED, init, max_epochs=3, beta=1.0, batch_size=64)
    return request.param, adata, model


def _query_points(adata):
    """Points between the spots (off the training grid) and three training spots."""
    xy = np.asarray(adata.obsm[OBSM.SPATIAL], dtype=np.float64)
    rng = np.random.default_rng(0)
    between = xy.min(0) + rng.uniform(size=(12, 2)) * (xy.max(0) - xy.min(0))
    return np.vstack([between, xy[:3]])


def test_save_load_keeps_latent_denoised_and_predictions(spavae_variant, tmp_path):
    name, adata, model = spavae_variant
    torch.set_num_threads(1)
    coords = _query_points(adata)
    before = model.predict_at(coords)
    model.save(tmp_path / name, overwrite=True)
    loaded = SpaVAE.load(tmp_path / name, adata=adata.copy(), accelerator="cpu")

    # Every trained weight came back (learned inducing points and kernel parameters included),
    # in a kernel of the same class, not a fresh default one.
    trained = {k: v.cpu() for k, v in model.module.state_dict().items()}
    torch.testing.assert_close(
        {k: v.cpu() for k, v in loaded.module.state_dict().items()}, trained, rtol=0, atol=0
    )
    assert type(loaded.module.gps[0].kernel) is type(model.module.gps[0].kernel)

    np.testing.assert_allclose(
        loaded.get_latent_representation(), model.get_latent_representation(), rtol=0, atol=1e-6
    )
    np.testing.assert_allclose(
        loaded.get_denoised_expression(), model.get_denoised_expression(), rtol=0, atol=1e-6
    )
    after = loaded.predict_at(coords)
    np.testing.assert_allclose(
        after.obsm[OBSM.X_SPAVAE], before.obsm[OBSM.X_SPAVAE], rtol=0, atol=1e-6
    )
    np.testing.assert_allclose(
        after.layers[LAYERS.SPAVAE_DENOISED],
        before.layers[LAYERS.SPAVAE_DENOISED],
        rtol=0,
        atol=1e-6,
    )
    # The predictions depend on the query point: a constant output would pass the above.
    assert np.abs(np.diff(before.obsm[OBSM.X_SPAVAE][:, :2], axis=0)).max() > 1e-3


def test_variants_are_not_the_default_model(tissue):
    """The variants above build what they claim to: inducing points other than the default
    grid, and the given kernel (a copy per section, with its set length scale; not a named
    kernel in its place)."""
    adata = tissue.copy()
    SpaVAE.setup_anndata(adata)
    default = SpaVAE(adata, n_inducing=9).module.gps[0].inducing_points
    for name in ("kmeans", "given"):
        z = SpaVAE(adata, **VARIANTS[name](adata)).module.gps[0].inducing_points
        assert z.shape == default.shape and (z - default).abs().max() > 1e-1, name
    kernel = _matern_kernel()
    gp = SpaVAE(adata, kernel=kernel, n_inducing=9).module.gps[0]
    assert type(gp.kernel) is type(kernel) and type(gp.kernel.base_kernel) is type(
        kernel.base_kernel
    )
    assert gp.kernel.base_kernel.lengthscale.item() == pytest.approx(5.0)


# -- DPVAE: encoding does not depend on spot order --------------------------------------------


@pytest.fixture(scope="module")
def dpvae(tissue):
    return _dpvae({"tissue": tissue}, SEED)


def test_dpvae_latent_is_equivariant_to_a_permutation_of_the_spots(dpvae):
    adata = dpvae.adata
    torch.set_num_threads(1)
    z = dpvae.get_latent_representation()
    perm = np.random.default_rng(1).permutation(adata.n_obs)
    shuffled = adata[perm].copy()
    np.testing.assert_allclose(dpvae.get_latent_representation(shuffled), z[perm], atol=1e-5)
    np.testing.assert_allclose(
        dpvae.get_denoised_expression(shuffled),
        dpvae.get_denoised_expression()[perm],
        rtol=1e-5,
        atol=1e-5,
    )
    # The permutation moved spots with different latents (the check above is not vacuous).
    assert np.abs(z[perm] - z).max() > 1e-2

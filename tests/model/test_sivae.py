"""SIVAE: image VAE with a Gibbs point-process head (fast checks on a tiny model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import train_quietly
from spatialvi import sim, tl
from spatialvi._keys import OBS, OBSM, UNS
from spatialvi.model import SIVAE
from spatialvi.nn import GibbsHead

SMALL = {"channels": (8, 8), "n_hidden": 32, "head_hidden": 8}


@pytest.fixture(scope="module")
def patterns():
    return sim.point_pattern_dataset(8, image_size=32, random_state=0)


@pytest.fixture(scope="module")
def trained(patterns):
    adata = patterns.copy()
    SIVAE.setup_anndata(adata)
    model = SIVAE(adata, n_latent=4, n_grid=8, **SMALL)
    train_quietly(model, max_epochs=2, batch_size=16)
    return model


def test_encoding_needs_no_points_and_matches_training_data(trained, patterns):
    query = patterns.copy()
    del query.obsm[OBSM.POINTS]
    del query.obs[OBS.N_POINTS]
    z_query = trained.get_latent_representation(query)
    z_train = trained.get_latent_representation()
    assert z_query.shape == (patterns.n_obs, 4)
    np.testing.assert_allclose(z_query, z_train, rtol=1e-5, atol=1e-6)
    assert OBSM.POINTS not in query.obsm  # the query is not modified


def test_query_with_other_padding_width_is_encoded(trained, patterns):
    query = patterns[:5].copy()
    pts = query.obsm[OBSM.POINTS]
    width = int((~np.isnan(pts[..., 0])).sum(1).max())
    query.obsm[OBSM.POINTS] = np.ascontiguousarray(pts[:, :width])
    assert trained.get_latent_representation(query).shape == (5, 4)


def test_write_outputs_and_save_load(trained, patterns, tmp_path):
    out = trained.write_outputs(patterns, copy=True)
    assert out.obsm[OBSM.X_SIVAE].shape == (patterns.n_obs, 4)
    assert out.uns[UNS.SIVAE]["model"] == "SIVAE" and "images_per_second" in out.uns[UNS.SIVAE]
    trained.save(tmp_path / "model", overwrite=True)
    loaded = SIVAE.load(tmp_path / "model", adata=patterns.copy())
    np.testing.assert_array_equal(
        loaded.get_latent_representation(), trained.get_latent_representation()
    )
    pots_a = trained.get_potentials(radii=np.array([0.0, 0.1]))
    pots_b = loaded.get_potentials(radii=np.array([0.0, 0.1]))
    np.testing.assert_array_equal(pots_a["psi"], pots_b["psi"])


def test_potentials_have_the_documented_shapes(trained, patterns):
    pots = trained.get_potentials(radii=np.linspace(0, 0.25, 7), grid_size=5)
    assert pots["psi"].shape == (patterns.n_obs, 7)
    assert pots["phi"].shape == (patterns.n_obs, 5, 5)
    assert pots["decay"][0] == 1.0 and pots["decay"][-1] == 0.0
    np.testing.assert_allclose(pots["x"], (np.arange(5) + 0.5) / 5)


def test_simulate_points_writes_patterns_and_reports_the_cap(trained, patterns):
    out = tl.simulate_points(trained, patterns, n_samples=2, n_steps=2000, copy=True)
    sims = out.obsm[OBSM.POINTS_SIMULATED]
    assert sims.shape[:2] == (patterns.n_obs, 2) and sims.shape[-1] == 2
    present = ~np.isnan(sims[..., 0])
    assert ((sims[..., 0][present] >= 0) & (sims[..., 0][present] <= 1)).all()
    run = out.uns[UNS.SIMULATE_POINTS][OBSM.POINTS_SIMULATED]
    assert run["n_steps"] == 2000
    capped = tl.simulate_points(trained, patterns, n_steps=2000, max_points=3, copy=True)
    assert capped.uns[UNS.SIMULATE_POINTS][OBSM.POINTS_SIMULATED]["cap_hit_fraction"] > 0.5
    assert (~np.isnan(capped.obsm[OBSM.POINTS_SIMULATED][..., 0])).sum(-1).max() <= 3


def test_plain_vae_ignores_points(patterns):
    """pl_weight = 0: the loss does not depend on the point sets."""
    adata = patterns.copy()
    SIVAE.setup_anndata(adata)
    model = SIVAE(adata, n_latent=4, pl_weight=0.0, n_grid=8, **SMALL)
    module = model.module.eval()
    x = torch.as_tensor(adata.obsm[OBSM.IMAGE][:4])
    pts = torch.as_tensor(adata.obsm[OBSM.POINTS][:4])
    torch.manual_seed(0)
    inf = module.inference(x)
    gen = module.generative(inf["qz"].loc)
    inf["z"] = inf["qz"].loc
    module.train()
    a = module.loss({"image": x, "points": pts}, inf, gen).loss
    b = module.loss({"image": x, "points": pts.flip(1)}, inf, gen).loss
    c = module.loss({"image": x}, inf, gen).loss
    assert torch.allclose(a, b) and torch.allclose(a, c)


def test_gibbs_head_recovers_a_known_strauss_like_potential():
    """The head's log λ is −φ − Σ w ψ: check it against a direct sum on one configuration."""
    torch.manual_seed(0)
    head = GibbsHead(n_latent=3, interaction_range=0.2, n_basis=5)
    z = torch.randn(1, 3)
    pts = torch.tensor([[[0.5, 0.5], [0.55, 0.5], [0.9, 0.9]]])
    mask = torch.tensor([[True, True, False]])  # the third point is padding
    query = torch.tensor([[[0.5, 0.6], [0.1, 0.1]]])
    got = head.log_intensity(z, query, pts, mask)
    r = torch.cdist(query[0], pts[0, :2])
    psi = head.psi(z, r.flatten()).view(2, 2)
    expected = -head.phi(z, query)[0] - (head.decay(r) * psi).sum(-1)
    torch.testing.assert_close(got[0], expected, rtol=1e-5, atol=1e-6)
    # data points exclude their own pair
    own = head.log_intensity(z, pts[:, :2], pts[:, :2], mask[:, :2], exclude_self=True)
    d = torch.tensor(0.05)
    expected_own = -head.phi(z, pts[:, :2])[0] - head.decay(d) * head.psi(z, d.view(1))[0, 0]
    torch.testing.assert_close(own[0], expected_own.expand(2), rtol=1e-5, atol=1e-6)


def test_trend_basis_is_a_partition_of_unity_spaced_by_the_range():
    """φ's knots sit about one interaction range apart; the hat functions sum to 1, so the
    initial constant φ = −log λ̄ holds everywhere in the window."""
    head = GibbsHead(n_latent=3, interaction_range=0.25)
    assert head.trend_knots_x.numel() == head.trend_knots_y.numel() == 5
    assert GibbsHead(3, 0.6).trend_knots_x.numel() == 3
    u = torch.rand(200, 2) * 2 - 1
    basis = head.trend_basis(u)
    torch.testing.assert_close(basis.sum(-1), torch.ones(200))
    assert ((basis > 0).sum(-1) <= 4).all()  # bilinear: at most the cell's four corners
    with torch.no_grad():
        head.phi_net[-1].weight.zero_()
        head.phi_net[-1].bias.fill_(-np.log(52.0))
    phi = head.phi(torch.randn(2, 3), torch.rand(50, 2))
    torch.testing.assert_close(phi, torch.full((2, 50), -float(np.log(52.0))))


def test_pair_features_derived_once_give_the_same_pseudo_likelihood(patterns):
    """The loader's precomputed pair features (any rows, padded to the widest pattern of all
    images) give the pseudo-likelihood computed from the points of the minibatch alone."""
    adata = patterns.copy()
    SIVAE.setup_anndata(adata)
    module = SIVAE(adata, n_latent=4, n_grid=8, **SMALL).module.eval()
    points = torch.as_tensor(adata.obsm[OBSM.POINTS])
    derived = module.derived_tensors({"points": points})
    rows = torch.tensor([7, 0, 31, 12])
    z = torch.randn(4, 4)
    direct = module.log_pseudo_likelihood(z, points[rows])
    cached = module.log_pseudo_likelihood(
        z,
        points[rows],
        derived["pair_features_data"][rows],
        derived["pair_features_dummy"][rows],
    )
    torch.testing.assert_close(cached, direct, rtol=1e-5, atol=1e-4)
    assert direct.abs().min() > 0  # a real value, not an empty sum


@pytest.mark.parametrize(
    ("mutate", "match", "error"),
    [
        (lambda a: a.obsm.pop(OBSM.POINTS), "Point sets not found", KeyError),
        (
            lambda a: a.obsm.__setitem__(OBSM.IMAGE, a.obsm[OBSM.IMAGE][:, 0]),
            "C × H × W",
            ValueError,
        ),
        (
            lambda a: a.obsm[OBSM.POINTS].__setitem__((0, 0, 0), 5.0),
            "outside the window",
            ValueError,
        ),
    ],
)
def test_bad_setup_input(patterns, mutate, match, error):
    adata = patterns.copy()
    adata.obsm[OBSM.POINTS] = adata.obsm[OBSM.POINTS].copy()
    mutate(adata)
    with pytest.raises(error, match=match):
        SIVAE.setup_anndata(adata)


def test_images_without_points_are_refused_and_other_shapes_too(patterns, trained):
    adata = patterns.copy()
    adata.obsm[OBSM.POINTS] = np.full((adata.n_obs, 3, 2), np.nan, dtype=np.float32)
    adata.obs[OBS.N_POINTS] = 0
    SIVAE.setup_anndata(adata)
    with pytest.raises(ValueError, match="No training image has a point"):
        SIVAE(adata)
    other = sim.point_pattern_dataset(1, image_size=24, random_state=0)
    with pytest.raises(ValueError, match="shape"):
        trained.get_latent_representation(other)
    again = patterns.copy()
    SIVAE.setup_anndata(again)
    with pytest.raises(ValueError, match="interaction_range"):
        SIVAE(again, interaction_range=2.0)


def test_some_empty_point_sets_train(patterns):
    """Zero points is a valid pattern: such images enter the pseudo-likelihood's integral only."""
    adata = patterns.copy()
    pts = adata.obsm[OBSM.POINTS].copy()
    pts[:3] = np.nan
    adata.obsm[OBSM.POINTS] = pts
    adata.obs[OBS.N_POINTS] = (~np.isnan(pts[..., 0])).sum(1)
    SIVAE.setup_anndata(adata)
    model = SIVAE(adata, n_latent=4, n_grid=8, **SMALL)
    train_quietly(model, max_epochs=1, batch_size=16)
    assert all(torch.isfinite(p).all() for p in model.module.parameters())
    assert np.isfinite(model.get_latent_representation()).all()


def test_bad_model_arguments(patterns):
    adata = patterns.copy()
    SIVAE.setup_anndata(adata)
    with pytest.raises(ValueError, match="erosion"):
        SIVAE(adata, erosion=0.6)
    with pytest.raises(ValueError, match="pl_weight"):
        SIVAE(adata, pl_weight=-1)
    with pytest.raises(ValueError, match="n_samples"):
        tl.simulate_points(None, adata, n_samples=0)


def test_potentials_plot_draws_one_curve_and_map_per_group(trained, patterns):
    import matplotlib

    matplotlib.use("Agg")
    from spatialvi import pl

    fig = pl.potentials(trained, patterns)
    curves = fig.axes[0].lines
    assert len(curves) == len(sim.PATTERN_CLASSES) + 1  # + the zero line
    assert sum(1 for ax in fig.axes if ax.images) == len(sim.PATTERN_CLASSES)
    pots = trained.get_potentials(patterns)
    labels = patterns.obs[OBS.LABEL].to_numpy()
    np.testing.assert_allclose(
        curves[0].get_ydata(), pots["psi"][labels == sim.PATTERN_CLASSES[0]].mean(0), rtol=1e-6
    )


def test_image_noise_sd_is_estimated_fixed_or_learned(patterns):
    adata = patterns.copy()
    SIVAE.setup_anndata(adata)
    estimated = SIVAE(adata, n_latent=4, n_grid=8, **SMALL)
    sigma = estimated.run_params_["noise_sd"]
    # the images' noise is 1 / snr (unit spots); the estimate sees it through the spots
    assert abs(sigma[0] * patterns.uns[UNS.POINT_PATTERNS]["snr"] - 1.0) < 0.1
    assert "log_sigma" not in dict(estimated.module.named_parameters())
    fixed = SIVAE(adata, n_latent=4, n_grid=8, noise_sd=0.25, **SMALL).module
    assert float(fixed.log_sigma.exp()[0]) == pytest.approx(0.25, rel=1e-6)
    learned = SIVAE(adata, n_latent=4, n_grid=8, noise_sd=None, **SMALL)
    assert "log_sigma" in dict(learned.module.named_parameters())
    assert learned.run_params_["noise_sd"] is None
    for bad in (0.0, -1.0, (0.1, 0.2), "mad"):
        with pytest.raises(ValueError, match="noise_sd"):
            SIVAE(adata, noise_sd=bad)

"""SpaLDVAE: the linear decoder, spatial scores on synthetic tissue, save/load, outputs."""

from __future__ import annotations

import numpy as np
import pytest
import scvi
import torch
from sklearn.metrics import roc_auc_score

from helpers import train_quietly as _train
from spatialvi._keys import LAYERS, OBS, OBSM, UNS, VAR
from spatialvi.model import SpaLDVAE
from spatialvi.model._spaldvae import spatial_scores_from_latent
from spatialvi.module import SpaLDVAEModule
from spatialvi.sim import synthetic_tissue

# Fixed β = 5 and lr 1e-2: enough to learn the tissue in 100 epochs of 300 spots. (β = 1 lets
# the Gaussian dims take the spatial signal; β ≥ 10 collapsed the GP dims in some runs.)
TRAIN = {"max_epochs": 100, "beta": 5.0, "lr": 1e-2, "batch_size": 64}


@pytest.fixture(scope="module")
def trained():
    scvi.settings.seed = 0
    adata = synthetic_tissue(n_spots=300, n_genes=80, n_domains=4, random_state=7)
    # Every domain has spots, so every marker gene is spatially variable in these data.
    assert adata.obs[OBS.DOMAIN].value_counts().min() >= 40
    SpaLDVAE.setup_anndata(adata)
    model = _train(SpaLDVAE(adata, n_gp=3, n_inducing=25), **TRAIN)
    return adata, model


def _module(n_batch=1, n_input=7, n_gp=2, n_gauss=3):
    torch.manual_seed(0)
    return SpaLDVAEModule(
        n_input=n_input,
        inducing_points=torch.rand(9, 2) * 20,
        coord_offset=torch.zeros(2),
        coord_scale=torch.ones(2),
        input_mean=torch.zeros(n_input),
        input_std=torch.ones(n_input),
        median_library=100.0,
        n_gp=n_gp,
        n_gauss=n_gauss,
        n_batch=n_batch,
    )


def test_linear_decoder_equals_log_of_exp_z_times_exp_w():
    module = _module()
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1.5, (5, 7))
    z = rng.normal(0, 2.0, (4, 11, 5))  # n_samples × b × D
    with torch.no_grad():
        module.log_weight.copy_(torch.as_tensor(w))
        out3 = module.decode_log_rate(torch.as_tensor(z, dtype=torch.float32)).numpy()
        out2 = module.decode_log_rate(torch.as_tensor(z[0], dtype=torch.float32)).numpy()
    expected = np.log(np.exp(z) @ np.exp(w))
    assert out3.shape == (4, 11, 7) and out2.shape == (11, 7)
    np.testing.assert_allclose(out3, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out2, expected[0], rtol=1e-5, atol=1e-5)
    # Stable where exp(z) alone would overflow float32 (exp(100) > 3.4e38).
    with torch.no_grad():
        module.log_weight.fill_(-100.0)
        big = module.decode_log_rate(torch.full((2, 5), 100.0))
    np.testing.assert_allclose(big.numpy(), np.log(5.0), rtol=1e-5)
    # No MLP decoder is left in the module.
    keys = module.state_dict().keys()
    assert not any(k.startswith(("decoder.", "px_log_mean.")) for k in keys)
    assert "log_weight" in keys and "section_offset" not in keys


def test_generative_mean_and_section_offsets():
    module = _module(n_batch=2)
    rng = np.random.default_rng(1)
    w, off = rng.normal(size=(5, 7)), rng.normal(size=(2, 7))
    z = rng.normal(size=(6, 5))
    sf = rng.uniform(0.5, 2.0, (6, 1))
    batch = np.array([0, 1, 1, 0, 1, 0])[:, None]
    with torch.no_grad():
        module.log_weight.copy_(torch.as_tensor(w))
        module.section_offset.copy_(torch.as_tensor(off))
        gen = module.generative(
            torch.as_tensor(z, dtype=torch.float32),
            torch.as_tensor(sf, dtype=torch.float32),
            torch.as_tensor(batch),
        )
    expected = sf * np.exp(off[batch[:, 0]]) * (np.exp(z) @ np.exp(w))
    np.testing.assert_allclose(gen["px"].mu.numpy(), expected, rtol=1e-4)
    with pytest.raises(KeyError, match="batch_key"):
        module.decode_log_rate(torch.zeros(3, 5))


def test_score_formula_and_invariances():
    rng = np.random.default_rng(2)
    z, w = rng.normal(0, 0.7, (50, 4)), rng.normal(0, 1.0, (4, 6))
    n_gp = 2
    gp = np.exp(z[:, :n_gp]) @ np.exp(w[:n_gp])
    rest = np.exp(z[:, n_gp:]) @ np.exp(w[n_gp:])
    d = np.log(gp + rest) - np.log(rest + gp.mean(0))
    expected_lfc = d.std(0)
    expected_share = gp.sum(0) / (gp + rest).sum(0)

    def scores(z_, w_, kind="log_fold_change"):
        return spatial_scores_from_latent(
            torch.as_tensor(z_), torch.as_tensor(w_), n_gp, score=kind, batch_size=7
        ).numpy()

    np.testing.assert_allclose(scores(z, w), expected_lfc, rtol=1e-10)
    np.testing.assert_allclose(scores(z, w, "expression_share"), expected_share, rtol=1e-10)
    # Per-gene scale (W[:, g] + c) and the shift z_k + c, W_k − c change nothing.
    shifted_w = w + rng.normal(0, 3, (1, 6))
    c = rng.normal(0, 2, (1, 4))
    for kind in ("log_fold_change", "expression_share"):
        np.testing.assert_allclose(scores(z, shifted_w, kind), scores(z, w, kind), rtol=1e-9)
        np.testing.assert_allclose(scores(z + c, w - c.T, kind), scores(z, w, kind), rtol=1e-9)
    # A GP dim that is flat over the tissue gives score 0, however much expression it carries.
    flat = z.copy()
    flat[:, :n_gp] = 0.3
    np.testing.assert_allclose(scores(flat, w + 5 * (np.arange(4) < n_gp)[:, None]), 0, atol=1e-9)
    # Two sections are centred separately.
    sections = np.repeat([0, 1], 25)
    two = spatial_scores_from_latent(
        torch.as_tensor(z), torch.as_tensor(w), n_gp, sections=sections
    ).numpy()
    dev = []
    for s in (0, 1):
        g_s, r_s = gp[sections == s], rest[sections == s]
        d_s = np.log(g_s + r_s) - np.log(r_s + g_s.mean(0))
        dev.append(d_s - d_s.mean(0))
    np.testing.assert_allclose(two, np.sqrt((np.vstack(dev) ** 2).mean(0)), rtol=1e-10)


def test_spatially_variable_genes_score_highest(trained):
    adata, model = trained
    truth = adata.var[VAR.SPATIALLY_VARIABLE].to_numpy()
    score = model.spatial_scores()
    assert score.index.equals(adata.var_names) and np.isfinite(score).all()
    auroc = roc_auc_score(truth, score)
    assert auroc >= 0.9, auroc
    # The expression share (the authors' score) ranks worse on the same model: a GP dim can
    # carry baseline expression.
    share = model.spatial_scores("expression_share")
    assert roc_auc_score(truth, share) < auroc
    loadings = model.get_loadings()
    assert loadings.shape == (80, 11) and list(loadings.columns[:3]) == ["gp_0", "gp_1", "gp_2"]


def test_save_load_gives_identical_latent_and_scores(trained, tmp_path):
    adata, model = trained
    model.save(tmp_path / "m", overwrite=True)
    loaded = SpaLDVAE.load(tmp_path / "m", adata=adata.copy())
    assert isinstance(loaded.module, SpaLDVAEModule)
    np.testing.assert_array_equal(
        loaded.get_latent_representation(), model.get_latent_representation()
    )
    np.testing.assert_array_equal(loaded.spatial_scores(), model.spatial_scores())


def test_write_outputs_uses_its_own_keys(trained):
    adata, model = trained
    out = adata.copy()
    kept = np.full((out.n_obs, 2), 7.0)
    out.obsm[OBSM.X_SPAVAE] = kept  # an earlier SpaVAE run
    names, genes = out.obs_names.copy(), out.var_names.copy()
    model.write_outputs(out)
    assert out.obs_names.equals(names) and out.var_names.equals(genes)
    np.testing.assert_array_equal(out.obsm[OBSM.X_SPAVAE], kept)
    assert LAYERS.SPAVAE_DENOISED not in out.layers and UNS.SPAVAE not in out.uns
    np.testing.assert_allclose(
        out.obsm[OBSM.X_SPALDVAE], model.get_latent_representation(), atol=1e-6
    )
    den = out.layers[LAYERS.SPALDVAE_DENOISED]
    assert den.shape == out.shape and (den >= 0).all()
    assert out.uns[UNS.SPALDVAE]["latent_key"] == OBSM.X_SPALDVAE
    assert out.uns[UNS.SPALDVAE]["n_gp"] == 3


def test_sections_get_a_decoder_offset():
    scvi.settings.seed = 0
    adata = synthetic_tissue(n_spots=60, n_genes=20, n_sections=2, random_state=3)
    SpaLDVAE.setup_anndata(adata, batch_key=OBS.SECTION)
    model = _train(SpaLDVAE(adata, n_inducing=9), max_epochs=3, beta=5.0)
    assert model.module.section_offset.shape == (2, 20)
    assert np.isfinite(model.spatial_scores()).all()
    assert np.isfinite(model.get_latent_representation()).all()


def test_has_no_decoder_hidden_argument():
    adata = synthetic_tissue(n_spots=30, n_genes=10, random_state=6)
    SpaLDVAE.setup_anndata(adata)
    with pytest.raises(TypeError, match="decoder_hidden"):
        SpaLDVAE(adata, decoder_hidden=(64,))
    with pytest.raises(ValueError, match="score"):
        SpaLDVAE(adata).spatial_scores("moran")


def test_initial_rates_match_gene_means():
    module = _module()
    log_rate = torch.linspace(-3.0, 4.0, 7)
    module.initialise_log_weight(log_rate)
    z = torch.randn(200_000, 5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mean_rate = torch.exp(module.decode_log_rate(z)).mean(0)
    np.testing.assert_allclose(torch.log(mean_rate).numpy(), log_rate.numpy(), atol=0.03)
    with pytest.raises(ValueError, match="log_rate"):
        module.initialise_log_weight(torch.zeros(3))


def test_inherited_predictions_write_spaldvae_keys(trained):
    adata, model = trained
    coords = np.asarray(adata.obsm[OBSM.SPATIAL])[:5] + 1.0
    out = model.predict_at(coords)
    assert set(out.obsm) == {OBSM.X_SPALDVAE, OBSM.SPATIAL}
    assert set(out.layers) == {LAYERS.SPALDVAE_DENOISED}
    assert set(out.uns) == {UNS.SPALDVAE}
    assert out.uns[UNS.SPALDVAE]["model"] == "SpaLDVAE"
    assert out.uns[UNS.SPALDVAE]["latent_key"] == OBSM.X_SPALDVAE
    # At a training spot the prediction reproduces that spot's latent.
    at_spot = model.predict_at(np.asarray(adata.obsm[OBSM.SPATIAL])[:3])
    np.testing.assert_allclose(
        at_spot.obsm[OBSM.X_SPALDVAE], model.get_latent_representation()[:3], atol=1e-5
    )
    fine = model.enhance_resolution(factor=2)
    assert OBSM.X_SPALDVAE in fine.obsm and UNS.SPALDVAE in fine.uns
    assert fine.uns[UNS.SPALDVAE]["task"] == "enhance_resolution"
    assert OBSM.X_SPAVAE not in fine.obsm and LAYERS.SPAVAE_DENOISED not in fine.layers


def test_spatial_permutations_stay_within_sections():
    scvi.settings.seed = 0
    adata = synthetic_tissue(n_spots=60, n_genes=20, n_sections=2, random_state=3)
    SpaLDVAE.setup_anndata(adata, batch_key=OBS.SECTION)
    model = SpaLDVAE(adata, n_inducing=9)
    sections = adata.obs[OBS.SECTION].to_numpy()
    perms = model.spatial_permutations(5, random_state=1)
    assert len(perms) == 5
    for perm in perms:
        assert sorted(perm) == list(range(adata.n_obs))
        assert (sections[perm] == sections).all()
    assert any((perm != perms[0]).any() for perm in perms[1:])
    np.testing.assert_array_equal(model.spatial_permutations(5, random_state=1)[2], perms[2])

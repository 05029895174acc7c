"""tl.spatially_variable_genes: ranking, permutation p-values (refit and retrain nulls), errors."""

from __future__ import annotations

import numpy as np
import pytest
import scvi

from helpers import train_quietly as _train
from spatialvi._keys import OBSM, UNS, VAR
from spatialvi.model import SpaLDVAE, SpaVAE
from spatialvi.sim import synthetic_tissue
from spatialvi.tl import permutation_pvalues, spatially_variable_genes


@pytest.fixture(scope="module")
def trained():
    scvi.settings.seed = 0
    adata = synthetic_tissue(n_spots=300, n_genes=80, n_domains=4, random_state=7)
    SpaLDVAE.setup_anndata(adata)
    model = SpaLDVAE(adata, n_gp=3, n_inducing=25)
    _train(model, max_epochs=100, beta=5.0, lr=1e-2, batch_size=64)
    return adata, model


@pytest.fixture(scope="module")
def tiny():
    scvi.settings.seed = 0
    adata = synthetic_tissue(n_spots=60, n_genes=15, random_state=4)
    SpaLDVAE.setup_anndata(adata)
    model = _train(SpaLDVAE(adata, n_inducing=9), max_epochs=2, beta=5.0)
    return adata, model


def test_refit_null_separates_spatial_from_uniform_genes(trained):
    adata, model = trained
    out = spatially_variable_genes(model, n_permutations=49, random_state=0, progress_bar=False)
    assert out is None
    var = adata.var
    truth = var[VAR.SPATIALLY_VARIABLE].to_numpy()
    score, rank, pval = (var[k].to_numpy() for k in (VAR.SPATIAL_SCORE, VAR.SVG_RANK, VAR.SVG_PVAL))
    # Ranks: a permutation of 1..G, 1 = highest score.
    assert sorted(rank) == list(range(1, 81)) and rank[np.argmax(score)] == 1
    # Per-gene p-values live on the grid k / 50.
    np.testing.assert_allclose(pval * 50, np.round(pval * 50))
    mean_sv, mean_uniform = pval[truth].mean(), pval[~truth].mean()
    assert mean_sv < 0.1 < 0.35 < mean_uniform, (mean_sv, mean_uniform)
    # Roughly calibrated for the uniform genes: about 5 % below 0.05, not most of them.
    assert (pval[~truth] < 0.05).mean() <= 0.15
    assert (pval[truth] < 0.05).mean() >= 0.8
    params = adata.uns[UNS.SVG]
    assert params["null"] == "refit" and params["n_permutations"] == 49
    assert params["pooled"] is False and params["score"] == "log_fold_change"
    # Pooling compares with all 49 · 80 null values: the finer grid k / (1 + 49·80).
    pooled = spatially_variable_genes(
        model, adata.copy(), n_permutations=49, pooled=True, progress_bar=False, copy=True
    )
    p = pooled.var[VAR.SVG_PVAL].to_numpy()
    np.testing.assert_allclose(p * 3921, np.round(p * 3921))
    assert p.min() >= 1 / 3921 and p[truth].mean() < p[~truth].mean()


def test_same_seed_gives_same_pvalues(tiny):
    _, model = tiny
    kwargs = {"n_permutations": 5, "refit_steps": 50, "progress_bar": False, "copy": True}
    first = spatially_variable_genes(model, random_state=3, **kwargs)
    second = spatially_variable_genes(model, random_state=3, key_added="svg_b", **kwargs)
    np.testing.assert_array_equal(
        first.var[VAR.SVG_PVAL].to_numpy(), second.var["svg_b_pval"].to_numpy()
    )
    assert VAR.SVG_PVAL not in second.var and second.uns["svg_b"]["n_permutations"] == 5
    assert {"svg_b_score", "svg_b_rank"} <= set(second.var)


def test_retrain_null_trains_models_on_shuffled_coordinates(tiny):
    adata, model = tiny
    coords = adata.obsm[OBSM.SPATIAL].copy()
    out = spatially_variable_genes(
        model,
        null="retrain",
        n_permutations=2,
        train_kwargs={"max_epochs": 2},
        progress_bar=False,
        copy=True,
    )
    np.testing.assert_array_equal(adata.obsm[OBSM.SPATIAL], coords)
    assert VAR.SVG_PVAL not in adata.var  # copy=True leaves the input alone
    p = out.var[VAR.SVG_PVAL].to_numpy()
    # Pooled by default: (1 + #null ≥ observed) / (1 + 2 · 15).
    np.testing.assert_allclose(p * 31, np.round(p * 31))
    assert out.uns[UNS.SVG]["null"] == "retrain" and out.uns[UNS.SVG]["pooled"] is True
    assert out.var_names.equals(adata.var_names)


def test_permutation_pvalues_formula():
    observed = np.array([3.0, 1.0, 0.5])
    null = np.array([[1.0, 2.0, 0.1], [4.0, 0.5, 0.2]])
    np.testing.assert_allclose(
        permutation_pvalues(observed, null), [(1 + 1) / 3, (1 + 1) / 3, (1 + 0) / 3]
    )
    # Pooled: all six null values; ≥ 3 → 1, ≥ 1 → 3, ≥ 0.5 → 4.
    np.testing.assert_allclose(
        permutation_pvalues(observed, null, pooled=True), [2 / 7, 4 / 7, 5 / 7]
    )
    with pytest.raises(ValueError, match="column"):
        permutation_pvalues(observed, null[:, :2])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_permutations": 0}, "n_permutations"),
        ({"n_permutations": -3}, "n_permutations"),
        ({"n_permutations": 2.5}, "n_permutations"),
        ({"n_permutations": True}, "n_permutations"),
        ({"null": "shuffle"}, "null"),
        ({"score": "moran"}, "score"),
        ({"refit_steps": 0}, "refit_steps"),
        ({"refit_lr": 0.0}, "refit_lr"),
        ({"train_kwargs": {"max_epochs": 1}}, "train_kwargs"),
        ({"key_added": ""}, "key_added"),
    ],
)
def test_bad_arguments_are_refused(tiny, kwargs, match):
    _, model = tiny
    with pytest.raises(ValueError, match=match):
        spatially_variable_genes(model, progress_bar=False, **kwargs)


def test_wrong_model_or_genes_are_refused(tiny):
    adata, model = tiny
    other = adata.copy()
    SpaVAE.setup_anndata(other)
    with pytest.raises(TypeError, match="SpaLDVAE"):
        spatially_variable_genes(SpaVAE(other, n_inducing=9))
    untrained = adata.copy()
    SpaLDVAE.setup_anndata(untrained)
    with pytest.raises(ValueError, match="train"):
        spatially_variable_genes(SpaLDVAE(untrained, n_inducing=9))
    with pytest.raises(ValueError, match="var_names"):
        spatially_variable_genes(model, adata[:, ::-1].copy(), progress_bar=False)

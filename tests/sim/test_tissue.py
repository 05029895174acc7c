"""The embedded default: domains recoverable but not trivially, SVGs spatial, batch effects visible."""

from __future__ import annotations

import numpy as np
import pytest
import scanpy as sc
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

from spatialvi.metrics import ari, morans_i
from spatialvi.sim import held_out_section, hex_grid, synthetic_tissue


def _pca(adata, n_comps=20):
    work = adata.copy()
    sc.pp.normalize_total(work, target_sum=1e4)
    sc.pp.log1p(work)
    sc.pp.pca(work, n_comps=n_comps, random_state=0)
    return work.obsm["X_pca"]


def test_hex_grid_spacing():
    xy = hex_grid(500, spot_distance=100.0)
    assert xy.shape == (500, 2)
    dist, _ = NearestNeighbors(n_neighbors=7).fit(xy).kneighbors(xy)
    # Interior spots have six neighbours at exactly the spot distance.
    np.testing.assert_allclose(np.median(dist[:, 1:], axis=0), 100.0)


def test_structure_and_determinism():
    a = synthetic_tissue(n_spots=600, n_genes=80, n_domains=4, random_state=3)
    b = synthetic_tissue(n_spots=600, n_genes=80, n_domains=4, random_state=3)
    assert (a.X != b.X).nnz == 0
    assert a.shape == (600, 80)
    assert a.X.dtype == np.int32
    assert a.obs["domain"].nunique() == 4
    assert set(a.var["marker_of"].cat.categories) == {*a.obs["domain"].cat.categories, "none"}
    markers = a.var["marker_of"] != "none"
    assert a.var.loc[markers, "spatially_variable"].all()
    np.testing.assert_allclose(a.layers["true_mean"].sum(axis=1), 1.0, rtol=1e-4)
    lib = np.asarray(a.X.sum(axis=1)).ravel()
    assert 800 < np.median(lib) < 2500
    assert 0.25 < np.std(np.log(lib)) < 0.6  # realistic library-size variation
    # Overdispersion: variance of a uniform gene's normalised counts exceeds Poisson.
    none = np.flatnonzero(~a.var["spatially_variable"].to_numpy())[:20]
    x = a.X[:, none].toarray()
    mu = lib[:, None] * a.layers["true_mean"][:, none]
    assert np.mean((x - mu) ** 2) > 1.3 * np.mean(mu)
    # Marker genes are higher in their own domain than elsewhere.
    gene = np.flatnonzero(markers)[0]
    own = a.obs["domain"] == a.var["marker_of"].iloc[gene]
    prop = a.layers["true_mean"][:, gene]
    assert prop[own].mean() > 1.5 * prop[~own].mean()


@pytest.mark.parametrize(("pattern", "seed"), [("layers", 0), ("layers", 1), ("blobs", 2)])
def test_domains_recoverable_not_trivially(pattern, seed):
    adata = synthetic_tissue(n_spots=2000, n_genes=400, pattern=pattern, random_state=seed)
    labels = KMeans(adata.obs["domain"].nunique(), n_init=10, random_state=0).fit_predict(
        _pca(adata)
    )
    score = ari(adata.obs["domain"], labels)
    assert 0.4 <= score <= 0.85, score


def test_spatially_variable_genes_have_higher_morans_i():
    adata = synthetic_tissue(n_spots=800, n_genes=120, random_state=0)
    moran = morans_i(adata)
    sv = adata.var["spatially_variable"].to_numpy()
    assert moran[sv].mean() > 0.05
    assert abs(moran[~sv].mean()) < 0.02
    assert np.median(moran[sv]) > moran[~sv].quantile(0.95)


def _section_purity(adata, k=10):
    pcs = _pca(adata)
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(pcs).kneighbors(pcs)
    section = adata.obs["section"].cat.codes.to_numpy()
    return (section[idx[:, 1:]] == section[:, None]).mean()


def test_sections_share_layout_with_batch_effect():
    adata = synthetic_tissue(
        n_spots=600, n_genes=200, n_sections=2, batch_effect=0.5, random_state=0
    )
    assert adata.n_obs == 1200
    assert adata.obs_names.is_unique
    assert list(adata.obs["section"].cat.categories) == ["section_0", "section_1"]
    s0 = adata[adata.obs["section"] == "section_0"]
    s1 = adata[adata.obs["section"] == "section_1"]
    shift = s1.obsm["spatial"] - s0.obsm["spatial"]
    assert np.ptp(shift, axis=0).max() < 1e-9  # one rigid sub-spot shift
    assert 0 < np.abs(shift[0]).max() < 100
    # Shared layout: the same domains in the same proportions.
    p0 = s0.obs["domain"].value_counts(normalize=True).sort_index()
    p1 = s1.obs["domain"].value_counts(normalize=True).sort_index()
    assert np.abs(p0 - p1).max() < 0.05
    # Batch effect visible: sections separate in PCA, unlike without a batch effect.
    assert _section_purity(adata) > 0.9
    no_batch = synthetic_tissue(
        n_spots=600, n_genes=200, n_sections=2, batch_effect=0.0, random_state=0
    )
    assert _section_purity(no_batch) < 0.65


def test_subspot_truth():
    adata = synthetic_tissue(n_spots=300, n_genes=50, subspot_factor=2, random_state=1)
    fine = adata.uns["synthetic_tissue"]["subspots"]
    assert fine["spatial"].shape == (1200, 2)
    # Sub-spots sit at (±d/4, ±d/4) around their spot ...
    offsets = fine["spatial"] - adata.obsm["spatial"][fine["spot"]]
    np.testing.assert_allclose(np.abs(offsets), 25.0)
    # ... and the spot's truth is the average of its sub-spots.
    agg = np.zeros_like(adata.layers["true_mean"])
    np.add.at(agg, fine["spot"], fine["mean"] / 4)
    np.testing.assert_allclose(agg, adata.layers["true_mean"], rtol=1e-5)
    # Boundary spots mix domains at the sub-spot level.
    mixed = {spot for spot in range(300) if len(set(fine["domain"][fine["spot"] == spot])) > 1}
    assert 0 < len(mixed) < 150


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_spots": 0}, "n_spots"),
        ({"n_domains": 1}, "n_domains"),
        ({"pattern": "stripes"}, "pattern"),
        ({"subspot_factor": 0}, "subspot_factor"),
        ({"frac_markers": 0.9, "frac_gradient": 0.3}, "frac_markers"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic_tissue(**kwargs)


@pytest.mark.parametrize("fraction", [0.1, 0.25])
def test_held_out_section_split(fraction):
    """The mask holds out round(fraction · n) spots spread over every domain; the split seed
    moves the mask without touching the simulation, the simulation seed the other way round."""
    adata, held = held_out_section(n_spots=200, n_genes=20, fraction=fraction, random_state=4)
    assert held.dtype == bool and held.shape == (adata.n_obs,)
    assert held.sum() == round(fraction * adata.n_obs)
    domains = adata.obs["domain"].to_numpy()
    assert set(domains[held]) == set(domains)
    same_data, other_split = held_out_section(
        n_spots=200, n_genes=20, fraction=fraction, random_state=4, split_state=1
    )
    assert (same_data.X != adata.X).nnz == 0
    assert 0 < (other_split != held).sum()
    other_data, same_split = held_out_section(
        n_spots=200, n_genes=20, fraction=fraction, random_state=5
    )
    assert (same_split == held).all() and (other_data.X != adata.X).nnz > 0
    # kwargs reach the simulator.
    assert held_out_section(n_spots=50, n_genes=10, n_domains=3)[0].obs["domain"].nunique() == 3


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1])
def test_held_out_section_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        held_out_section(n_spots=50, n_genes=10, fraction=fraction)

"""Two panels of the same labels colour each label alike (what the demos rely on)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from spatialvi.demos._common import match_to_domains
from spatialvi.metrics import match_labels
from spatialvi.pl import spatial_scatter
from spatialvi.sim import synthetic_tissue


def _colour_of(ax) -> dict[str, tuple]:
    """Legend label -> the (single) face colour of the collection drawn for it."""
    colours = {}
    for collection in ax.collections:
        faces = np.unique(np.round(collection.get_facecolors(), 6), axis=0)
        assert len(faces) == 1  # one colour per category
        colours[collection.get_label()] = tuple(faces[0])
    return colours


@pytest.fixture
def adata():
    return synthetic_tissue(n_spots=200, n_genes=20, n_domains=4, random_state=0)


def test_matched_clusters_share_the_truth_colours(adata):
    domains = adata.obs["domain"]
    names = list(domains.cat.categories)
    # Clusters: the domains under a permutation, spelled as integers.
    permutation = {name: str(k) for k, name in zip([2, 0, 3, 1], names, strict=True)}
    adata.obs["cluster"] = domains.map(permutation).astype(str)
    match_to_domains(adata, "cluster")
    assert list(adata.obs["cluster"].cat.categories) == names
    assert (adata.obs["cluster"].astype(str) == domains.astype(str)).all()

    fig, (left, right) = plt.subplots(1, 2)
    spatial_scatter(adata, "domain", ax=left)
    spatial_scatter(adata, "cluster", ax=right)
    truth, clusters = _colour_of(left), _colour_of(right)
    assert set(truth) == set(clusters) == set(names)
    assert truth == clusters
    assert len(set(truth.values())) == len(names)  # and distinct labels differ
    assert left.get_legend() is not None and right.get_legend() is not None
    plt.close(fig)


def test_shared_categories_fix_colours_even_when_a_label_is_absent(adata):
    domains = adata.obs["domain"]
    names = list(domains.cat.categories)
    # Only two of the domains predicted; the colours still follow the shared categories.
    pred = np.where(domains.astype(str) == names[0], "p", "q")
    matched = match_labels(domains, pred)
    adata.obs["cluster"] = pd.Categorical(matched, categories=names)
    fig, (left, right) = plt.subplots(1, 2)
    truth = _colour_of(spatial_scatter(adata, "domain", ax=left))
    clusters = _colour_of(spatial_scatter(adata, "cluster", ax=right))
    assert set(clusters) < set(truth)
    for label, colour in clusters.items():
        assert colour == truth[label]
    assert [t.get_text() for t in right.get_legend().get_texts()] == list(clusters)
    plt.close(fig)


def test_palette_mapping_and_sequence(adata):
    names = list(adata.obs["domain"].cat.categories)
    mapping = dict(zip(names, ["red", "green", "blue", "black"], strict=True))
    _, (left, right) = plt.subplots(1, 2)
    by_name = _colour_of(spatial_scatter(adata, "domain", ax=left, palette=mapping))
    by_order = _colour_of(
        spatial_scatter(adata, "domain", ax=right, palette=["red", "green", "blue", "black"])
    )
    assert by_name == by_order
    assert by_name[names[2]] == pytest.approx(matplotlib.colors.to_rgba("blue"))
    with pytest.raises(KeyError, match="`palette` has no colour for the categories"):
        spatial_scatter(adata, "domain", palette={names[0]: "red"})
    with pytest.raises(TypeError, match="`palette` must be"):
        spatial_scatter(adata, "domain", palette=[])
    plt.close("all")

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spatialvi.metrics import ari, match_labels, nmi


def test_permuted_labelling_is_mapped_back():
    true = np.array(["a", "b", "c", "d"] * 5)
    # A relabelling of the truth (a -> 2, b -> 0, c -> 3, d -> 1).
    pred = pd.Series(true).map({"a": 2, "b": 0, "c": 3, "d": 1}).to_numpy()
    matched = match_labels(true, pred)
    assert matched.dtype == object
    assert matched.tolist() == true.tolist()


def test_majority_overlap_wins_and_scores_are_unchanged():
    true = ["a"] * 6 + ["b"] * 6 + ["c"] * 6
    # Cluster 1 is mostly "a", cluster 2 mostly "b", cluster 0 mostly "c", with errors.
    pred = [1, 1, 1, 1, 2, 0, 2, 2, 2, 2, 2, 1, 0, 0, 0, 0, 1, 1]
    matched = match_labels(true, pred)
    rename = {1: "a", 2: "b", 0: "c"}
    assert matched.tolist() == [rename[p] for p in pred]
    assert ari(true, matched) == pytest.approx(ari(true, pred))
    assert nmi(true, matched) == pytest.approx(nmi(true, pred))


def test_more_clusters_than_true_labels_stay_distinct():
    # "unmatched 3" is a true label: the new name must not collide with it.
    true = ["x"] * 4 + ["unmatched 3"] * 4 + ["x", "unmatched 3"]
    pred = [0] * 4 + [1] * 4 + [3, 7]
    matched = match_labels(true, pred)
    assert matched[:8].tolist() == ["x"] * 4 + ["unmatched 3"] * 4
    extra = matched[8:].tolist()
    assert len(set(extra)) == 2
    assert not set(extra) & set(true)
    assert extra == ["unmatched unmatched 3", "unmatched 7"]
    assert ari(true, matched) == pytest.approx(ari(true, pred))


def test_missing_true_labels_are_tolerated():
    true = np.array(["a", "a", None, "b", "b", np.nan, None], dtype=object)
    pred = ["k", "k", "k", "m", "m", "m", "z"]  # "z" only on an unannotated observation
    matched = match_labels(true, pred)
    assert len(matched) == len(pred)
    # Unannotated observations get their cluster's label; nothing is dropped or reordered.
    assert matched.tolist() == ["a", "a", "a", "b", "b", "b", "unmatched z"]
    categorical = pd.Categorical(["a", "a", None, "b"], categories=["b", "a"])
    assert match_labels(categorical, [5, 5, 6, 6]).tolist() == ["a", "a", "b", "b"]


def test_original_true_values_are_returned():
    true = [10, 10, 20, 20]
    assert match_labels(true, ["p", "p", "q", "q"]).tolist() == [10, 10, 20, 20]


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="`labels_true` has 2 entries but `labels_pred` has 3"):
        match_labels(["a", "b"], [0, 1, 2])
    with pytest.raises(ValueError, match="`labels_pred` contains missing"):
        match_labels(["a", "b"], [0, None])
    with pytest.raises(ValueError, match="`labels_true` has no annotated observations"):
        match_labels([None, None], [0, 1])

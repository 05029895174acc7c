from __future__ import annotations

import numpy as np
import pytest

from spatialvi.metrics import ari, clustering_scores, nmi


def test_ari_nmi_hand_computed():
    true = ["a", "a", "b", "b"]
    pred = [0, 0, 1, 1]
    assert ari(true, pred) == pytest.approx(1.0)
    assert nmi(true, pred) == pytest.approx(1.0)
    # Contingency [[1, 1], [1, 1]]: index 0, expected 0 -> ARI 0; MI 0 -> NMI 0.
    assert ari(true, [0, 1, 0, 1]) == pytest.approx(-0.5)  # (0 - 1/3) / (1 - 1/3)
    assert nmi(true, [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-12)
    # Contingency [[2, 0], [1, 1]] for 4 items: sum C(n_ij, 2) = 1, a = C(2,2)+C(2,2) = 2,
    # b = C(3,2) + C(1,2) = 3, expected = 2·3/6 = 1, max = 2.5 -> ARI = 0.
    assert ari(true, [0, 0, 0, 1]) == pytest.approx(0.0, abs=1e-12)


def test_missing_labels_are_left_out():
    true = np.array(["a", "a", None, "b", "b", np.nan], dtype=object)
    pred = [0, 0, 5, 1, 1, 7]
    scores = clustering_scores(true, pred)
    assert scores == {"ari": pytest.approx(1.0), "nmi": pytest.approx(1.0), "n_scored": 4}


def test_errors():
    with pytest.raises(ValueError, match="has 2 entries but `labels_pred` has 3"):
        ari(["a", "b"], [0, 1, 2])
    with pytest.raises(ValueError, match="no annotated observations"):
        ari([None, None], [0, 1])
    with pytest.raises(ValueError, match="labels_pred` contains missing"):
        ari(["a", "b"], [0, None])

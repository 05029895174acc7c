from __future__ import annotations

import itertools

import numpy as np
import pytest

from spatialvi.metrics import detection_scores, match_points


def test_hungarian_beats_greedy():
    # Greedy takes the closest pair (D0, T0; 0.9) first and leaves D1 without a partner within
    # 1.5; the optimal one-to-one matching pairs D0-T1 (1.1) and D1-T0 (1.2).
    truth = np.array([[0.0, 0.0], [2.0, 0.0]])
    detected = np.array([[0.9, 0.0], [-1.2, 0.0]])
    i, j, d = match_points(detected, truth, radius=1.5)
    np.testing.assert_array_equal(i, [0, 1])
    np.testing.assert_array_equal(j, [1, 0])
    np.testing.assert_allclose(d, [1.1, 1.2])
    scores = detection_scores(detected, truth, radius=1.5)
    assert scores["n_matched"] == 2 and scores["f1"] == 1.0


def test_smallest_total_distance_among_maximal_matchings():
    # Both assignments match two pairs; the optimum has total 0.2 + 0.2, not 0.8 + 0.8.
    truth = np.array([[0.0, 0.0], [1.0, 0.0]])
    detected = np.array([[0.2, 0.0], [0.8, 0.0]])
    _, j, d = match_points(detected, truth, radius=1.0)
    np.testing.assert_array_equal(j, [0, 1])
    np.testing.assert_allclose(d, [0.2, 0.2])


def test_radius_boundary_is_inclusive():
    truth = np.array([[0.0, 0.0]])
    assert detection_scores(np.array([[3.0, 0.0]]), truth, radius=3.0)["n_matched"] == 1
    assert detection_scores(np.array([[0.0, 3.0]]), truth, radius=3.0)["n_matched"] == 1
    assert detection_scores(np.array([[3.0 + 1e-9, 0.0]]), truth, radius=3.0)["n_matched"] == 0


def test_scores_known_numbers():
    truth = np.array([[0, 0], [10, 0], [20, 0], [30, 0], [40, 0]], dtype=float)
    detected = np.array([[1, 0], [10, 2], [22.5, 0], [50, 50]], dtype=float)
    s = detection_scores(detected, truth, radius=2.0)
    assert (s["n_matched"], s["n_detected"], s["n_true"]) == (2, 4, 5)
    assert s["precision"] == pytest.approx(0.5)
    assert s["recall"] == pytest.approx(0.4)
    assert s["f1"] == pytest.approx(2 * 2 / 9)
    assert s["mean_distance"] == pytest.approx(1.5)
    s3 = detection_scores(detected, truth, radius=3.0)
    assert s3["n_matched"] == 3 and s3["f1"] == pytest.approx(6 / 9)


def test_empty_sets():
    none = np.zeros((0, 2))
    some = np.array([[1.0, 2.0]])
    both = detection_scores(none, none)
    assert (both["precision"], both["recall"], both["f1"]) == (1.0, 1.0, 1.0)
    assert np.isnan(both["mean_distance"])
    missed = detection_scores(none, some)
    assert (missed["precision"], missed["recall"], missed["f1"]) == (1.0, 0.0, 0.0)
    spurious = detection_scores(some, none)
    assert (spurious["precision"], spurious["recall"], spurious["f1"]) == (0.0, 1.0, 0.0)
    far = detection_scores(some, some + 10)
    assert (far["precision"], far["recall"], far["f1"]) == (0.0, 0.0, 0.0)


def test_matches_brute_force_maximum():
    rng = np.random.default_rng(0)
    for _ in range(20):
        detected, truth = rng.uniform(0, 4, (5, 2)), rng.uniform(0, 4, (5, 2))
        dist = np.linalg.norm(detected[:, None] - truth[None], axis=2)
        best = max(
            sum(dist[k, p[k]] <= 1.5 for k in range(5)) for p in itertools.permutations(range(5))
        )
        i, j, d = match_points(detected, truth, radius=1.5)
        assert len(i) == best
        assert len(set(i)) == len(i) and len(set(j)) == len(j)
        assert (d <= 1.5).all()


def test_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        detection_scores(np.array([[np.nan, 0.0]]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="radius"):
        match_points(np.zeros((1, 2)), np.zeros((1, 2)), radius=-1)
    with pytest.raises(ValueError, match="different dimensions"):
        match_points(np.zeros((1, 2)), np.zeros((1, 3)), radius=1)
    with pytest.raises(ValueError, match="n × d"):
        match_points(np.zeros((2, 2, 2)), np.zeros((1, 2)), radius=1)

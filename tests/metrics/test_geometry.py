"""Geometry metrics against known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from spatialvi.metrics import alignment_error, procrustes_disparity, stress_1


def test_similarity_invariance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2))
    theta = 0.7
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    y = 3.0 * x @ rot * np.array([1, -1]) + 5.0
    assert procrustes_disparity(x, y) < 1e-12
    np.testing.assert_allclose(alignment_error(x, y), 0, atol=1e-10)
    assert stress_1(cdist(x, x), x) == pytest.approx(0.0)


def test_known_values():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = x.copy()
    y[0] = [0.5, 0.5]
    # Independently: centre, scale to unit Frobenius norm; disparity = 1 − (Σ σ_i)², with σ
    # the singular values of Aᵀ B (the optimal rotation and scale, reflections allowed).
    a, b = x - x.mean(0), y - y.mean(0)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    expected = 1.0 - np.linalg.svd(a.T @ b, compute_uv=False).sum() ** 2
    assert procrustes_disparity(x, y) == pytest.approx(expected, rel=1e-10)
    assert expected == pytest.approx(2 / 11, rel=1e-12)  # moving one corner to the centre
    err = alignment_error(x, y, scaling=False)
    assert err.shape == (4,) and err[0] > err[1:].max()
    # doubling every distance: stress-1 = sqrt(Σ d² / Σ (2d)²)... of the configuration = 1/... exact:
    assert stress_1(cdist(x, x) * 2, x) == pytest.approx(1.0)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        procrustes_disparity(np.zeros((3, 2)), np.zeros((4, 2)))


def test_similarity_fit_recovers_known_transform():
    from spatialvi.metrics import similarity_fit

    rng = np.random.default_rng(4)
    source = rng.normal(size=(50, 2))
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    reflected = rotation @ np.diag([1.0, -1.0])
    target = 2.5 * source @ reflected + np.array([3.0, -1.0])
    scale, rot, shift = similarity_fit(source, target)
    assert scale == pytest.approx(2.5)
    np.testing.assert_allclose(rot, reflected, atol=1e-10)
    np.testing.assert_allclose(shift, [3.0, -1.0], atol=1e-10)
    fixed_scale, _, _ = similarity_fit(source, target, scaling=False)
    assert fixed_scale == 1.0

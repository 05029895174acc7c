"""Geometry of reconstructed coordinates: Procrustes disparity, stress-1, per-cell error."""

from __future__ import annotations

import numpy as np

from spatialvi.geometry import similarity_fit


def _as_pair(true, pred):
    true = np.asarray(true, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if true.shape != pred.shape or true.ndim != 2:
        raise ValueError(
            f"`true` and `pred` must be n × d arrays of the same shape; got {true.shape} and {pred.shape}."
        )
    if not (np.isfinite(true).all() and np.isfinite(pred).all()):
        raise ValueError("`true` and `pred` must be finite (no NaN coordinates).")
    return true, pred


def procrustes_disparity(true, pred) -> float:
    """Procrustes disparity between two configurations, :func:`scipy.spatial.procrustes` convention.

    Both inputs are centred and scaled to unit Frobenius norm; ``pred`` is rotated (reflection
    allowed) and scaled onto ``true``; the disparity is the residual sum of squares, in [0, 1].

    Parameters
    ----------
    true, pred
        ``n × d`` coordinates of the same observations in the same order.
    """
    from scipy.spatial import procrustes

    true, pred = _as_pair(true, pred)
    return float(procrustes(true, pred)[2])


def stress_1(dissimilarities, coordinates, weights=None) -> float:
    """Kruskal's stress-1: ``sqrt(Σ_{i<j} w (δ − d)² / Σ_{i<j} w d²)`` with ``d`` from ``coordinates``.

    Parameters
    ----------
    dissimilarities
        Dense symmetric ``n × n`` target distances δ.
    coordinates
        ``n × p`` configuration.
    weights
        Optional ``n × n`` non-negative weights (default 1).
    """
    from scipy.spatial.distance import cdist

    delta = np.asarray(dissimilarities, dtype=np.float64)
    x = np.asarray(coordinates, dtype=np.float64)
    if delta.shape != (len(x), len(x)):
        raise ValueError(f"`dissimilarities` must be {len(x)} × {len(x)}, got {delta.shape}.")
    d = cdist(x, x)
    w = np.ones_like(d) if weights is None else np.asarray(weights, dtype=np.float64)
    iu = np.triu_indices(len(x), 1)
    num = (w[iu] * (delta[iu] - d[iu]) ** 2).sum()
    den = (w[iu] * d[iu] ** 2).sum()
    return float(np.sqrt(num / den)) if den > 0 else float("nan")


def alignment_error(true, pred, scaling: bool = True) -> np.ndarray:
    """Per-cell distance between ``true`` and ``pred`` after the best similarity alignment.

    ``pred`` is mapped onto ``true`` by the least-squares translation, rotation (reflection
    allowed) and, if ``scaling``, isotropic scale; errors are in the units of ``true``
    (e.g. µm).

    Returns
    -------
    ``n`` array of Euclidean errors.
    """
    true, pred = _as_pair(true, pred)
    scale, rotation, shift = similarity_fit(pred, true, scaling=scaling)
    aligned = scale * pred @ rotation + shift
    return np.sqrt(((aligned - true) ** 2).sum(axis=1))

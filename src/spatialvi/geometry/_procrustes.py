"""Least-squares similarity (Procrustes) alignment of two point configurations."""

from __future__ import annotations

import numpy as np


def similarity_fit(
    source: np.ndarray, target: np.ndarray, scaling: bool = True
) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity transform ``target ≈ scale · source @ rotation + shift``.

    The rotation may include a reflection (as in :func:`scipy.spatial.procrustes`); with
    ``scaling=False`` the scale is 1. Returns ``(scale, rotation, shift)``; apply it to any
    points ``x`` as ``scale * x @ rotation + shift``.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    s, t = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(s.T @ t)
    rotation = u @ vt
    norm = (s**2).sum()
    scale = sigma.sum() / norm if scaling and norm > 0 else 1.0
    return scale, rotation, mu_t - scale * mu_s @ rotation

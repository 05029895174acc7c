"""Coordinate frames and inducing-point layouts for Gaussian-process priors over space."""

from __future__ import annotations

import numpy as np


def coordinate_rescaling(
    coords: np.ndarray, loc_range: float = 20.0, keep_aspect: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Offset and scale mapping ``coords`` into ``[0, loc_range]``.

    With ``keep_aspect`` one common scale is used (the longest side spans ``loc_range``);
    otherwise each axis is scaled separately (the authors' choice). Degenerate axes get scale 1.
    """
    lo, hi = coords.min(0), coords.max(0)
    extent = hi - lo
    if keep_aspect:
        longest = extent.max()
        scale = np.full(coords.shape[1], loc_range / longest if longest > 0 else 1.0)
    else:
        scale = np.where(extent > 0, loc_range / np.where(extent > 0, extent, 1.0), 1.0)
    return lo.astype(np.float64), scale.astype(np.float64)


def grid_inducing_points(scaled: np.ndarray, n_inducing: int) -> np.ndarray:
    """Regular grid of about ``n_inducing`` points over the bounding box of ``scaled``.

    Points per axis are proportional to the axis extent (a square section gets ``k × k``;
    49 → the authors' 7 × 7 grid), at least 2 per non-degenerate axis.
    """
    lo, hi = scaled.min(0), scaled.max(0)
    extent = hi - lo
    active = extent > 0
    ratios = np.where(active, extent / max(extent.max(), 1e-12), 0.0)
    d = int(active.sum())
    if d == 0:
        return lo[None, :].copy()
    k = (n_inducing / np.prod(ratios[active])) ** (1.0 / d)
    axes = []
    for j in range(scaled.shape[1]):
        n_j = max(2, round(k * ratios[j])) if active[j] else 1
        axes.append(np.linspace(lo[j], hi[j], n_j))
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.column_stack([m.ravel() for m in mesh])


def kmeans_inducing_points(
    scaled: np.ndarray, n_inducing: int, random_state: int = 0
) -> np.ndarray:
    """K-means centres of the (deduplicated) spot positions, with duplicate centres removed."""
    from sklearn.cluster import KMeans

    unique = np.unique(scaled, axis=0)
    k = min(n_inducing, len(unique))
    centres = KMeans(k, n_init=10, random_state=random_state).fit(unique).cluster_centers_
    # Coinciding centres would make K_mm singular.
    return np.unique(np.round(centres, 6), axis=0)

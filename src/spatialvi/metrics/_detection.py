"""Detection accuracy of point sets: one-to-one matching within a radius, precision/recall/F1."""

from __future__ import annotations

import numpy as np


def _as_points(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values.reshape(0, values.shape[-1] if values.ndim == 2 else 2)
    if values.ndim != 2 or values.shape[1] < 1:
        raise ValueError(f"`{name}` must be an n × d array of positions; got shape {values.shape}.")
    if not np.isfinite(values).all():
        raise ValueError(
            f"`{name}` contains NaN or infinite coordinates; drop NaN padding first "
            f"(e.g. `{name}[~np.isnan({name}).any(axis=1)]`)."
        )
    return values


def match_points(detected, truth, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal one-to-one matching of detected and true points within ``radius``.

    Among all matchings that pair each point at most once and only pairs at distance
    ``≤ radius``, the one with the most pairs and, among those, the smallest total distance is
    returned (Hungarian algorithm, :func:`scipy.optimize.linear_sum_assignment`). Greedy
    nearest-neighbour matching can pair fewer points; this cannot.

    Parameters
    ----------
    detected, truth
        ``n × d`` and ``m × d`` arrays of positions in the same units (e.g. pixels).
    radius
        Largest distance of a matched pair, in the units of the positions (inclusive).

    Returns
    -------
    ``(i, j, distance)``: indices into ``detected`` and ``truth`` of the matched pairs (sorted
    by ``i``) and their distances.
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    a, b = _as_points(detected, "detected"), _as_points(truth, "truth")
    if not np.isscalar(radius) or not np.isfinite(radius) or radius < 0:
        raise ValueError(f"`radius` must be a non-negative finite number; got {radius!r}.")
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))
    if len(a) == 0 or len(b) == 0:
        return empty
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"`detected` and `truth` have different dimensions ({a.shape[1]} and {b.shape[1]})."
        )
    dist = cdist(a, b)
    allowed = dist <= radius
    if not allowed.any():
        return empty
    # Cost: an allowed pair costs its distance minus a bonus larger than any sum of allowed
    # distances, so the optimum maximises the number of pairs first and minimises the summed
    # distance second; forbidden pairs cost 0 and are discarded afterwards.
    bonus = radius * min(len(a), len(b)) + 1.0
    cost = np.where(allowed, dist - bonus, 0.0)
    rows, cols = linear_sum_assignment(cost)
    keep = allowed[rows, cols]
    rows, cols = rows[keep], cols[keep]
    return rows.astype(np.int64), cols.astype(np.int64), dist[rows, cols]


def detection_scores(detected, truth, radius: float = 3.0) -> dict[str, float]:
    """Precision, recall and F1 of detected points against the truth, one-to-one within a radius.

    Parameters
    ----------
    detected, truth
        ``n × d`` and ``m × d`` positions in the same units (pixels for the smFISH
        benchmark, where the customary radius is 3 px).
    radius
        Matching radius (inclusive), in the units of the positions; see :func:`match_points`.

    Returns
    -------
    dict with ``precision = n_matched / n_detected``, ``recall = n_matched / n_true``,
    ``f1 = 2 n_matched / (n_detected + n_true)``, ``n_matched``, ``n_detected``, ``n_true`` and
    ``mean_distance`` (of the matched pairs; NaN when none). Empty sets: precision is 1 when
    nothing is detected (no false detection), recall is 1 when there is nothing to find, and
    F1 is 1 when both are empty and 0 when exactly one is.
    """
    i, _, dist = match_points(detected, truth, radius)
    n_det = len(_as_points(detected, "detected"))
    n_true = len(_as_points(truth, "truth"))
    n_match = len(i)
    total = n_det + n_true
    return {
        "precision": n_match / n_det if n_det else 1.0,
        "recall": n_match / n_true if n_true else 1.0,
        "f1": 2.0 * n_match / total if total else 1.0,
        "n_matched": int(n_match),
        "n_detected": int(n_det),
        "n_true": int(n_true),
        "mean_distance": float(dist.mean()) if n_match else float("nan"),
    }

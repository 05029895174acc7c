"""Birth–death–shift Metropolis–Hastings for the Strauss process (numba).

Written by hand: no Python library simulates Gibbs point processes (spatstat's ``rmh`` is R).
The chain follows spatstat's defaults (SPEC "Point processes"): with probability ``p_shift`` a
uniformly chosen point moves to a uniform location in the window, otherwise a birth or a death
is proposed with probabilities ``q_birth`` and ``1 − q_birth``. Random numbers come in as
arrays drawn by numpy's Generator, so results are reproducible from ``random_state``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _neighbours(x, y, n, u, v, skip, r2):  # pragma: no cover - jitted
    """Number of points ``k ≠ skip`` among the first ``n`` within distance ``√r2`` of (u, v)."""
    count = 0
    for k in range(n):
        if k != skip:
            dx = x[k] - u
            dy = y[k] - v
            if dx * dx + dy * dy <= r2:
                count += 1
    return count


@njit(cache=True)
def _beta_at(beta_grid, u, v, x_min, y_min, width, height):  # pragma: no cover - jitted
    rows, cols = beta_grid.shape
    c = min(int((u - x_min) / width * cols), cols - 1)
    r = min(int((v - y_min) / height * rows), rows - 1)
    return beta_grid[r, c]


@njit(cache=True)
def strauss_chain(
    x,
    y,
    n,
    beta_grid,
    window,
    gamma,
    radius,
    moves,
    picks,
    new_x,
    new_y,
    accepts,
    p_shift,
    q_birth,
):  # pragma: no cover - jitted
    """Run the chain in place on the first ``n`` entries of ``x, y``; return the final ``n``.

    ``beta_grid`` holds β(u) on a regular grid over ``window`` (one cell for a homogeneous
    process); ``x`` and ``y`` have the capacity that caps the number of points.
    """
    x_min, x_max, y_min, y_max = window[0], window[1], window[2], window[3]
    width = x_max - x_min
    height = y_max - y_min
    area = width * height
    r2 = radius * radius
    capacity = x.shape[0]
    q_death = 1.0 - q_birth
    for s in range(moves.shape[0]):
        u = x_min + new_x[s] * width
        v = y_min + new_y[s] * height
        if moves[s] < p_shift:
            if n == 0:
                continue
            i = min(int(picks[s] * n), n - 1)
            t_old = _neighbours(x, y, n, x[i], y[i], i, r2)
            t_new = _neighbours(x, y, n, u, v, i, r2)
            lam_old = _beta_at(beta_grid, x[i], y[i], x_min, y_min, width, height) * gamma**t_old
            lam_new = _beta_at(beta_grid, u, v, x_min, y_min, width, height) * gamma**t_new
            if lam_old <= 0.0 or accepts[s] * lam_old < lam_new:
                x[i] = u
                y[i] = v
        elif moves[s] < p_shift + (1.0 - p_shift) * q_birth:
            if n >= capacity:
                continue
            t = _neighbours(x, y, n, u, v, -1, r2)
            lam = _beta_at(beta_grid, u, v, x_min, y_min, width, height) * gamma**t
            if accepts[s] * q_birth * (n + 1) < lam * area * q_death:
                x[n] = u
                y[n] = v
                n += 1
        else:
            if n == 0:
                continue
            i = min(int(picks[s] * n), n - 1)
            t = _neighbours(x, y, n, x[i], y[i], i, r2)
            lam = _beta_at(beta_grid, x[i], y[i], x_min, y_min, width, height) * gamma**t
            if accepts[s] * q_death * lam * area < q_birth * n:
                x[i] = x[n - 1]
                y[i] = y[n - 1]
                n -= 1
    return n


def run_strauss_chain(
    beta_grid: np.ndarray,
    window: tuple[float, float, float, float],
    gamma: float,
    radius: float,
    n_steps: int,
    capacity: int,
    rng: np.random.Generator,
    p_shift: float = 0.9,
    q_birth: float = 0.5,
) -> tuple[np.ndarray, bool]:
    """Simulate from the empty pattern; return the points and whether the cap was reached."""
    x = np.zeros(capacity)
    y = np.zeros(capacity)
    draws = rng.random((5, n_steps))
    n = strauss_chain(
        x,
        y,
        0,
        np.ascontiguousarray(beta_grid, dtype=np.float64),
        np.asarray(window, dtype=np.float64),
        float(gamma),
        float(radius),
        draws[0],
        draws[1],
        draws[2],
        draws[3],
        draws[4],
        p_shift,
        q_birth,
    )
    return np.column_stack([x[:n], y[:n]]), n >= capacity

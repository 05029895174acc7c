"""Birth–death–shift Metropolis–Hastings for pairwise Gibbs point processes (numba).

Written by hand: no Python library simulates Gibbs point processes (spatstat's ``rmh`` is R).
The conditional intensity is tabulated:

    log λ(u; X) = log_beta(u) − Σ_{v ∈ X, ‖u − v‖ ≤ range} pair(‖u − v‖)

with ``log_beta`` on a regular grid over the window (one cell for a homogeneous process) and the
pair potential ``pair`` on a regular grid of distances over ``[0, range]`` (one bin for a
Strauss process: ``pair = −log γ``). The chain follows spatstat's defaults (SPEC "Point
processes"): with probability ``p_shift`` a uniformly chosen point moves to a uniform location
in the window, otherwise a birth or a death is proposed with probabilities ``q_birth`` and
``1 − q_birth``; acceptance is decided in log space. Random numbers come in as arrays drawn by
numpy's Generator, so results are reproducible from ``random_state``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _pair_energy(x, y, n, u, v, skip, table, r2_max, bin_width):  # pragma: no cover - jitted
    """Σ pair(‖(u, v) − x_k‖) over the first ``n`` points ``k ≠ skip`` within the range."""
    total = 0.0
    n_bins = table.shape[0]
    for k in range(n):
        if k != skip:
            dx = x[k] - u
            dy = y[k] - v
            d2 = dx * dx + dy * dy
            if d2 <= r2_max:
                if n_bins == 1:
                    total += table[0]
                else:
                    total += table[min(int(np.sqrt(d2) / bin_width), n_bins - 1)]
    return total


@njit(cache=True)
def _grid_value(grid, u, v, x_min, y_min, width, height):  # pragma: no cover - jitted
    rows, cols = grid.shape
    c = min(int((u - x_min) / width * cols), cols - 1)
    r = min(int((v - y_min) / height * rows), rows - 1)
    return grid[r, c]


@njit(cache=True)
def gibbs_chain(
    x,
    y,
    n,
    log_beta,
    window,
    table,
    pair_range,
    moves,
    picks,
    new_x,
    new_y,
    accepts,
    p_shift,
    q_birth,
):  # pragma: no cover - jitted
    """Run the chain in place on the first ``n`` entries of ``x, y``.

    ``x`` and ``y`` have the capacity that caps the number of points. Returns the final ``n``
    and the number of births refused because the cap was reached.
    """
    x_min, x_max, y_min, y_max = window[0], window[1], window[2], window[3]
    width = x_max - x_min
    height = y_max - y_min
    log_area = np.log(width * height)
    r2_max = pair_range * pair_range
    bin_width = pair_range / table.shape[0]
    capacity = x.shape[0]
    log_qb = np.log(q_birth)
    log_qd = np.log(1.0 - q_birth)
    capped = 0
    for s in range(moves.shape[0]):
        u = x_min + new_x[s] * width
        v = y_min + new_y[s] * height
        log_u = np.log(accepts[s])
        if moves[s] < p_shift:
            if n == 0:
                continue
            i = min(int(picks[s] * n), n - 1)
            old = _grid_value(log_beta, x[i], y[i], x_min, y_min, width, height) - _pair_energy(
                x, y, n, x[i], y[i], i, table, r2_max, bin_width
            )
            new = _grid_value(log_beta, u, v, x_min, y_min, width, height) - _pair_energy(
                x, y, n, u, v, i, table, r2_max, bin_width
            )
            if old == -np.inf or log_u < new - old:
                x[i] = u
                y[i] = v
        elif moves[s] < p_shift + (1.0 - p_shift) * q_birth:
            if n >= capacity:
                capped += 1
                continue
            lam = _grid_value(log_beta, u, v, x_min, y_min, width, height) - _pair_energy(
                x, y, n, u, v, -1, table, r2_max, bin_width
            )
            if log_u + log_qb + np.log(n + 1.0) < lam + log_area + log_qd:
                x[n] = u
                y[n] = v
                n += 1
        else:
            if n == 0:
                continue
            i = min(int(picks[s] * n), n - 1)
            lam = _grid_value(log_beta, x[i], y[i], x_min, y_min, width, height) - _pair_energy(
                x, y, n, x[i], y[i], i, table, r2_max, bin_width
            )
            if lam == -np.inf or log_u + log_qd + lam + log_area < log_qb + np.log(float(n)):
                x[i] = x[n - 1]
                y[i] = y[n - 1]
                n -= 1
    return n, capped


def run_gibbs_chain(
    log_beta: np.ndarray,
    window: tuple[float, float, float, float],
    pair_table: np.ndarray,
    pair_range: float,
    n_steps: int,
    capacity: int,
    rng: np.random.Generator,
    p_shift: float = 0.9,
    q_birth: float = 0.5,
) -> tuple[np.ndarray, int]:
    """Simulate from the empty pattern; return the points and the births refused at the cap."""
    x = np.zeros(capacity)
    y = np.zeros(capacity)
    draws = rng.random((5, n_steps))
    n, capped = gibbs_chain(
        x,
        y,
        0,
        np.ascontiguousarray(log_beta, dtype=np.float64),
        np.asarray(window, dtype=np.float64),
        np.ascontiguousarray(np.atleast_1d(pair_table), dtype=np.float64),
        float(pair_range),
        draws[0],
        draws[1],
        draws[2],
        draws[3],
        draws[4],
        p_shift,
        q_birth,
    )
    return np.column_stack([x[:n], y[:n]]), int(capped)

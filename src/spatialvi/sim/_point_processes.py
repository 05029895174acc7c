"""Point-process simulators on a rectangle: Poisson, Thomas (clustered), Strauss (repulsive).

Every process can be homogeneous or inhomogeneous. An inhomogeneous process takes a ``trend``:
a function ``f(x, y)`` of arrays returning non-negative relative intensities. The trend is
normalised by its mean over the window (evaluated on a 256 × 256 midpoint grid), so the
intensity parameter keeps its meaning as the *average* intensity:

- Poisson: ``λ(u) = intensity · f(u) / mean(f)``;
- Thomas: offspring are thinned independently with probability ``f(u) / max(f)`` and ``μ`` is
  raised by ``max(f) / mean(f)``, so the intensity is ``κ μ f(u) / mean(f)``;
- Strauss: ``β(u) = β · f(u) / mean(f)`` (the count of a Strauss process is below
  ``β |W|``; see :func:`strauss_beta`).

Points are ``n × 2`` float64 arrays ``(x, y)`` inside ``window = (x_min, x_max, y_min, y_max)``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from spatialvi._validation import check_int, check_interaction_range, check_number, check_window

Trend = Callable[[np.ndarray, np.ndarray], np.ndarray]

UNIT_SQUARE = (0.0, 1.0, 0.0, 1.0)
#: Side of the midpoint grid on which trends are evaluated (normalisation, Strauss β(u)).
TREND_GRID = 256
#: Default Metropolis–Hastings steps of :func:`strauss_process` (see its docstring).
STRAUSS_STEPS = 100_000


def _rng(random_state) -> np.random.Generator:
    return (
        random_state
        if isinstance(random_state, np.random.Generator)
        else np.random.default_rng(random_state)
    )


def _positive(name: str, value, allow_zero: bool = False) -> float:
    return check_number(name, value, low=0.0, low_open=not allow_zero)


def trend_grid(trend: Trend | None, window, size: int = TREND_GRID) -> np.ndarray:
    """``trend`` on a ``size × size`` midpoint grid over ``window`` (rows along y), normalised to mean 1.

    Raises a ``ValueError`` if the trend is negative, non-finite or zero everywhere.
    """
    return _trend_grid(trend, window, size)[0]


def _trend_grid(trend, window, size: int = TREND_GRID) -> tuple[np.ndarray, float]:
    """Normalised grid and the factor that normalises the raw trend (1 / its grid mean)."""
    if trend is None:
        return np.ones((1, 1)), 1.0
    x_min, x_max, y_min, y_max = check_window(window)
    xs = x_min + (np.arange(size) + 0.5) * (x_max - x_min) / size
    ys = y_min + (np.arange(size) + 0.5) * (y_max - y_min) / size
    gx, gy = np.meshgrid(xs, ys)
    values = np.broadcast_to(np.asarray(trend(gx, gy), dtype=np.float64), gx.shape)
    if not np.isfinite(values).all():
        raise ValueError("`trend` returned NaN or infinite values in the window.")
    if (values < 0).any():
        where = np.unravel_index(np.argmin(values), values.shape)
        raise ValueError(
            f"`trend` is negative in the window (e.g. {values[where]:.3g} at "
            f"({gx[where]:.3g}, {gy[where]:.3g})); an intensity must be ≥ 0 everywhere — "
            "use e.g. an exponential of a linear function."
        )
    if not values.max() > 0:
        raise ValueError("`trend` is zero everywhere in the window.")
    return values / values.mean(), 1.0 / values.mean()


def poisson_process(
    intensity: float,
    window=UNIT_SQUARE,
    trend: Trend | None = None,
    random_state=None,
) -> np.ndarray:
    """Poisson process of average ``intensity`` (points per unit area) in ``window``.

    Homogeneous by default; with a ``trend``, inhomogeneous by thinning a homogeneous process
    of the peak intensity (Lewis–Shedler).
    """
    window = check_window(window)
    intensity = _positive("intensity", intensity, allow_zero=True)
    rng = _rng(random_state)
    grid, scale = _trend_grid(trend, window)
    peak = intensity * grid.max()
    candidates = _uniform(rng, rng.poisson(peak * _area(window)), window)
    return _thin(rng, candidates, trend, grid, scale)


def thomas_process(
    kappa: float,
    mu: float,
    sigma: float,
    window=UNIT_SQUARE,
    trend: Trend | None = None,
    random_state=None,
) -> np.ndarray:
    """Thomas cluster process: parents Poisson(κ), each with Poisson(μ) offspring ~ N(parent, σ²I).

    Parents are simulated in the window grown by 4σ on every side, so clusters centred outside
    the window still contribute points near its edge; only offspring inside the window are
    kept. The intensity is ``κ μ`` and ``K(r) = πr² + (1 − exp(−r²/4σ²))/κ`` (SPEC). With a
    ``trend``, offspring are thinned as described in the module docstring.
    """
    window = check_window(window)
    kappa = _positive("kappa", kappa)
    mu = _positive("mu", mu, allow_zero=True)
    sigma = _positive("sigma", sigma)
    rng = _rng(random_state)
    grid, scale = _trend_grid(trend, window)
    mu_eff = mu * grid.max()
    x_min, x_max, y_min, y_max = window
    grown = (x_min - 4 * sigma, x_max + 4 * sigma, y_min - 4 * sigma, y_max + 4 * sigma)
    parents = _uniform(rng, rng.poisson(kappa * _area(grown)), grown)
    sizes = rng.poisson(mu_eff, size=len(parents))
    offspring = np.repeat(parents, sizes, axis=0) + rng.normal(0.0, sigma, (sizes.sum(), 2))
    inside = (
        (offspring[:, 0] >= x_min)
        & (offspring[:, 0] <= x_max)
        & (offspring[:, 1] >= y_min)
        & (offspring[:, 1] <= y_max)
    )
    return _thin(rng, offspring[inside], trend, grid, scale)


def strauss_process(
    beta: float,
    gamma: float,
    R: float,
    window=UNIT_SQUARE,
    trend: Trend | None = None,
    n_steps: int = STRAUSS_STEPS,
    max_points: int | None = None,
    random_state=None,
) -> np.ndarray:
    """Strauss process ``λ(u; X) = β(u) γ^{t(u, X)}``, ``t`` = number of points within ``R``.

    Simulated by birth–death–shift Metropolis–Hastings with spatstat's proposal probabilities
    (shift 0.9; birth and death 0.5 each otherwise), started from the empty pattern and run for
    ``n_steps`` steps, all of which count as burn-in: the state after the last step is
    returned. The default of 10⁵ steps gives each of ~50 points thousands of proposed moves;
    the mean count and L function then match spatstat's exact (coupling-from-the-past)
    ``rStrauss`` within Monte Carlo error (``tests/sim/test_point_processes.py``).

    Parameters
    ----------
    beta
        Activity (average β over the window with a ``trend``), ``> 0``.
    gamma
        Interaction parameter in ``[0, 1]``: 1 is Poisson, 0 a hard core. (``γ > 1`` does not
        define a process.)
    R
        Interaction range, in ``(0, ½ of the shorter window side)``.
    window, trend
        See the module docstring.
    n_steps
        Metropolis–Hastings steps.
    max_points
        Cap on the number of points (births beyond it are refused); by default 10× the
        Poisson count ``β |W|`` plus 100. Reaching it raises an error.
    random_state
        Seed or :class:`numpy.random.Generator`.
    """
    from spatialvi.sim._mh_kernel import run_gibbs_chain

    window = check_window(window)
    beta = _positive("beta", beta)
    gamma = float(gamma)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(
            f"`gamma` must lie in [0, 1], got {gamma!r}: γ > 1 (attraction) gives no valid "
            "Strauss process; use a Thomas process for clustering."
        )
    check_interaction_range(R, window)
    check_int("n_steps", n_steps)
    with np.errstate(divide="ignore"):
        log_beta = np.log(beta * trend_grid(trend, window))
        pair = -np.log(gamma)  # +inf for a hard core
    capacity = int(max_points) if max_points is not None else int(10 * beta * _area(window)) + 100
    points, capped = run_gibbs_chain(
        log_beta, window, np.array([pair]), float(R), int(n_steps), capacity, _rng(random_state)
    )
    if capped:
        raise ValueError(
            f"The Strauss chain reached `max_points` = {capacity}; raise it if so many points are "
            "expected."
        )
    return points


def strauss_beta(
    expected_points: float,
    gamma: float,
    R: float,
    window=UNIT_SQUARE,
    trend: Trend | None = None,
    n_patterns: int = 100,
    n_iter: int = 4,
) -> float:
    """The β for which a Strauss process has ``expected_points`` points on average.

    Starts from the Poisson–saddlepoint approximation ``β = λ exp(λ (1 − γ) π R²)`` (Baddeley
    & Nair 2012) with ``λ = expected_points / |W|`` and corrects it by simulation: each of
    ``n_iter`` rounds simulates ``n_patterns`` patterns and rescales β by the ratio of target
    to observed mean count raised to ``1 + λ(1 − γ)πR²`` (the approximation's inverse slope).
    With a ``trend``, β is the average activity (see :func:`strauss_process`) giving that mean
    count. Deterministic (fixed seed) and cached per argument set (pass a module-level
    function as ``trend`` so that the cache recognises it).
    """
    return _strauss_beta_cached(
        float(expected_points),
        float(gamma),
        float(R),
        tuple(check_window(window)),
        trend,
        int(n_patterns),
        int(n_iter),
    )


@lru_cache(maxsize=64)
def _strauss_beta_cached(expected, gamma, R, window, trend, n_patterns, n_iter) -> float:
    lam = expected / _area(window)
    slope = 1.0 + lam * (1.0 - gamma) * np.pi * R**2
    beta = lam * np.exp(lam * (1.0 - gamma) * np.pi * R**2)
    rng = np.random.default_rng(0)
    for _ in range(n_iter):
        mean = np.mean(
            [
                len(strauss_process(beta, gamma, R, window, trend, random_state=rng))
                for _ in range(n_patterns)
            ]
        )
        beta *= (expected / max(mean, 1e-9)) ** slope
    return float(beta)


def _area(window) -> float:
    return (window[1] - window[0]) * (window[3] - window[2])


def _uniform(rng: np.random.Generator, n: int, window) -> np.ndarray:
    x_min, x_max, y_min, y_max = window
    u = rng.random((int(n), 2))
    return np.column_stack([x_min + u[:, 0] * (x_max - x_min), y_min + u[:, 1] * (y_max - y_min)])


def _thin(rng, points: np.ndarray, trend, grid: np.ndarray, scale: float) -> np.ndarray:
    """Keep each point with probability ``f(u)/max(f)`` (normalised trend over its grid maximum)."""
    if trend is None:
        return points
    values = np.asarray(trend(points[:, 0], points[:, 1]), dtype=np.float64) * scale
    return points[rng.random(len(points)) * grid.max() < values]

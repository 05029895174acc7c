"""Maximum pseudo-likelihood fit of a homogeneous Strauss process (spatstat's ``ppm(X ~ 1, Strauss(R))``)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from spatialvi._validation import check_interaction_range, check_pattern, check_window


@dataclass(frozen=True)
class StraussFit:
    """Result of :func:`fit_strauss`; attributes can also be read as keys (``fit['gamma']``)."""

    beta: float
    """Activity β (points per unit area before interaction)."""
    gamma: float
    """Interaction parameter γ (0 for a hard core that the data never violate)."""
    log_pl: float
    """Maximised log pseudo-likelihood."""
    R: float
    """Interaction range."""
    n_points: int
    """Points in the pattern."""
    n_data: int
    """Points in the eroded window (the data term's points)."""
    quadrature: str
    """The quadrature used for the integral over the eroded window."""
    n_grid: int
    """Cells per side of the quadrature grid."""
    iterations: int
    """Newton iterations to convergence."""

    def __getitem__(self, key: str):
        if key not in self.__dataclass_fields__:
            raise KeyError(
                f"{key!r} is not a field of StraussFit ({', '.join(self.__dataclass_fields__)})."
            )
        return getattr(self, key)

    def keys(self):
        return self.__dataclass_fields__.keys()


def fit_strauss(
    points,
    window,
    R: float,
    n_grid: int = 128,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> StraussFit:
    r"""Fit ``λ(u; X) = β γ^{t(u, X)}`` by maximum pseudo-likelihood with border correction.

    Maximises :func:`spatialvi.nn.log_pseudo_likelihood` with ``log λ = θ₀ + θ₁ t``,
    ``β = e^{θ₀}``, ``γ = e^{θ₁}``: the data term is exact over the points at least ``R`` from
    the boundary (``t`` counts their neighbours within ``R`` in the whole pattern), the integral
    is a midpoint rule on ``n_grid × n_grid`` cells over the eroded window (``t`` at each cell
    centre against the whole pattern). The objective is concave, so Newton's method (with step
    halving) converges to the maximum; as nd grows the result converges to the exact MPLE, with
    ``n_grid = 128`` within 5 % of spatstat's ``ppm(X ~ 1, Strauss(R), nd = 128)`` on our fixtures
    (measured 0.1–3.7 %; spatstat's Berman–Turner scheme also counts the data points as
    quadrature points, a different discretisation with the same limit).

    As in spatstat, γ is not constrained: an estimate above 1 (no Strauss process exists) is
    returned with a warning. When no data point has a neighbour within ``R`` the MPLE is
    ``γ = 0`` (a hard core), solved in closed form.

    Parameters
    ----------
    points
        ``n × 2`` points (x, y) in the window (NaN rows are padding).
    window
        ``(x_min, x_max, y_min, y_max)``.
    R
        Interaction range in ``(0, ½ of the shorter window side)``; also the border width.
    n_grid
        Quadrature cells per side of the eroded window.
    max_iter, tol
        Newton iterations and convergence tolerance on the step.
    """
    import torch

    from spatialvi.nn import in_domain, log_pseudo_likelihood, quadrature_grid

    window = check_window(window)
    pts = check_pattern(points, window)
    R = check_interaction_range(R, window)
    quad = quadrature_grid(window, R, n_grid)
    inside = in_domain(pts, quad.domain)
    if not inside.any():
        raise ValueError(
            f"No point lies at least R = {R:g} from the window's boundary ({len(pts)} points): "
            "the border-corrected pseudo-likelihood has no data term; use a smaller R or a "
            "larger pattern."
        )
    tree = cKDTree(pts)
    # neighbours within R (distance ≤ R, as spatstat), excluding the point itself
    t_data = np.array([len(nb) - 1 for nb in tree.query_ball_point(pts[inside], R)], float)
    t_dummy = np.array([len(nb) for nb in tree.query_ball_point(quad.points, R)], float)
    t_data_t = torch.as_tensor(t_data, dtype=torch.float64)
    t_dummy_t = torch.as_tensor(t_dummy, dtype=torch.float64)
    ones = torch.ones_like(t_data_t)

    def objective(theta: torch.Tensor) -> torch.Tensor:
        return log_pseudo_likelihood(
            theta[0] + theta[1] * t_data_t, ones, theta[0] + theta[1] * t_dummy_t, quad.weight
        )

    n_data = int(inside.sum())
    iterations = 0
    if t_data.sum() == 0:
        # θ₁ → −∞: only cells without neighbours contribute; θ₀ solves n_D = e^θ₀ · area(t = 0).
        free = (t_dummy == 0).sum() * quad.weight
        theta = torch.tensor([np.log(n_data / free), -np.inf], dtype=torch.float64)
        log_pl = float(n_data * theta[0] - n_data)
    else:
        theta = torch.tensor(
            [np.log(n_data / (quad.weight * len(t_dummy))), 0.0], dtype=torch.float64
        )
        value = objective(theta)
        for step_number in range(1, max_iter + 1):
            iterations = step_number
            grad = torch.autograd.functional.jacobian(objective, theta)
            hess = torch.autograd.functional.hessian(objective, theta)
            step = -torch.linalg.solve(hess, grad)
            scale = 1.0
            while scale > 1e-8:
                candidate = theta + scale * step
                new = objective(candidate)
                if new >= value - 1e-12:
                    break
                scale /= 2
            theta, value = candidate, new
            if float((scale * step).abs().max()) < tol:
                break
        log_pl = float(value)
    beta, gamma = float(np.exp(theta[0])), float(np.exp(theta[1]))
    if gamma > 1:
        warnings.warn(
            f"The fitted γ = {gamma:.3g} exceeds 1: the pattern is more clustered than Poisson at "
            f"range R = {R:g}, and no Strauss process has γ > 1.",
            stacklevel=2,
        )
    return StraussFit(
        beta=beta,
        gamma=gamma,
        log_pl=log_pl,
        R=R,
        n_points=len(pts),
        n_data=n_data,
        quadrature=quad.describe(),
        n_grid=quad.n_grid,
        iterations=iterations,
    )

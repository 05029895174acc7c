"""The shared Gibbs log pseudo-likelihood and its midpoint quadrature."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spatialvi.nn import eroded_window, in_domain, log_pseudo_likelihood, quadrature_grid


def test_quadrature_covers_the_eroded_window():
    quad = quadrature_grid((0.0, 1.5, -1.0, 1.0), 0.1, n_grid=16)
    assert quad.domain == pytest.approx((0.1, 1.4, -0.9, 0.9))
    assert quad.points.shape == (256, 2)
    assert quad.weight * len(quad.points) == pytest.approx(1.3 * 1.8)
    assert in_domain(quad.points, quad.domain).all()
    # the midpoint rule integrates linear functions exactly
    integral = (quad.weight * (2 * quad.points[:, 0] - quad.points[:, 1] + 3)).sum()
    assert integral == pytest.approx(1.3 * 1.8 * (2 * 0.75 - 0 + 3))
    assert "16 × 16" in quad.describe()


def test_poisson_pseudo_likelihood_is_the_poisson_likelihood():
    """Constant log λ = θ: log PL = n_D θ − e^θ |D|, maximised at e^θ = n_D/|D|."""
    quad = quadrature_grid((0, 1, 0, 1), 0.05, n_grid=8)
    n_d = 37
    theta = torch.tensor(0.3, requires_grad=True)
    data = theta.expand(40)
    weight = torch.cat([torch.ones(n_d), torch.zeros(3)])
    value = log_pseudo_likelihood(data, weight, theta.expand(64), quad.weight)
    assert value.item() == pytest.approx(n_d * 0.3 - np.exp(0.3) * 0.81, rel=1e-6)
    (grad,) = torch.autograd.grad(value, theta)
    assert float(grad) == pytest.approx(n_d - np.exp(0.3) * 0.81, rel=1e-6)


def test_padding_entries_do_not_contribute_even_if_not_finite():
    data = torch.tensor([[0.0, 1.0, float("-inf")]])
    weight = torch.tensor([[1.0, 1.0, 0.0]])
    value = log_pseudo_likelihood(data, weight, torch.zeros(1, 4), 0.25)
    assert torch.allclose(value, torch.tensor([1.0 - 1.0]))


def test_eroding_too_much_is_refused():
    with pytest.raises(ValueError, match="half the shorter"):
        eroded_window((0, 1, 0, 0.4), 0.2)
    with pytest.raises(ValueError, match="n_grid"):
        quadrature_grid((0, 1, 0, 1), 0.1, n_grid=0)

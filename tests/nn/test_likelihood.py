"""The shared NB log-likelihood against scvi-tools' values and autograd's gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scvi.distributions import NegativeBinomial
from scvi.distributions._negative_binomial import log_nb_positive

from spatialvi.nn import nb_log_likelihood


def _inputs(seed: int, n: int = 64, g: int = 30):
    gen = torch.Generator().manual_seed(seed)
    log_mu = torch.randn(n, g, generator=gen, dtype=torch.float64) * 2
    log_theta = torch.randn(g, generator=gen, dtype=torch.float64)
    x = torch.poisson(torch.exp(log_mu), generator=gen)
    return x, log_mu, log_theta


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_values_match_scvi(seed):
    x, log_mu, log_theta = _inputs(seed)
    ref = NegativeBinomial(mu=torch.exp(log_mu), theta=torch.exp(log_theta).expand_as(log_mu))
    ours = nb_log_likelihood(x, log_mu, log_theta)
    np.testing.assert_allclose(ours.numpy(), ref.log_prob(x).numpy(), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_gradients_match_autograd(seed):
    x, log_mu, log_theta = _inputs(seed)
    weights = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed + 10))

    def grads(fn):
        lm = log_mu.clone().requires_grad_(True)
        lt = log_theta.clone().requires_grad_(True)
        (fn(lm, lt) * weights).sum().backward()
        return lm.grad, lt.grad

    ours = grads(lambda lm, lt: nb_log_likelihood(x, lm, lt))
    ref = grads(lambda lm, lt: log_nb_positive(x, torch.exp(lm), torch.exp(lt), eps=0.0))
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-7, atol=1e-9)
    assert torch.autograd.gradcheck(
        lambda lm, lt: nb_log_likelihood(x[:5, :4], lm, lt),
        (log_mu[:5, :4].clone().requires_grad_(True), log_theta[:4].clone().requires_grad_(True)),
    )


def test_without_constant_terms():
    x, log_mu, log_theta = _inputs(3)
    theta = torch.exp(log_theta)
    full = nb_log_likelihood(x, log_mu, log_theta)
    partial = nb_log_likelihood(x, log_mu, log_theta, include_constant=False)
    constant = torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1)
    np.testing.assert_allclose((full - partial).numpy(), constant.numpy(), atol=1e-9)
    # Same gradient in μ (the left-out terms do not depend on μ) and none for θ.
    lm1, lm2 = log_mu.clone().requires_grad_(True), log_mu.clone().requires_grad_(True)
    lt = log_theta.clone().requires_grad_(True)
    nb_log_likelihood(x, lm1, log_theta).sum().backward()
    nb_log_likelihood(x, lm2, lt, include_constant=False).sum().backward()
    np.testing.assert_allclose(lm1.grad.numpy(), lm2.grad.numpy(), atol=1e-12)
    assert lt.grad is None or torch.all(lt.grad == 0)


def test_counts_broadcast_over_a_leading_dimension():
    x, log_mu, log_theta = _inputs(4, n=20, g=6)
    stacked = torch.stack([log_mu, log_mu + 0.5])  # P × n × G against n × G counts
    out = nb_log_likelihood(x, stacked, log_theta)
    np.testing.assert_allclose(
        out[1].numpy(), nb_log_likelihood(x, log_mu + 0.5, log_theta).numpy()
    )

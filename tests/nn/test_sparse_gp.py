"""The sparse GP prior against direct float64 computations of the same formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spatialvi.nn import CauchyKernel, EQKernel, SparseGPPrior, make_kernel


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


def _inputs(n=40, m=9, n_latent=2, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g, dtype=dtype) * 20
    grid = torch.linspace(0, 20, int(math.sqrt(m)), dtype=dtype)
    z = torch.cartesian_prod(grid, grid)
    y = torch.randn(n, n_latent, generator=g, dtype=dtype)
    v = 0.1 + torch.rand(n, n_latent, generator=g, dtype=dtype)
    return x, z, y, v


def _prior(z, formulation, dtype, kernel="cauchy", jitter=1e-6):
    return SparseGPPrior(z, n_latent=2, kernel=kernel, jitter=jitter, formulation=formulation).to(
        dtype
    )


@pytest.mark.parametrize("kernel", ["cauchy", "eq", "matern"])
def test_whitened_float32_matches_direct_float64(kernel):
    x, z, y, v = _inputs()
    direct = _prior(z, "direct", torch.float64, kernel, jitter=1e-4)
    white = _prior(z, "whitened", torch.float32, kernel, jitter=1e-4)
    ref = direct(x, y, v, n_total=400)
    out = white(x.float(), y.float(), v.float(), n_total=400)
    for name in ("mean", "var"):
        np.testing.assert_allclose(
            getattr(out, name).detach().double(), getattr(ref, name).detach(), atol=1e-4, rtol=1e-4
        )
    for name in ("log_marginal", "cross_entropy", "gp_term"):
        a, r = float(getattr(out, name)), float(getattr(ref, name))
        assert abs(a - r) <= 1e-4 * max(1.0, abs(r)), (name, a, r)


def test_whitened_equals_direct_in_float64():
    x, z, y, v = _inputs(n=64, m=16)
    ref = _prior(z, "direct", torch.float64)(x, y, v, n_total=1000)
    out = _prior(z, "whitened", torch.float64)(x, y, v, n_total=1000)
    assert abs(float(out.gp_term - ref.gp_term)) < 1e-6 * max(1, abs(float(ref.gp_term)))
    torch.testing.assert_close(out.mean, ref.mean, atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(out.var, ref.var, atol=1e-8, rtol=1e-6)


def test_inducing_at_data_gives_exact_marginal_likelihood_and_kl():
    x, _, y, v = _inputs(n=25)
    prior = SparseGPPrior(x, n_latent=2, kernel="eq", kernel_scale=20.0, jitter=1e-10).double()
    out = prior(x, y, v, n_total=None)
    k = prior.kernel(x, x).to_dense()
    lml, kl = 0.0, 0.0
    for ell in range(2):
        cov = k + torch.diag(v[:, ell])
        mvn = torch.distributions.MultivariateNormal(torch.zeros(25, dtype=x.dtype), cov)
        lml += float(mvn.log_prob(y[:, ell]))
        # Exact GP posterior of z given pseudo-observations y ~ N(z, V), and its KL to the prior.
        post_cov = k - k @ torch.linalg.solve(cov, k)
        post_mean = k @ torch.linalg.solve(cov, y[:, ell])
        q = torch.distributions.MultivariateNormal(post_mean, post_cov + 1e-12 * torch.eye(25))
        p = torch.distributions.MultivariateNormal(torch.zeros(25, dtype=x.dtype), k)
        kl += float(torch.distributions.kl_divergence(q, p))
    assert abs(float(out.log_marginal) - lml) < 1e-4 * abs(lml)
    assert abs(float(out.gp_term) - kl) < 1e-3 * max(1.0, abs(kl))


def test_full_posterior_in_chunks_matches_single_batch_and_predicts():
    x, z, y, v = _inputs(n=60, m=16)
    prior = _prior(z, "whitened", torch.float64)
    full = prior(x, y, v, n_total=None)
    prior.fit_posterior([(x[:25], y[:25], v[:25]), (x[25:], y[25:], v[25:])])
    mean, var = prior.predict(x)
    torch.testing.assert_close(mean, full.mean, atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(var, full.var, atol=1e-8, rtol=1e-6)
    state = prior.state_dict()
    other = _prior(z, "whitened", torch.float64)
    other.load_state_dict(state)
    torch.testing.assert_close(other.predict(x[:7])[0], mean[:7])


def test_predict_requires_posterior_and_kernels_behave():
    _, z, _, _ = _inputs()
    prior = _prior(z, "whitened", torch.float64)
    with pytest.raises(RuntimeError, match="fit_posterior"):
        prior.predict(z)
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    assert float(CauchyKernel(scale=4.0)(x, x).to_dense()[0, 1]) == pytest.approx(0.5)
    assert float(EQKernel(scale=4.0)(x, x).to_dense()[0, 1]) == pytest.approx(math.exp(-1))
    assert torch.allclose(CauchyKernel(scale=4.0)(x, diag=True), torch.ones(2))
    with pytest.raises(ValueError, match="kernel"):
        make_kernel("rbf2")
    with pytest.raises(ValueError, match="formulation"):
        SparseGPPrior(z, 2, formulation="naive")

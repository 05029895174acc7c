"""The adaptive pair averaging of Ada-GVAE against independent computations."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from spatialvi.nn import aggregate_posteriors, pair_kl, shared_dims


def _posteriors(seed: int, batch: int = 64, d: int = 10):
    g = torch.Generator().manual_seed(seed)
    mu1, mu2 = torch.randn(batch, d, generator=g), torch.randn(batch, d, generator=g)
    var1 = torch.rand(batch, d, generator=g) + 0.05
    var2 = torch.rand(batch, d, generator=g) + 0.05
    return mu1, var1, mu2, var2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pair_kl_is_twice_the_gaussian_kl(seed):
    mu1, var1, mu2, var2 = _posteriors(seed)
    expected = 2 * kl_divergence(Normal(mu1, var1.sqrt()), Normal(mu2, var2.sqrt()))
    torch.testing.assert_close(pair_kl(mu1, var1, mu2, var2), expected, rtol=1e-5, atol=1e-5)


def test_threshold_is_per_example_not_per_batch():
    kl = torch.tensor([[0.0, 1.0, 10.0], [100.0, 101.0, 200.0], [3.0, 3.0, 3.0]])
    # row 0: τ = 5; row 1: τ = 150 (a batch-wide τ of 100 would share all of row 0, none of row 1)
    # row 2: max = min, every dim shared
    expected = torch.tensor([[True, True, False], [True, True, False], [True, True, True]])
    assert torch.equal(shared_dims(kl), expected)


@pytest.mark.parametrize("rule", ["gvae", "mlvae"])
def test_shared_dims_take_the_aggregate_the_others_keep_their_own(rule):
    mu1, var1, mu2, var2 = _posteriors(3)
    m1, v1, m2, v2, shared = aggregate_posteriors(mu1, var1, mu2, var2, rule)
    if rule == "gvae":
        mu_bar, var_bar = (mu1 + mu2) / 2, (var1 + var2) / 2
    else:  # the product of the two Gaussians, renormalised: precision-weighted
        precision = 1 / var1 + 1 / var2
        mu_bar = (mu1 / var1 + mu2 / var2) / precision
        var_bar = 2 / precision
    torch.testing.assert_close(m1[shared], mu_bar[shared])
    torch.testing.assert_close(m2[shared], mu_bar[shared])
    torch.testing.assert_close(v1[shared], var_bar[shared])
    torch.testing.assert_close(v2[shared], var_bar[shared])
    torch.testing.assert_close(m1[~shared], mu1[~shared])
    torch.testing.assert_close(v2[~shared], var2[~shared])
    # the dims kept are those whose KL reaches τ = ½(max + min) of their own row
    kl = pair_kl(mu1, var1, mu2, var2)
    tau = (kl.max(1, keepdim=True).values + kl.min(1, keepdim=True).values) / 2
    assert torch.equal(~shared, kl >= tau)
    assert shared.any(1).all() and (~shared).any(1).all()


def test_a_pair_differing_in_one_dim_shares_all_others():
    mu1 = torch.zeros(1, 5)
    mu2 = torch.tensor([[0.0, 0.0, 3.0, 0.0, 0.01]])
    var = torch.full((1, 5), 0.1)
    *_, shared = aggregate_posteriors(mu1, var, mu2, var, "gvae")
    assert shared.tolist() == [[True, True, False, True, True]]


def test_unknown_rule_is_an_error():
    mu1, var1, mu2, var2 = _posteriors(0, 2, 3)
    with pytest.raises(ValueError, match="aggregation"):
        aggregate_posteriors(mu1, var1, mu2, var2, "mean")

"""The adaptive posterior averaging of Ada-GVAE / Ada-ML-VAE (Locatello et al. 2020).

For a pair of observations that differ in a few factors, the latent dims whose posteriors
differ little between the members are taken to encode the shared factors and are replaced, in
both members, by an aggregate of the two posteriors; the dims that differ keep their own.
Written by hand: no library provides it (and the authors' PyTorch ports compute the threshold
over the whole batch, one of them with the KL's arguments swapped; this follows the paper).
"""

from __future__ import annotations

import torch

#: Aggregation rules: the arithmetic mean of the posteriors (GVAE) or their product (ML-VAE).
AGGREGATIONS = ("gvae", "mlvae")


def pair_kl(
    mu1: torch.Tensor, var1: torch.Tensor, mu2: torch.Tensor, var2: torch.Tensor
) -> torch.Tensor:
    """Per-dim ``2·KL(N(μ₁, σ₁²) ‖ N(μ₂, σ₂²))``:
    ``σ₁²/σ₂² + (μ₂ − μ₁)²/σ₂² − 1 + log σ₂² − log σ₁²`` (the factor 2 does not move τ)."""
    return var1 / var2 + (mu2 - mu1) ** 2 / var2 - 1.0 + torch.log(var2) - torch.log(var1)


def shared_dims(kl: torch.Tensor) -> torch.Tensor:
    """Boolean mask of the dims each pair shares: ``kl < τ = ½(max + min)`` per example (row).

    A row whose KLs are all equal shares every dim (as disentanglement_lib's two-bin
    histogram does).
    """
    high, low = kl.max(dim=-1, keepdim=True).values, kl.min(dim=-1, keepdim=True).values
    tau = 0.5 * (high + low)
    return (kl < tau) | (high == low)


def aggregate_posteriors(
    mu1: torch.Tensor,
    var1: torch.Tensor,
    mu2: torch.Tensor,
    var2: torch.Tensor,
    rule: str = "gvae",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Adaptive averaging of a pair's posteriors.

    Parameters
    ----------
    mu1, var1, mu2, var2
        Means and variances of the two members' diagonal Gaussian posteriors, ``(B, d)``.
    rule
        ``'gvae'``: ``μ̄ = ½(μ₁ + μ₂)``, ``σ̄² = ½(σ₁² + σ₂²)``; ``'mlvae'``:
        ``σ̄² = 2σ₁²σ₂²/(σ₁² + σ₂²)``, ``μ̄ = ½(μ₁/σ₁² + μ₂/σ₂²)·σ̄²``.

    Returns
    -------
    ``(mu1', var1', mu2', var2', shared)``: the members' posteriors with the shared dims
    replaced by the aggregate, and the ``(B, d)`` mask of shared dims.
    """
    shared = shared_dims(pair_kl(mu1, var1, mu2, var2))
    if rule == "gvae":
        var_bar = 0.5 * (var1 + var2)
        mu_bar = 0.5 * (mu1 + mu2)
    elif rule == "mlvae":
        var_bar = 2.0 * var1 * var2 / (var1 + var2)
        mu_bar = 0.5 * (mu1 / var1 + mu2 / var2) * var_bar
    else:
        raise ValueError(f"`aggregation` must be one of {AGGREGATIONS} or None, got {rule!r}.")
    return (
        torch.where(shared, mu_bar, mu1),
        torch.where(shared, var_bar, var1),
        torch.where(shared, mu_bar, mu2),
        torch.where(shared, var_bar, var2),
        shared,
    )

"""spaLDVAE torch module: SpaVAE with a linear, non-negative decoder (Tian et al. 2024).

The NB mean of spot ``i`` is ``μ_i = diag(s_i) · [exp(z_i) · exp(W_D)]`` (the report's
"Variations and expansions"), i.e. ``μ_ig = s_i Σ_k exp(z_ik) exp(W_kg)``: every latent dim adds
a non-negative expression programme ``exp(W_k·)`` to a spot in proportion to ``exp(z_ik)``, so the
loadings of the GP dims say how much of a gene's expression follows the spatial factors.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from spatialvi.module._spavae import SpaVAEModule

#: Upper clamp of the log rate per unit size factor (the same guard as SpaVAE's MLP decoder:
#: ``exp(15)`` ≈ 3.3 million counts at the median library size).
MAX_LOG_RATE = 15.0


class SpaLDVAEModule(SpaVAEModule):
    """SpaVAE module whose decoder is linear and non-negative (spaLDVAE).

    Encoder, GP prior, Gaussian dims, NB likelihood and loss are those of
    :class:`~spatialvi.module.SpaVAEModule`; only :meth:`decode_log_rate` differs::

        log(μ_ig / s_i) = logsumexp_k (z_ik + W_kg)   [+ o_{section(i), g}]

    with ``W`` (``log_weight``, ``n_latent × n_genes``) trainable, built by the decoder hook
    :meth:`_build_decoder` in place of SpaVAE's MLP (no ``decoder`` / ``px_log_mean``
    parameters in the state dict).

    Parameters
    ----------
    *args, **kwargs
        As for :class:`~spatialvi.module.SpaVAEModule`; ``decoder_hidden`` is accepted and
        ignored (the decoder has no hidden layer). ``W`` starts at ``N(0, 0.1²)``; see
        :meth:`initialise_log_weight` for a start at given gene means.

    Notes
    -----
    With several sections (``n_batch > 1``) the section enters the decoder as a per-section,
    per-gene log-scale offset ``o`` (``section_offset``, ``n_batch × n_genes``, initialised at
    0) — the linear counterpart of SpaVAE's one-hot decoder covariate: section ``s`` multiplies
    every programme of gene ``g`` by ``exp(o_sg)``.
    """

    def _build_decoder(self, hidden, dropout_rate, n_cat_list) -> None:
        """The linear decoder: log-weights ``W`` and, with several sections, their offsets."""
        self.log_weight = nn.Parameter(0.1 * torch.randn(self.n_latent, self.n_input))
        if self.n_batch > 1:
            self.section_offset = nn.Parameter(torch.zeros(self.n_batch, self.n_input))

    def _absorb_gp_shift(self, shift: torch.Tensor) -> bool:
        """A shared linear decoder cannot absorb a per-section GP shift: leave the GP dims."""
        return False

    @torch.no_grad()
    def initialise_log_weight(self, log_rate: torch.Tensor) -> None:
        """Start ``W`` so that the NB mean per unit size factor is ``exp(log_rate)``.

        ``W_kg = log_rate_g − log(n_latent) − ½ + ε_kg``: for ``z ~ N(0, 1)``,
        ``E[Σ_k exp(z_k + W_kg)] = exp(log_rate_g)`` (``E[exp z] = exp(½)``). The current
        deviations ``ε`` of each gene's weights from their mean over dims are kept (they break
        the symmetry between dims).

        Parameters
        ----------
        log_rate
            Length-``n_genes`` initial log rates, e.g. the log of each gene's mean count
            divided by the size factor.
        """
        base = torch.as_tensor(log_rate, dtype=self.log_weight.dtype).reshape(-1)
        if base.shape != (self.n_input,):
            raise ValueError(
                f"`log_rate` must have one value per gene ({self.n_input}), got shape "
                f"{tuple(base.shape)}."
            )
        eps = self.log_weight - self.log_weight.mean(0, keepdim=True)
        start = base.to(eps.device) - math.log(self.n_latent) - 0.5
        self.log_weight.copy_(start.unsqueeze(0) + eps)

    @property
    def loadings(self) -> torch.Tensor:
        """The non-negative decoder weights ``exp(W)`` (``n_latent × n_genes``)."""
        return torch.exp(self.log_weight)

    def decode_log_rate(self, z: torch.Tensor, batch_index: torch.Tensor | None = None):
        """Log NB mean per unit size factor, ``logsumexp_k(z_ik + W_kg)`` (``… × genes``).

        Evaluated in log space (never ``exp(z)`` or ``exp(W)`` on their own), so large latent
        values or weights do not overflow. ``z`` is ``b × D`` or ``n_samples × b × D``; with
        several sections the offset of each spot's section (``batch_index``, ``b × 1``) is added.
        The result is clamped above at ``15``, like SpaVAE's decoder output.
        """
        log_rate = torch.logsumexp(z.unsqueeze(-1) + self.log_weight, dim=-2)
        if self.n_batch > 1:
            self._cats(batch_index)  # raises the KeyError naming batch_key when it is missing
            log_rate = log_rate + self.section_offset[batch_index.reshape(-1).long()]
        return log_rate.clamp(max=MAX_LOG_RATE)


__all__ = ["SpaLDVAEModule"]

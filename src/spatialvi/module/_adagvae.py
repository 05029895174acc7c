"""AdaGVAE module: an MLP VAE on image features with the adaptive pair averaging of Ada-GVAE.

Loss per observation (averaged over the minibatch, i.e. ½ Σ over each pair's two members):

    −log p(x | z̃) + β · KL(q̃(z | x) ‖ N(0, I))

- the features ``x`` are min–max scaled with ranges fixed at construction (the training, i.e.
  source, data's) and kept unchanged when the weights are transferred to another dataset;
- ``p(x | z)``: Gaussian with the decoder's mean and a standard deviation fixed at
  ``feature_sd`` (default 0.1 of each feature's source range, so that β keeps one meaning for
  any feature type and width per feature) or learned per feature (``feature_sd=None``),
  summed over the features;
- for a minibatch of pairs (rows ``2i`` and ``2i + 1`` are partners) ``q̃`` is each member's
  posterior with the dims the pair shares replaced by their aggregate
  (:func:`spatialvi.nn.aggregate_posteriors`: τ per pair, GVAE or ML-VAE rule) and ``z̃`` is
  sampled from it; without pairs or with ``aggregation=None`` it is the plain β-VAE.

The representation (:meth:`inference`) is always the member's own posterior: encoding needs the
features alone.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn
from torch.distributions import Normal, kl_divergence

from spatialvi._keys import REGISTRY_KEYS
from spatialvi.nn import AGGREGATIONS, MLP, MinMaxScaling, aggregate_posteriors

#: Floor of a learned per-feature standard deviation (scaled units).
MIN_FEATURE_SD = 0.01


class AdaGVAEModule(BaseModuleClass):
    """Torch module of :class:`~spatialvi.model.AdaGVAE`.

    Parameters
    ----------
    n_input
        Feature width.
    n_latent
        Latent dimension (the paper: 10).
    hidden
        Encoder widths (the decoder mirrors them); the paper's ``(nf, 2nf, 3nf)``, nf = 512.
    aggregation
        ``'gvae'``, ``'mlvae'`` or ``None`` (β-VAE, pairs ignored).
    feature_min, feature_max
        Min–max scaling of the features (length ``n_input``); constant features map to 0.
    feature_sd
        Fixed standard deviation of the Gaussian likelihood on the scaled features (a
        fraction of each feature's source range); ``None`` learns one per feature, starting
        at 0.1 and floored at :data:`MIN_FEATURE_SD` (a constant feature would otherwise drive
        it to 0 and the likelihood to infinity).
    """

    def __init__(
        self,
        n_input: int,
        n_latent: int = 10,
        hidden: tuple[int, ...] = (512, 1024, 1536),
        aggregation: str | None = "gvae",
        feature_min=None,
        feature_max=None,
        feature_sd: float | None = 0.1,
    ):
        super().__init__()
        if aggregation is not None and aggregation not in AGGREGATIONS:
            raise ValueError(
                f"`aggregation` must be one of {AGGREGATIONS} or None (β-VAE), got {aggregation!r}."
            )
        self.n_input, self.n_latent = int(n_input), int(n_latent)
        self.aggregation = aggregation
        leaky = functools.partial(nn.LeakyReLU, 0.2)
        hidden = tuple(int(h) for h in hidden)
        self.encoder = MLP(self.n_input, hidden, activation_fn=leaky, use_batch_norm=False)
        self.z_mean = nn.Linear(hidden[-1], self.n_latent)
        self.z_log_var = nn.Linear(hidden[-1], self.n_latent)
        self.decoder = MLP(self.n_latent, hidden[::-1], activation_fn=leaky, use_batch_norm=False)
        self.x_mean = nn.Linear(hidden[0], self.n_input)
        lo = np.zeros(self.n_input) if feature_min is None else np.asarray(feature_min, float)
        hi = np.ones(self.n_input) if feature_max is None else np.asarray(feature_max, float)
        self.scaling = MinMaxScaling(lo, hi)
        self.fixed_sd = feature_sd
        if feature_sd is None:
            self.log_sd = nn.Parameter(torch.full((self.n_input,), float(np.log(0.1))))
        else:
            if not feature_sd > 0:
                raise ValueError(f"`feature_sd` must be > 0 or None, got {feature_sd!r}.")
            self.register_buffer("log_sd", torch.full((self.n_input,), float(np.log(feature_sd))))

    def feature_sd(self) -> torch.Tensor:
        """Standard deviation of p(x | z) per scaled feature."""
        sd = torch.exp(self.log_sd)
        return sd if self.fixed_sd is not None else sd.clamp_min(MIN_FEATURE_SD)

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Min–max scaled features (the source ranges; constant features map to 0)."""
        return self.scaling(x)

    def _get_inference_input(self, tensors):
        return {"x": tensors[REGISTRY_KEYS.FEATURES_KEY]}

    @auto_move_data
    def inference(self, x, n_samples: int = 1):
        """Encode features into each observation's own posterior q(z | x)."""
        h = self.encoder(self.scale(x))
        qz = Normal(self.z_mean(h), torch.exp(0.5 * self.z_log_var(h).clamp(-12.0, 8.0)))
        z = qz.rsample() if n_samples == 1 else qz.rsample((n_samples,))
        return {"qz": qz, "z": z}

    def _get_generative_input(self, tensors, inference_outputs):
        pairs = tensors.get(REGISTRY_KEYS.PAIR_KEY)
        if pairs is None or self.aggregation is None:
            inference_outputs["qz_train"] = inference_outputs["qz"]
            return {"z": inference_outputs["z"]}
        qz = inference_outputs["qz"]
        ids = pairs.reshape(-1)
        if len(ids) % 2 or not torch.equal(ids[0::2], ids[1::2]):
            raise ValueError(
                "A minibatch of a paired AnnData does not hold whole pairs in consecutive rows; "
                "train through AdaGVAE.train (its PairDataSplitter), or set the AnnData up "
                "without `pair_key` to evaluate the plain β-VAE loss."
            )
        mu, var = qz.loc, qz.scale**2
        mu1, var1, mu2, var2, shared = aggregate_posteriors(
            mu[0::2], var[0::2], mu[1::2], var[1::2], self.aggregation
        )
        mu_t = torch.stack([mu1, mu2], dim=1).reshape(mu.shape)
        var_t = torch.stack([var1, var2], dim=1).reshape(var.shape)
        q_train = Normal(mu_t, var_t.sqrt())
        # the loss reads the aggregated posterior from the inference outputs
        inference_outputs["qz_train"] = q_train
        inference_outputs["shared_dims"] = shared
        return {"z": q_train.rsample()}

    @auto_move_data
    def generative(self, z):
        """Decode z into the mean of p(x | z) (scaled features)."""
        return {"mean": self.x_mean(self.decoder(z))}

    def loss(self, tensors, inference_outputs, generative_outputs, kl_weight: float = 1.0):
        """Negative ELBO of each observation with its pair-aggregated posterior."""
        x = self.scale(tensors[REGISTRY_KEYS.FEATURES_KEY])
        q = inference_outputs.get("qz_train", inference_outputs["qz"])
        rec = -Normal(generative_outputs["mean"], self.feature_sd()).log_prob(x).sum(-1)
        kl = kl_divergence(q, Normal(torch.zeros_like(q.loc), torch.ones_like(q.scale))).sum(-1)
        extra = {"kl_per_obs": kl.mean().detach()}
        shared = inference_outputs.get("shared_dims")
        if shared is not None:
            extra["shared_dims_per_pair"] = shared.float().sum(-1).mean().detach()
        loss = (rec + kl_weight * kl).mean()
        return LossOutput(loss=loss, reconstruction_loss=rec, kl_local=kl, extra_metrics=extra)

"""Distance-preserving VAE module (dp-VAE): VAE loss + λ · distance-preserving loss.

L_dp = mean over masked minibatch pairs (i, j) of (‖z_i − z_j‖ − c‖s_i − s_j‖)² (paper eq. 3/5),
with z the posterior mean and s the standardised coordinates (centred, unit root-mean-square
distance to the centroid). ``c`` is 1 by default; a freely learnable ``c`` has a degenerate
optimum (c → 0 with a collapsing latent), so ``learn_scale=True`` learns ``c = c_min + softplus(r)``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scvi.distributions import NegativeBinomial
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from scvi.nn import Decoder, DecoderSCVI, Encoder
from torch.distributions import Normal, kl_divergence

from spatialvi._keys import REGISTRY_KEYS
from spatialvi.nn import library_size, nb_log_likelihood


class DPVAEModule(BaseModuleClass):
    """Torch module of :class:`~spatialvi.model.DPVAE`.

    Parameters
    ----------
    n_input
        Number of genes.
    n_latent, n_hidden, n_layers, dropout_rate
        Encoder/decoder sizes (scvi-tools :class:`~scvi.nn.Encoder` and decoders).
    likelihood
        ``'nb'`` (raw counts; negative binomial with gene-wise dispersion and the observed
        library size, evaluated by :func:`~spatialvi.nn.nb_log_likelihood`) or ``'normal'``
        (continuous values).
    dp_weight
        λ; ``0`` gives the plain VAE.
    mask
        ``'all'``, ``'knn'`` (the ``n_neighbors`` spatial nearest neighbours of each cell
        *within the minibatch*), ``'cluster'`` (same label in :attr:`cell_labels`) or ``'matrix'`` (a user n × n
        matrix indexed by cell index, set as :attr:`pair_mask`).
    n_neighbors
        Neighbours for ``mask='knn'``.
    dp_loss
        ``'squared'`` (paper) or ``'abs'`` (robust).
    learn_scale, min_scale
        Learn ``c`` with lower bound ``min_scale``; otherwise ``c = 1``.
    max_pairs
        At most this many pairs per minibatch (random subsample beyond).
    spatial_centre, spatial_scale
        Standardisation of the coordinates (stored as buffers, saved with the model).
    """

    def __init__(
        self,
        n_input: int,
        n_latent: int = 10,
        n_hidden: int = 128,
        n_layers: int = 1,
        dropout_rate: float = 0.1,
        likelihood: str = "nb",
        dp_weight: float = 100.0,
        mask: str = "all",
        n_neighbors: int = 10,
        dp_loss: str = "squared",
        learn_scale: bool = False,
        min_scale: float = 0.1,
        max_pairs: int = 8192,
        spatial_centre=None,
        spatial_scale: float = 1.0,
        n_spatial: int = 2,
    ):
        super().__init__()
        self.likelihood = likelihood
        self.dp_weight = float(dp_weight)
        self.mask = mask
        self.n_neighbors = int(n_neighbors)
        self.dp_loss = dp_loss
        self.learn_scale = learn_scale
        self.min_scale = float(min_scale)
        self.max_pairs = int(max_pairs)
        # Training-only, indexed by cell index: scipy sparse n × n (mask='matrix') or labels
        # (mask='cluster'); not part of the state dict, since inference never needs them.
        self.pair_mask = None
        self.cell_labels = None
        centre = np.zeros(n_spatial) if spatial_centre is None else np.asarray(spatial_centre)
        self.register_buffer("spatial_centre", torch.as_tensor(centre, dtype=torch.float32))
        self.register_buffer("spatial_scale", torch.tensor(float(spatial_scale)))
        # softplus(raw) + min_scale = 1 at start.
        raw = float(np.log(np.expm1(max(1.0 - min_scale, 1e-6))))
        if learn_scale:
            self.raw_scale = torch.nn.Parameter(torch.tensor(raw))
        else:
            self.register_buffer("raw_scale", torch.tensor(raw))
        self.encoder = Encoder(
            n_input,
            n_latent,
            n_layers=n_layers,
            n_hidden=n_hidden,
            dropout_rate=dropout_rate,
            return_dist=True,
        )
        if likelihood == "nb":
            self.decoder = DecoderSCVI(n_latent, n_input, n_layers=n_layers, n_hidden=n_hidden)
            self.px_r = torch.nn.Parameter(torch.randn(n_input))
        else:
            self.decoder = Decoder(n_latent, n_input, n_layers=n_layers, n_hidden=n_hidden)

    @property
    def scale(self) -> torch.Tensor:
        """The distance scale ``c`` (1 unless learnt)."""
        if self.learn_scale:
            return self.min_scale + F.softplus(self.raw_scale)
        return torch.ones((), device=self.raw_scale.device)

    def _get_inference_input(self, tensors):
        return {"x": tensors[REGISTRY_KEYS.X_KEY]}

    @auto_move_data
    def inference(self, x, n_samples: int = 1):
        """Encode expression (log1p for counts) into q(z | x)."""
        x_in = torch.log1p(x) if self.likelihood == "nb" else x
        qz, z = self.encoder(x_in)
        library = torch.log(library_size(x).clamp_min(1.0))
        if n_samples > 1:
            z = qz.sample((n_samples,))
        return {"qz": qz, "z": z, "library": library}

    def _get_generative_input(self, tensors, inference_outputs):
        return {"z": inference_outputs["z"], "library": inference_outputs["library"]}

    @auto_move_data
    def generative(self, z, library):
        """Decode z into p(x | z)."""
        if self.likelihood == "nb":
            _, _, px_rate, _ = self.decoder("gene", z, library)
            return {"px": NegativeBinomial(mu=px_rate, theta=torch.exp(self.px_r)), "mu": px_rate}
        mean, var = self.decoder(z)
        return {"px": Normal(mean, var.sqrt() + 1e-4)}

    def _pair_mask(self, tensors, s: torch.Tensor) -> torch.Tensor:
        b = s.shape[0]
        if self.mask == "all":
            return torch.ones(b, b, dtype=torch.bool, device=s.device)
        if self.mask == "knn":
            k = min(self.n_neighbors, b - 1)
            d = torch.cdist(s, s) + torch.eye(b, device=s.device) * 1e30
            idx = d.topk(k, largest=False).indices
            m = torch.zeros(b, b, dtype=torch.bool, device=s.device)
            m.scatter_(1, idx, True)
            return m | m.T
        if self.mask == "cluster":
            idx = tensors[REGISTRY_KEYS.INDICES_KEY].view(-1).long().cpu().numpy()
            labels = torch.as_tensor(self.cell_labels[idx], device=s.device)
            return labels[:, None] == labels[None, :]
        idx = tensors[REGISTRY_KEYS.INDICES_KEY].view(-1).long().cpu().numpy()
        sub = self.pair_mask[idx][:, idx]
        return torch.as_tensor(np.asarray(sub.todense()) != 0, device=s.device)

    def distance_preserving_loss(
        self, z: torch.Tensor, spatial: torch.Tensor, tensors
    ) -> torch.Tensor:
        """L_dp over the masked pairs of one minibatch (subsampled beyond ``max_pairs``)."""
        s = (spatial.float() - self.spatial_centre) / self.spatial_scale
        mask = torch.triu(self._pair_mask(tensors, s), diagonal=1)
        i, j = mask.nonzero(as_tuple=True)
        if len(i) == 0:
            return torch.zeros((), device=z.device)
        if len(i) > self.max_pairs:
            keep = torch.randperm(len(i), device=z.device)[: self.max_pairs]
            i, j = i[keep], j[keep]
        # sqrt(· + eps): the gradient of ‖z_i − z_j‖ is undefined at coincident points.
        dz = ((z[i] - z[j]) ** 2).sum(-1).add(1e-8).sqrt()
        ds = ((s[i] - s[j]) ** 2).sum(-1).sqrt()
        r = dz - self.scale * ds
        return (r**2).mean() if self.dp_loss == "squared" else r.abs().mean()

    def loss(self, tensors, inference_outputs, generative_outputs, kl_weight: float = 1.0):
        """Negative ELBO (per cell, averaged) + λ · L_dp."""
        x = tensors[REGISTRY_KEYS.X_KEY]
        qz = inference_outputs["qz"]
        if self.likelihood == "nb":
            mu = generative_outputs["mu"]
            # log(μ + 1e-8): the decoder's softmax can underflow to 0 (scvi-tools' epsilon).
            rec = -nb_log_likelihood(
                x,
                torch.log(mu + 1e-8),
                self.px_r,
                mu,
                nonzero=tensors.get(REGISTRY_KEYS.X_NONZERO_KEY),
            ).sum(-1)
        else:
            rec = -generative_outputs["px"].log_prob(x).sum(-1)
        kl = kl_divergence(qz, Normal(torch.zeros_like(qz.loc), torch.ones_like(qz.scale))).sum(-1)
        loss = (rec + kl_weight * kl).mean()
        spatial = tensors.get(REGISTRY_KEYS.SPATIAL_KEY)
        extra = {}
        if spatial is not None and (self.dp_weight > 0 or not self.training):
            dp = self.distance_preserving_loss(qz.loc, spatial, tensors)
            loss = loss + self.dp_weight * dp
            extra = {"dp_loss": dp.detach(), "scale": self.scale.detach()}
        return LossOutput(loss=loss, reconstruction_loss=rec, kl_local=kl, extra_metrics=extra)

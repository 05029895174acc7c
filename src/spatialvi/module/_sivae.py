"""SIVAE module: conv VAE on images + a Gibbs point-process head on the latent (SI-VAE).

Loss per image (averaged over the minibatch):

    −log p(x | z) − pl_weight · (P / n̄_D) · log PL(X | z) + β · KL(q(z | x) ‖ N(0, I))

- ``p(x | z)``: Gaussian with the decoder's mean and one standard deviation per channel
  (``noise_sd``: fixed, by default at the images' estimated noise level, or learned), summed
  over the ``P = C·H·W`` pixels;
- ``log PL``: the border-corrected log pseudo-likelihood of the image's points, with the
  head conditioned on the posterior mean of ``z`` (a plug-in for the expectation over q; it
  learns faster than single samples, and the mean is also the representation used), on the window
  eroded by ``erosion`` (:func:`spatialvi.nn.log_pseudo_likelihood`, midpoint grid of
  ``n_grid²`` dummy points), intensity from :class:`spatialvi.nn.GibbsHead`;
- a weak Gaussian prior on ψ's knot values (``psi_penalty``) joins the pseudo-likelihood;
- ``P / n̄_D`` (``n̄_D``: mean number of points in the eroded window over the training images)
  puts the two likelihoods on one scale: per point the pseudo-likelihood weighs as much as the
  image does per pixel, times ``pl_weight``. ``pl_weight`` therefore keeps its meaning across
  image sizes and point densities: 1 gives the point pattern as much weight as the image.
"""

from __future__ import annotations

import numpy as np
import torch
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch.distributions import Normal, kl_divergence

from spatialvi._keys import REGISTRY_KEYS
from spatialvi.nn import (
    ConvDecoder,
    ConvEncoder,
    GibbsHead,
    in_domain,
    log_pseudo_likelihood,
    quadrature_grid,
)


class SIVAEModule(BaseModuleClass):
    """Torch module of :class:`~spatialvi.model.SIVAE`.

    Parameters
    ----------
    image_shape
        ``(C, H, W)``.
    window
        Observation window of the images' points (SPEC image units).
    n_latent
        Latent dimension.
    pl_weight
        Weight of the pseudo-likelihood (``0``: the plain VAE of the same architecture).
    interaction_range
        Range ``L`` of the pair potential.
    erosion
        Border of the eroded window ``D = W ⊖ erosion`` of the pseudo-likelihood.
    mean_points_in_domain
        ``n̄_D`` of the training images (the scale of the pseudo-likelihood).
    image_mean, image_sd
        Standardisation of the encoder's input.
    n_grid
        Dummy points per side of the quadrature over ``D``.
    channels, n_hidden
        Conv encoder/decoder sizes (:class:`~spatialvi.nn.ConvEncoder`).
    head_hidden, n_basis
        Gibbs head sizes (:class:`~spatialvi.nn.GibbsHead`).
    psi_penalty
        Weight ``ρ`` of a Gaussian prior ``−ρ Σ_k ψ_k²`` on ψ's knot values, added to each
        image's log pseudo-likelihood: it settles ψ where the points carry no information on
        it (no pairs at some distance). Small, so that it does not shrink a real interaction:
        with the class as the code, the short-range Strauss ψ of the six-class data is 1.55 /
        1.40 / 1.02 for ρ = 0 / 0.01 / 0.1 (the truth is −log γ = 2.3) and the Poisson ψ
        within ±0.05 for all three.
    noise_sd
        Per-channel standard deviation of the image likelihood, fixed during training; ``None``
        learns it (starting at 0.1). A fixed value keeps the weight of the image, and with it
        the meaning of ``pl_weight``, constant during training: a learned σ grows as the
        latent turns to the points (0.10 → 0.23 in 30 epochs on the six-class data), which
        lowers the image's weight fivefold.
    initial_log_intensity
        Starting value of ``−φ`` (the log of the mean intensity).
    trend_knots
        Knots per axis of φ's trend over the eroded window (:class:`~spatialvi.nn.GibbsHead`;
        default: about one interaction range apart, 3 at the defaults). Outside the eroded
        window φ keeps its boundary values: the pseudo-likelihood says nothing about it there.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        window: tuple[float, float, float, float],
        n_latent: int = 10,
        pl_weight: float = 1.0,
        interaction_range: float = 0.25,
        erosion: float = 0.25,
        mean_points_in_domain: float = 1.0,
        image_mean: float = 0.0,
        image_sd: float = 1.0,
        n_grid: int = 24,
        channels: tuple[int, ...] = (16, 32, 64, 64),
        n_hidden: int = 256,
        head_hidden: int = 32,
        n_basis: int = 8,
        psi_penalty: float = 0.01,
        noise_sd: tuple[float, ...] | None = None,
        initial_log_intensity: float = 0.0,
        trend_knots: int | None = None,
    ):
        super().__init__()
        c, h, w = (int(v) for v in image_shape)
        self.image_shape = (c, h, w)
        self.pl_weight = float(pl_weight)
        self.psi_penalty = float(psi_penalty)
        self.n_pixels = c * h * w
        self.pl_scale = self.n_pixels / max(float(mean_points_in_domain), 1e-6)
        self.encoder = ConvEncoder(c, (h, w), n_latent, tuple(channels), n_hidden)
        self.decoder = ConvDecoder(n_latent, c, (h, w), tuple(channels), n_hidden)
        if noise_sd is None:
            self.log_sigma = torch.nn.Parameter(torch.full((c,), float(np.log(0.1))))
        else:
            sd = torch.tensor(np.broadcast_to(np.asarray(noise_sd, dtype=np.float32), (c,)).copy())
            self.register_buffer("log_sigma", torch.log(sd))
        quad = quadrature_grid(window, erosion, n_grid)
        # φ's trend lives on the eroded window, where the pseudo-likelihood identifies it, and
        # is continued outside it by its boundary values (simulation covers the whole window)
        self.head = GibbsHead(
            n_latent, interaction_range, quad.domain, head_hidden, n_basis, trend_knots
        )
        with torch.no_grad():  # start at the average intensity: φ ≈ −log λ̄
            self.head.phi_net[-1].bias.fill_(-float(initial_log_intensity))
        self.register_buffer("dummy_points", torch.as_tensor(quad.points, dtype=torch.float32))
        self.dummy_weight = float(quad.weight)
        self.domain = tuple(float(v) for v in quad.domain)
        self.register_buffer("image_mean", torch.tensor(float(image_mean)))
        self.register_buffer("image_sd", torch.tensor(float(image_sd)))

    def _get_inference_input(self, tensors):
        return {"x": tensors[REGISTRY_KEYS.IMAGE_KEY]}

    @auto_move_data
    def inference(self, x, n_samples: int = 1):
        """Encode images into q(z | x)."""
        mean, log_var = self.encoder((x - self.image_mean) / self.image_sd)
        qz = Normal(mean, torch.exp(0.5 * log_var.clamp(-12.0, 8.0)))
        z = qz.rsample() if n_samples == 1 else qz.rsample((n_samples,))
        return {"qz": qz, "z": z}

    def _get_generative_input(self, tensors, inference_outputs):
        return {"z": inference_outputs["z"]}

    @auto_move_data
    def generative(self, z):
        """Decode z into the mean image of p(x | z)."""
        return {"mean": self.decoder(z)}

    @staticmethod
    def _present(points: torch.Tensor):
        """Mask of the present points and the points with NaN padding set to 0, both cut to
        the widest pattern (padding is at the end of each row)."""
        mask = ~torch.isnan(points[..., 0])
        width = int(mask.sum(-1).max()) if mask.numel() else 0
        return mask[:, :width], torch.nan_to_num(points[:, :width], nan=0.0)

    @torch.no_grad()
    def derived_tensors(self, tensors: dict) -> dict:
        """Pair features of every image's points, at its points and at the quadrature points.

        They depend on the point sets alone, so the in-memory loader computes them once
        (:class:`~spatialvi.data.InMemoryDataSplitter`, ``derive``) and every step reads them
        instead of recomputing all pair distances (the larger part of a step's cost). Memory:
        ``4 · n_basis · (n_grid² + K_max)`` bytes per image (``K_max``: the most points of an
        image; 21 kB for the six-class data at the defaults). Pass
        ``datasplitter_kwargs={"derive": None}`` to ``train`` to compute them at every step
        instead. Images are processed in chunks sized to keep the pair distances of a chunk
        under about 256 MB.
        """
        points = tensors.get(REGISTRY_KEYS.POINTS_KEY)
        if points is None:
            return {}
        dummy = self.dummy_points.to(points.device)
        n, k_max = points.shape[:2]
        # ~10 float32 temporaries per (query, point) pair of a chunk
        per_image = 40 * max(k_max, 1) * (k_max + dummy.shape[0])
        chunk = int(min(256, max(1, 2**28 // per_image)))
        n_basis = self.head.basis_centres.shape[0]
        data = points.new_zeros(n, k_max, n_basis)
        at_dummy = points.new_zeros(n, dummy.shape[0], n_basis)
        for start in range(0, n, chunk):
            mask, pts = self._present(points[start : start + chunk])
            stop, width = start + pts.shape[0], pts.shape[1]
            data[start:stop, :width] = self.head.pair_features(pts, pts, mask, exclude_self=True)
            at_dummy[start:stop] = self.head.pair_features(dummy, pts, mask)
        return {
            REGISTRY_KEYS.PAIR_FEATURES_DATA_KEY: data,
            REGISTRY_KEYS.PAIR_FEATURES_DUMMY_KEY: at_dummy,
        }

    def log_pseudo_likelihood(
        self,
        z: torch.Tensor,
        points: torch.Tensor,
        data_features: torch.Tensor | None = None,
        dummy_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Log pseudo-likelihood of each image's points (``(B, K, 2)``, NaN-padded): ``(B,)``.

        ``data_features``, ``dummy_features``: the points' pair features from
        :meth:`derived_tensors`, when the loader carries them.
        """
        # the columns no image of this batch uses are dropped
        mask, pts = self._present(points)
        if data_features is not None:
            data_features = data_features[:, : pts.shape[1]]
        log_data = self.head.log_intensity(
            z, pts, pts, mask, exclude_self=True, features=data_features
        )
        data_weight = (mask & in_domain(pts, self.domain)).to(log_data.dtype)
        log_dummy = self.head.log_intensity(
            z, self.dummy_points, pts, mask, features=dummy_features
        )
        return log_pseudo_likelihood(log_data, data_weight, log_dummy, self.dummy_weight)

    def loss(self, tensors, inference_outputs, generative_outputs, kl_weight: float = 1.0):
        """Negative ELBO with the scaled pseudo-likelihood (module docstring)."""
        x = tensors[REGISTRY_KEYS.IMAGE_KEY]
        qz = inference_outputs["qz"]
        sigma = torch.exp(self.log_sigma)[None, :, None, None]
        rec = -Normal(generative_outputs["mean"], sigma).log_prob(x).flatten(1).sum(-1)
        kl = kl_divergence(qz, Normal(torch.zeros_like(qz.loc), torch.ones_like(qz.scale))).sum(-1)
        loss = rec + kl_weight * kl
        extra = {
            "kl_per_obs": kl.mean().detach(),
            "rec_per_pixel": rec.mean().detach() / self.n_pixels,
        }
        points = tensors.get(REGISTRY_KEYS.POINTS_KEY)
        if points is not None and (self.pl_weight > 0 or not self.training):
            pl = self.log_pseudo_likelihood(
                qz.loc,
                points,
                tensors.get(REGISTRY_KEYS.PAIR_FEATURES_DATA_KEY),
                tensors.get(REGISTRY_KEYS.PAIR_FEATURES_DUMMY_KEY),
            )
            # Gaussian prior on ψ's knot values (``psi_penalty``)
            ridge = self.psi_penalty * (self.head.psi_net(qz.loc) ** 2).sum(-1)
            loss = loss - self.pl_weight * self.pl_scale * (pl - ridge)
            extra["log_pl_per_point"] = pl.mean().detach() / (self.n_pixels / self.pl_scale)
        return LossOutput(
            loss=loss.mean(), reconstruction_loss=rec, kl_local=kl, extra_metrics=extra
        )

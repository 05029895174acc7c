"""SpaVAE torch module: MLP encoder/decoder, GP prior on the first latent dims, NB likelihood.

Tian et al. 2024 (Nat Methods), "Dependency-aware deep generative models for multitasking
analysis of spatial omics data"; equation numbers refer to the report in
``papers/spavae_tian2024_report.txt``.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from scvi.distributions import NegativeBinomial
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from scvi.nn import FCLayers
from torch import nn
from torch.distributions import Normal

from spatialvi._keys import REGISTRY_KEYS
from spatialvi.nn._sparse_gp import SparseGPPrior


class SpaVAEModule(BaseModuleClass):
    """Variational autoencoder with a sparse GP prior over spot coordinates (spaVAE).

    Latent dims ``0 .. n_gp−1`` have a GP prior over coordinates (Jazbec et al. SVGP-VAE, the
    encoder outputs acting as pseudo-observations); dims ``n_gp .. n_gp+n_gauss−1`` a standard
    normal prior. Counts follow ``NB(size_factor · exp(decoder(z)), θ_g)``.

    Parameters
    ----------
    n_input
        Number of genes.
    inducing_points
        ``M × d`` inducing locations in rescaled coordinates.
    coord_offset, coord_scale
        Rescaling of raw coordinates: ``(coords − offset) · scale`` (length-``d`` offset, scalar
        or length-``d`` scale).
    input_mean, input_std
        Per-gene mean and standard deviation of the log1p-normalised training counts, used to
        standardise the encoder input.
    median_library
        Median total counts of the training spots; size factor = library / median.
    n_gp, n_gauss
        Numbers of GP and Gaussian latent dims.
    kernel, kernel_scale, learn_inducing, jitter, formulation
        Passed to :class:`~spatialvi.nn.SparseGPPrior`.
    encoder_hidden, decoder_hidden
        Hidden layer widths (defaults 128-64 and 128), ELU and batch norm.
    dropout_rate
        Dropout in the hidden layers.
    noise
        Standard deviation γ of the denoising noise added to the encoder input; ``0`` disables
        the denoising regulariser ``Σ_i ‖m_i − m'_i‖²``.
    """

    def __init__(
        self,
        n_input: int,
        inducing_points: torch.Tensor,
        coord_offset: torch.Tensor,
        coord_scale: torch.Tensor,
        input_mean: torch.Tensor,
        input_std: torch.Tensor,
        median_library: float,
        n_gp: int = 2,
        n_gauss: int = 8,
        kernel="cauchy",
        kernel_scale: float = 20.0,
        learn_inducing: bool = False,
        jitter: float = 1e-4,
        formulation: str = "whitened",
        encoder_hidden: tuple[int, ...] = (128, 64),
        decoder_hidden: tuple[int, ...] = (128,),
        dropout_rate: float = 0.0,
        noise: float = 0.0,
    ):
        super().__init__()
        if n_gp < 1:
            raise ValueError(f"`n_gp` must be at least 1, got {n_gp}.")
        if n_gauss < 0:
            raise ValueError(f"`n_gauss` must be non-negative, got {n_gauss}.")
        self.n_input, self.n_gp, self.n_gauss = int(n_input), int(n_gp), int(n_gauss)
        self.n_latent = self.n_gp + self.n_gauss
        self.noise = float(noise)
        self.register_buffer("coord_offset", torch.as_tensor(coord_offset, dtype=torch.float32))
        self.register_buffer("coord_scale", torch.as_tensor(coord_scale, dtype=torch.float32))
        self.register_buffer("input_mean", torch.as_tensor(input_mean, dtype=torch.float32))
        self.register_buffer("input_std", torch.as_tensor(input_std, dtype=torch.float32))
        self.register_buffer("median_library", torch.tensor(float(median_library)))
        # N in the N/b scaling of minibatch GP sums; set to the training-set size before fitting.
        self.register_buffer("n_total", torch.tensor(0.0))
        # When set, inference takes the GP dims from the stored full-data posterior.
        self.register_buffer("use_stored_posterior", torch.zeros((), dtype=torch.bool))

        self.gp = SparseGPPrior(
            inducing_points,
            n_latent=self.n_gp,
            kernel=kernel,
            kernel_scale=kernel_scale,
            learn_inducing=learn_inducing,
            jitter=jitter,
            formulation=formulation,
        )
        self.encoder = _hidden_layers(n_input, encoder_hidden, dropout_rate)
        self.z_mean = nn.Linear(encoder_hidden[-1], self.n_latent)
        self.z_logvar = nn.Linear(encoder_hidden[-1], self.n_latent)
        self.decoder = _hidden_layers(self.n_latent, decoder_hidden, dropout_rate)
        self.px_log_mean = nn.Linear(decoder_hidden[-1], n_input)
        # Per-gene NB inverse dispersion θ_g = exp(px_log_theta).
        self.px_log_theta = nn.Parameter(torch.zeros(n_input))

    # -- helpers ---------------------------------------------------------------------------------
    def rescale_coordinates(self, coords: torch.Tensor) -> torch.Tensor:
        """Map raw coordinates to the GP's frame (``[0, loc_range]`` for the training data)."""
        return (coords.float() - self.coord_offset) * self.coord_scale

    def size_factor_from_counts(self, x: torch.Tensor) -> torch.Tensor:
        """Library size / training median, floored at 1 count so all-zero spots stay finite."""
        return x.sum(-1, keepdim=True).clamp_min(1.0) / self.median_library

    def encode(self, x: torch.Tensor, size_factor: torch.Tensor, noise: float = 0.0):
        """Encoder means and variances (``b × D``) of standardised log1p-normalised counts."""
        h = torch.log1p(x / size_factor)
        h = (h - self.input_mean) / self.input_std
        if noise > 0:
            h = h + noise * torch.randn_like(h)
        h = self.encoder(h)
        mean = self.z_mean(h)
        # Clamp the log-variance: φ̃² enters the GP as 1/V, so it must stay positive and finite.
        var = torch.exp(self.z_logvar(h).clamp(-15.0, 15.0))
        return mean, var

    # -- BaseModuleClass ---------------------------------------------------------------------------
    def _get_inference_input(self, tensors, **kwargs):
        return {
            "x": tensors[REGISTRY_KEYS.X_KEY],
            "coords": tensors.get(REGISTRY_KEYS.SPATIAL_KEY),
            "size_factor": tensors.get(REGISTRY_KEYS.SIZE_FACTOR_KEY),
        }

    @auto_move_data
    def inference(self, x, coords=None, size_factor=None, n_samples: int = 1):
        """Encode, condition the GP on the batch (or the stored posterior) and sample ``z``."""
        if size_factor is None:
            size_factor = self.size_factor_from_counts(x)
        size_factor = size_factor.reshape(-1, 1)
        qz_m, qz_v = self.encode(x, size_factor)
        g = self.n_gp
        y, v = qz_m[:, :g], qz_v[:, :g]
        out = {"qz_m": qz_m, "qz_v": qz_v, "size_factor": size_factor, "gp": None}
        if coords is None:
            raise KeyError(
                "SpaVAE needs coordinates in every minibatch; register them with "
                "`SpaVAE.setup_anndata(adata, spatial_key=...)`."
            )
        xs = self.rescale_coordinates(coords)
        n_total = float(self.n_total) if float(self.n_total) > 0 else None
        stored = bool(self.use_stored_posterior) and bool(self.gp.has_posterior)
        if self.training or not stored:
            gp = self.gp(xs, y, v, n_total=n_total)
            out["gp"] = gp
            gp_mean, gp_var = gp.mean, gp.var
        else:
            gp_mean, gp_var = self.gp.predict(xs)
        if self.training and self.noise > 0:
            y_n, v_n = self.encode(x, size_factor, noise=self.noise)
            out["gp_mean_noisy"] = self.gp(xs, y_n[:, :g], v_n[:, :g], n_total=n_total).mean
            out["gp_mean_clean"] = gp_mean
        mean = torch.cat([gp_mean, qz_m[:, g:]], dim=-1)
        var = torch.cat([gp_var, qz_v[:, g:]], dim=-1)
        qz = Normal(mean, var.sqrt())
        z = qz.rsample() if n_samples == 1 else qz.rsample((n_samples,))
        out.update({"qz": qz, "z": z})
        return out

    def _get_generative_input(self, tensors, inference_outputs, **kwargs):
        return {"z": inference_outputs["z"], "size_factor": inference_outputs["size_factor"]}

    @auto_move_data
    def generative(self, z, size_factor, transform_batch=None):
        """Decode ``z`` to the NB mean ``size_factor · exp(·)`` with per-gene dispersion."""
        log_rate = self.px_log_mean(self.decoder(z)).clamp(max=15.0)
        mu = size_factor * torch.exp(log_rate)
        theta = torch.exp(self.px_log_theta).expand_as(mu)
        scale = torch.softmax(log_rate, dim=-1)
        return {"px": NegativeBinomial(mu=mu, theta=theta, scale=scale)}

    def loss(
        self, tensors, inference_outputs, generative_outputs, kl_weight: float = 1.0, n_obs=None
    ):
        """NB negative log-likelihood + β · (GP term + Gaussian KL), per spot (eqs. 2, 4, 10).

        ``extra_metrics['kl_per_obs']`` is the KL per spot the β controller steers.
        """
        x = tensors[REGISTRY_KEYS.X_KEY]
        px = generative_outputs["px"]
        rec = -px.log_prob(x).sum(-1)  # eq. 2, per spot
        b = x.shape[0]
        qz_m, qz_v = inference_outputs["qz_m"], inference_outputs["qz_v"]
        g = self.n_gp
        gauss_kl = 0.5 * (qz_m[:, g:] ** 2 + qz_v[:, g:] - torch.log(qz_v[:, g:]) - 1).sum(
            -1
        )  # eq. 10
        gp = inference_outputs["gp"]
        if gp is None:
            gp = self.gp(
                self.rescale_coordinates(tensors[REGISTRY_KEYS.SPATIAL_KEY]),
                qz_m[:, :g],
                qz_v[:, :g],
                n_total=float(self.n_total) if float(self.n_total) > 0 else None,
            )
        # The GP term is a minibatch sum (eq. 4); spread it evenly over the spots of the batch.
        gp_per_obs = gp.gp_term / b
        kl_local = gauss_kl + gp_per_obs
        loss = rec.mean() + kl_weight * kl_local.mean()
        extra = {
            "kl_per_obs": kl_local.mean().detach(),
            "gp_kl_per_obs": gp_per_obs.detach(),
        }
        if "gp_mean_noisy" in inference_outputs:
            # Denoising regulariser: Σ_i ‖m_i − m'_i‖² over the GP dims.
            noise_loss = (
                (inference_outputs["gp_mean_clean"] - inference_outputs["gp_mean_noisy"]) ** 2
            ).sum()
            loss = loss + noise_loss / b
            extra["noise_loss"] = noise_loss.detach() / b
        return LossOutput(
            loss=loss,
            reconstruction_loss=rec,
            kl_local=kl_local,
            extra_metrics=extra,
            n_obs_minibatch=b,
        )

    @torch.inference_mode()
    def sample(self, tensors, n_samples: int = 1):
        """Sample counts from the generative model given ``tensors``."""
        _, gen = self.forward(
            tensors, inference_kwargs={"n_samples": n_samples}, compute_loss=False
        )
        return gen["px"].sample()


def _hidden_layers(n_in: int, hidden, dropout_rate: float) -> nn.Sequential:
    """Stack of scvi-tools ``FCLayers`` blocks (Linear → BatchNorm → ELU → Dropout), one per width."""
    widths = [n_in, *hidden]
    if len(widths) < 2:
        raise ValueError("Hidden layer widths must name at least one layer, e.g. (128,).")
    return nn.Sequential(
        *(
            FCLayers(a, b, n_layers=1, dropout_rate=dropout_rate, activation_fn=nn.ELU)
            for a, b in pairwise(widths)
        )
    )

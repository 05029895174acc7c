"""SpaVAE torch module: MLP encoder/decoder, GP prior on the first latent dims, NB likelihood.

Tian et al. 2024 (Nat Methods), "Dependency-aware deep generative models for multitasking
analysis of spatial omics data"; equation numbers refer to the report in
``papers/spavae_tian2024_report.txt``.
"""

from __future__ import annotations

import copy

import torch
from scvi.distributions import NegativeBinomial
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn
from torch.distributions import Normal

from spatialvi._keys import REGISTRY_KEYS
from spatialvi.nn import MLP, SparseGPPrior, library_size, nb_log_likelihood, size_factor


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
        ``M × d`` inducing locations in rescaled coordinates, or one such tensor per section
        (a list of ``n_batch`` tensors; sections may have different ``M``).
    coord_offset, coord_scale
        Rescaling of raw coordinates: ``(coords − offset) · scale``; ``d`` or ``n_batch × d``
        (one row per section).
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
    n_batch
        Number of sections (multi-slice integration). With more than one, the batch enters the
        encoder and decoder one-hot (every hidden layer) and each section has its own GP:
        zero covariance across sections, its own coordinate frame, kernel scale, inducing
        points and ``N/b`` scaling (``N``, ``b``: the section's training spots and its spots
        in the minibatch).
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
        n_batch: int = 1,
    ):
        super().__init__()
        if n_gp < 1:
            raise ValueError(f"`n_gp` must be at least 1, got {n_gp}.")
        if n_gauss < 0:
            raise ValueError(f"`n_gauss` must be non-negative, got {n_gauss}.")
        self.n_input, self.n_gp, self.n_gauss = int(n_input), int(n_gp), int(n_gauss)
        self.n_latent = self.n_gp + self.n_gauss
        self.n_batch = int(n_batch)
        self.noise = float(noise)
        if isinstance(inducing_points, torch.Tensor):
            inducing_points = [inducing_points] * self.n_batch
        if len(inducing_points) != self.n_batch:
            raise ValueError(
                f"Got {len(inducing_points)} sets of inducing points for {self.n_batch} sections."
            )
        d = inducing_points[0].shape[-1]
        self.register_buffer("coord_offset", _per_section(coord_offset, self.n_batch, d))
        self.register_buffer("coord_scale", _per_section(coord_scale, self.n_batch, d))
        self.register_buffer("input_mean", torch.as_tensor(input_mean, dtype=torch.float32))
        self.register_buffer("input_std", torch.as_tensor(input_std, dtype=torch.float32))
        self.register_buffer("median_library", torch.tensor(float(median_library)))
        # N in the N/b scaling of minibatch GP sums, per section; set to the number of training
        # spots of each section before fitting.
        self.register_buffer("n_total", torch.zeros(self.n_batch))
        # When set, inference takes the GP dims from the stored full-data posterior.
        self.register_buffer("use_stored_posterior", torch.zeros((), dtype=torch.bool))
        # Per-section translation subtracted from the GP dims (see `centre_gp_latent`).
        self.register_buffer("gp_offset", torch.zeros(self.n_batch, self.n_gp))

        self.gps = nn.ModuleList(
            SparseGPPrior(
                z,
                n_latent=self.n_gp,
                kernel=copy.deepcopy(kernel),
                kernel_scale=kernel_scale,
                learn_inducing=learn_inducing,
                jitter=jitter,
                formulation=formulation,
            )
            for z in inducing_points
        )
        cats = [self.n_batch] if self.n_batch > 1 else []
        self.encoder = MLP(n_input, encoder_hidden, dropout_rate, cats)
        self.z_mean = nn.Linear(encoder_hidden[-1], self.n_latent)
        self.z_logvar = nn.Linear(encoder_hidden[-1], self.n_latent)
        self._build_decoder(decoder_hidden, dropout_rate, cats)
        # Per-gene NB inverse dispersion θ_g = exp(px_log_theta).
        self.px_log_theta = nn.Parameter(torch.zeros(n_input))

    def _build_decoder(self, hidden: tuple[int, ...], dropout_rate: float, n_cat_list) -> None:
        """Decoder hook: an MLP on ``z`` (and the section one-hot) to the log rate per gene.

        Subclasses with another decoder (SpaLDVAE's linear one) override this together with
        :meth:`decode_log_rate` and :meth:`_absorb_gp_shift`.
        """
        self.decoder = MLP(self.n_latent, hidden, dropout_rate, n_cat_list)
        self.px_log_mean = nn.Linear(hidden[-1], self.n_input)

    @property
    def gp(self) -> SparseGPPrior:
        """The GP prior of a single-section model (``gps[0]``)."""
        if self.n_batch != 1:
            raise AttributeError(
                f"This model has {self.n_batch} sections, one GP each: use `module.gps[s]`."
            )
        return self.gps[0]

    # -- helpers ---------------------------------------------------------------------------------
    def rescale_coordinates(
        self, coords: torch.Tensor, batch_index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Map raw coordinates to each section's GP frame (``[0, loc_range]`` when training)."""
        if self.n_batch == 1 or batch_index is None:
            return (coords.float() - self.coord_offset[0]) * self.coord_scale[0]
        s = batch_index.reshape(-1).long()
        return (coords.float() - self.coord_offset[s]) * self.coord_scale[s]

    def size_factor_from_counts(self, x: torch.Tensor) -> torch.Tensor:
        """Library size / training median, floored at 1 count so all-zero spots stay finite."""
        return size_factor(library_size(x), self.median_library)

    def _cats(self, batch_index: torch.Tensor | None) -> tuple:
        if self.n_batch == 1:
            return ()
        if batch_index is None:
            raise KeyError(
                f"This SpaVAE integrates {self.n_batch} sections and needs the section of every "
                "spot: register it with `SpaVAE.setup_anndata(adata, batch_key=...)`."
            )
        return (batch_index.reshape(-1, 1),)

    def encode(
        self,
        x: torch.Tensor,
        size_factor: torch.Tensor,
        batch_index: torch.Tensor | None = None,
        noise: float = 0.0,
    ):
        """Encoder means and variances (``b × D``) of standardised log1p-normalised counts."""
        h = torch.log1p(x / size_factor)
        h = (h - self.input_mean) / self.input_std
        if noise > 0:
            h = h + noise * torch.randn_like(h)
        h = self.encoder(h, *self._cats(batch_index))
        mean = self.z_mean(h)
        # Clamp the log-variance: φ̃² enters the GP as 1/V, so it must stay positive and finite.
        var = torch.exp(self.z_logvar(h).clamp(-15.0, 15.0))
        return mean, var

    def decode_log_rate(self, z: torch.Tensor, batch_index: torch.Tensor | None = None):
        """Decoder output: log NB mean per unit size factor (``… × genes``)."""
        if z.ndim == 3:  # n_samples × b × D
            flat = self.decode_log_rate(z.reshape(-1, z.shape[-1]), _repeat(batch_index, z))
            return flat.reshape(*z.shape[:2], -1)
        h = self.decoder(z, *self._cats(batch_index))
        return self.px_log_mean(h).clamp(max=15.0)

    def _sections(self, batch_index: torch.Tensor | None, b: int):
        """``(section, index or None)`` for the sections present in a minibatch."""
        if self.n_batch == 1 or batch_index is None:
            return [(0, None)]
        s = batch_index.reshape(-1).long()
        return [(int(k), torch.nonzero(s == k).squeeze(-1)) for k in torch.unique(s).tolist()]

    def gp_minibatch(self, xs, y, v, batch_index=None):
        """Minibatch GP posterior per section: mean, variance (``b × n_gp``) and GP term (sum).

        Each section's GP is conditioned on that section's spots of the minibatch, with its
        own ``N/b`` scaling; the GP terms of the sections add up (independent GPs).
        """
        parts = self._sections(batch_index, xs.shape[0])
        if len(parts) == 1 and parts[0][1] is None:
            n = float(self.n_total[0])
            out = self.gps[0](xs, y, v, n_total=n if n > 0 else None)
            return out.mean - self.gp_offset[0], out.var, out.gp_term
        mean = torch.empty_like(y)
        var = torch.empty_like(v)
        term = y.new_zeros(())
        for k, idx in parts:
            n = float(self.n_total[k])
            out = self.gps[k](xs[idx], y[idx], v[idx], n_total=n if n > 0 else None)
            mean[idx], var[idx] = out.mean - self.gp_offset[k], out.var
            term = term + out.gp_term
        return mean, var, term

    def gp_predict(self, xs: torch.Tensor, batch_index: torch.Tensor | None = None):
        """GP posterior mean and variance at rescaled coordinates under the stored posteriors."""
        parts = self._sections(batch_index, xs.shape[0])
        if len(parts) == 1 and parts[0][1] is None:
            mean, var = self.gps[0].predict(xs)
            return mean - self.gp_offset[0], var
        mean = xs.new_empty(xs.shape[0], self.n_gp)
        var = torch.empty_like(mean)
        for k, idx in parts:
            mean[idx], var[idx] = self.gps[k].predict(xs[idx])
            mean[idx] -= self.gp_offset[k]
        return mean, var

    @torch.no_grad()
    def centre_gp_latent(self, shift: torch.Tensor) -> bool:
        """Translate the GP dims of section ``s`` by ``−shift[s]`` without changing the model.

        With several sections, each section's GP latent is identified only up to a translation:
        the decoder's one-hot section covariate absorbs it exactly (a per-section bias of the
        first decoder layer) and an independent GP prior with a long-range kernel barely
        penalises a constant. Trained sections therefore sit at arbitrary, different offsets in
        the GP dims, which keeps them apart in the joint latent. This fixes the gauge: the shift
        is added to ``gp_offset`` (subtracted from every GP mean) and ``W_gp · shift[s]`` to the
        section-``s`` column of the first decoder layer, so every decoded expression is
        unchanged.

        Parameters
        ----------
        shift
            ``n_batch × n_gp`` translation, e.g. each section's mean GP latent.

        Returns
        -------
        Whether the shift was applied (``False`` for a single section or a decoder that cannot
        absorb it, see :meth:`_absorb_gp_shift`).
        """
        if self.n_batch == 1 or not self._absorb_gp_shift(shift):
            return False
        self.gp_offset += shift.to(self.gp_offset)
        return True

    def _absorb_gp_shift(self, shift: torch.Tensor) -> bool:
        """Decoder hook: add ``W_gp · shift[s]`` to the section-``s`` one-hot column."""
        linear = self.decoder.first_linear
        shift = shift.to(linear.weight)
        w_gp = linear.weight[:, : self.n_gp]
        linear.weight[:, self.n_latent : self.n_latent + self.n_batch] += w_gp @ shift.T
        return True

    @property
    def has_posterior(self) -> bool:
        """Whether every section's GP holds a stored full-data posterior."""
        return all(bool(gp.has_posterior) for gp in self.gps)

    # -- BaseModuleClass ---------------------------------------------------------------------------
    def _get_inference_input(self, tensors, **kwargs):
        return {
            "x": tensors[REGISTRY_KEYS.X_KEY],
            "coords": tensors.get(REGISTRY_KEYS.SPATIAL_KEY),
            "batch_index": tensors.get(REGISTRY_KEYS.BATCH_KEY),
            "size_factor": tensors.get(REGISTRY_KEYS.SIZE_FACTOR_KEY),
        }

    @auto_move_data
    def inference(self, x, coords=None, batch_index=None, size_factor=None, n_samples: int = 1):
        """Encode, condition the GP on the batch (or the stored posterior) and sample ``z``."""
        if size_factor is None:
            size_factor = self.size_factor_from_counts(x)
        size_factor = size_factor.reshape(-1, 1)
        qz_m, qz_v = self.encode(x, size_factor, batch_index)
        g = self.n_gp
        y, v = qz_m[:, :g], qz_v[:, :g]
        out = {"qz_m": qz_m, "qz_v": qz_v, "size_factor": size_factor, "gp_term": None}
        if coords is None:
            raise KeyError(
                "SpaVAE needs coordinates in every minibatch; register them with "
                "`SpaVAE.setup_anndata(adata, spatial_key=...)`."
            )
        xs = self.rescale_coordinates(coords, batch_index)
        stored = bool(self.use_stored_posterior) and self.has_posterior
        if self.training or not stored:
            gp_mean, gp_var, out["gp_term"] = self.gp_minibatch(xs, y, v, batch_index)
        else:
            gp_mean, gp_var = self.gp_predict(xs, batch_index)
        if self.training and self.noise > 0:
            y_n, v_n = self.encode(x, size_factor, batch_index, noise=self.noise)
            out["gp_mean_noisy"] = self.gp_minibatch(xs, y_n[:, :g], v_n[:, :g], batch_index)[0]
            out["gp_mean_clean"] = gp_mean
        mean = torch.cat([gp_mean, qz_m[:, g:]], dim=-1)
        var = torch.cat([gp_var, qz_v[:, g:]], dim=-1)
        qz = Normal(mean, var.sqrt())
        z = qz.rsample() if n_samples == 1 else qz.rsample((n_samples,))
        out.update({"qz": qz, "z": z})
        return out

    def _get_generative_input(self, tensors, inference_outputs, **kwargs):
        return {
            "z": inference_outputs["z"],
            "size_factor": inference_outputs["size_factor"],
            "batch_index": tensors.get(REGISTRY_KEYS.BATCH_KEY),
        }

    @auto_move_data
    def generative(self, z, size_factor, batch_index=None, transform_batch=None):
        """Decode ``z`` to the NB mean ``size_factor · exp(·)`` with per-gene dispersion.

        ``transform_batch`` (a section code) decodes every spot as if it came from that section.
        """
        if transform_batch is not None and self.n_batch > 1:
            batch_index = torch.full(
                (z.shape[-2], 1), int(transform_batch), dtype=torch.long, device=z.device
            )
        log_rate = self.decode_log_rate(z, batch_index)
        log_mu = torch.log(size_factor) + log_rate
        theta = torch.exp(self.px_log_theta)
        px = NegativeBinomial(
            mu=torch.exp(log_mu),
            theta=theta.expand(log_mu.shape),
            # The normalised expression is an output, not part of the loss: skip it in training.
            scale=None if self.training else torch.softmax(log_rate, -1),
        )
        return {"px": px, "log_mu": log_mu}

    def loss(
        self, tensors, inference_outputs, generative_outputs, kl_weight: float = 1.0, n_obs=None
    ):
        """NB negative log-likelihood + β · (GP term + Gaussian KL), per spot (eqs. 2, 4, 10).

        ``extra_metrics['kl_per_obs']`` is the KL per spot the β controller steers.
        """
        x = tensors[REGISTRY_KEYS.X_KEY]
        rec = -nb_log_likelihood(
            x,
            generative_outputs["log_mu"],
            self.px_log_theta,
            generative_outputs["px"].mu,
            nonzero=tensors.get(REGISTRY_KEYS.X_NONZERO_KEY),
        ).sum(-1)
        b = x.shape[0]
        qz_m, qz_v = inference_outputs["qz_m"], inference_outputs["qz_v"]
        g = self.n_gp
        gauss_kl = 0.5 * (qz_m[:, g:] ** 2 + qz_v[:, g:] - torch.log(qz_v[:, g:]) - 1).sum(
            -1
        )  # eq. 10
        gp_term = inference_outputs["gp_term"]
        if gp_term is None:
            batch_index = tensors.get(REGISTRY_KEYS.BATCH_KEY)
            xs = self.rescale_coordinates(tensors[REGISTRY_KEYS.SPATIAL_KEY], batch_index)
            gp_term = self.gp_minibatch(xs, qz_m[:, :g], qz_v[:, :g], batch_index)[2]
        # The GP term is a minibatch sum (eq. 4); spread it evenly over the spots of the batch.
        gp_per_obs = gp_term / b
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


def _repeat(batch_index: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor | None:
    if batch_index is None:
        return None
    return batch_index.reshape(1, -1, 1).expand(z.shape[0], -1, 1).reshape(-1, 1)


def _per_section(value, n_batch: int, d: int) -> torch.Tensor:
    """A scalar, length-``d`` or ``n_batch × d`` value as an ``n_batch × d`` float32 tensor."""
    t = torch.as_tensor(value, dtype=torch.float32)
    if t.ndim < 2:
        t = t.reshape(1, -1)
    return t.expand(n_batch, d).clone()

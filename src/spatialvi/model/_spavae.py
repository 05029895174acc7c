"""SpaVAE: spatially aware VAE with a Gaussian-process prior (Tian et al. 2024, Nat Methods)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scipy import sparse
from scvi.data.fields import CategoricalObsField, NumericalObsField, ObsmField
from scvi.model.base import RNASeqMixin

from spatialvi._keys import MODEL, OBSM, REGISTRY_KEYS
from spatialvi._validation import (
    check_coordinates,
    check_counts,
    check_int,
    check_obs_column,
    check_setup_anndata,
    gene_order,
)
from spatialvi.data import GeneAlignedLayerField, SpatialviAnnDataManager
from spatialvi.geometry import coordinate_rescaling, grid_inducing_points, kmeans_inducing_points
from spatialvi.model._spavae_tasks import SpaVAETasksMixin
from spatialvi.model.base import SpatialviModel, train_docstring
from spatialvi.module._spavae import SpaVAEModule
from spatialvi.nn import library_size, median_library, size_factor
from spatialvi.train import PIBetaController, spavae_batch_size

logger = logging.getLogger(__name__)


class SpaVAE(SpaVAETasksMixin, RNASeqMixin, SpatialviModel):
    """SpaVAE: a VAE whose first latent dims have a sparse GP prior over spot coordinates.

    Tian et al. 2024, "Dependency-aware deep generative models for multitasking analysis of
    spatial omics data", Nat Methods 21, 1501–1513. The GP prior is the amortised sparse
    SVGP-VAE of Jazbec et al. 2021 (see :class:`~spatialvi.nn.SparseGPPrior`).

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    n_gp
        Number of latent dims with the GP prior.
    n_gauss
        Number of latent dims with a standard normal prior.
    kernel
        ``"cauchy"`` (default), ``"eq"``, ``"matern"`` or a :class:`gpytorch.kernels.Kernel`.
    kernel_scale
        Initial scale ``s`` of the named kernels (learnable).
    n_inducing
        Number of inducing points (default 49: a 7 × 7 grid on a square section).
    inducing
        ``"grid"`` (default), ``"kmeans"``, an ``M × d`` array of inducing points in the units
        of ``adata.obsm[spatial_key]``, or a list of such arrays, one per section. Grid and
        k-means points are placed per section.
    learn_inducing
        Whether inducing locations are optimised.
    loc_range
        Coordinates are rescaled to ``[0, loc_range]``.
    keep_aspect
        One common scale for all axes (default) or the authors' per-axis scaling.
    noise
        Standard deviation of the denoising noise (0 disables the regulariser).
    encoder_hidden, decoder_hidden
        Hidden widths (defaults 128-64 and 128).
    dropout_rate
        Dropout in hidden layers.
    jitter
        Diagonal jitter added to ``K_mm``.
    formulation
        ``"whitened"`` (float32-stable, default) or ``"direct"`` (reference baseline).
    random_state
        Seed of the k-means inducing points.

    Examples
    --------
    >>> SpaVAE.setup_anndata(adata)
    >>> model = SpaVAE(adata)
    >>> model.train()
    >>> model.write_outputs(adata)  # obsm['X_spavae'], layers['spavae_denoised'], uns['spavae']
    """

    _model_name = MODEL.SPAVAE
    _module_cls = SpaVAEModule

    def __init__(
        self,
        adata: AnnData,
        n_gp: int = 2,
        n_gauss: int = 8,
        kernel="cauchy",
        kernel_scale: float = 20.0,
        n_inducing: int = 49,
        inducing: Literal["grid", "kmeans"] | np.ndarray | list = "grid",
        learn_inducing: bool = False,
        loc_range: float = 20.0,
        keep_aspect: bool = True,
        noise: float = 0.0,
        encoder_hidden: Sequence[int] = (128, 64),
        decoder_hidden: Sequence[int] = (128,),
        dropout_rate: float = 0.0,
        jitter: float = 1e-4,
        formulation: Literal["whitened", "direct"] = "whitened",
        random_state: int = 0,
    ):
        super().__init__(adata)
        coords = np.asarray(
            self.adata_manager.get_from_registry(REGISTRY_KEYS.SPATIAL_KEY), dtype=np.float64
        )
        sections = self._section_codes()
        n_batch = self.summary_stats.n_batch
        if isinstance(inducing, str):
            check_int("n_inducing", n_inducing)
            if inducing not in ("grid", "kmeans"):
                raise ValueError(
                    f"`inducing` must be 'grid', 'kmeans' or an M × d array, got {inducing!r}."
                )
        else:
            given = (
                [np.asarray(a, dtype=np.float64) for a in inducing]
                if isinstance(inducing, list | tuple)
                else [np.asarray(inducing, dtype=np.float64)] * n_batch
            )
            if len(given) != n_batch:
                raise ValueError(
                    f"`inducing` is a list of {len(given)} arrays but the data has {n_batch} "
                    "sections; pass one array per section (in the order of the batch categories)."
                )
            for raw in given:
                if raw.ndim != 2 or raw.shape[1] != coords.shape[1]:
                    raise ValueError(
                        f"`inducing` array has shape {raw.shape}; expected (M, {coords.shape[1]}) "
                        "in the units of the registered coordinates."
                    )
        # One coordinate frame and one set of inducing points per section.
        offsets, scales, inducing_sets, raw_sets = [], [], [], []
        for k in range(n_batch):
            sec = coords[sections == k]
            if len(sec) == 0:
                raise ValueError(f"Section {k} of the registered batch_key has no spots.")
            offset, scale = coordinate_rescaling(sec, loc_range, keep_aspect)
            scaled = (sec - offset) * scale
            if isinstance(inducing, str):
                z = (
                    grid_inducing_points(scaled, n_inducing)
                    if inducing == "grid"
                    else kmeans_inducing_points(scaled, n_inducing, random_state)
                )
            else:
                z = (given[k] - offset) * scale
            offsets.append(offset)
            scales.append(scale)
            inducing_sets.append(torch.as_tensor(z, dtype=torch.float32))
            # Saved with the model so a reload rebuilds exactly these M points.
            raw_sets.append(z / scale + offset)
        offset, scale = np.stack(offsets), np.stack(scales)

        x = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        library = library_size(x)
        median = median_library(library)
        mean, std = _log1p_normalised_moments(x, size_factor(library, median))

        self.module = self._module_cls(
            n_input=self.summary_stats.n_vars,
            inducing_points=inducing_sets,
            coord_offset=torch.as_tensor(offset, dtype=torch.float32),
            coord_scale=torch.as_tensor(scale, dtype=torch.float32),
            input_mean=torch.as_tensor(mean, dtype=torch.float32),
            input_std=torch.as_tensor(std, dtype=torch.float32),
            median_library=median,
            n_gp=n_gp,
            n_gauss=n_gauss,
            kernel=kernel,
            kernel_scale=kernel_scale,
            learn_inducing=learn_inducing,
            jitter=jitter,
            formulation=formulation,
            encoder_hidden=tuple(encoder_hidden),
            decoder_hidden=tuple(decoder_hidden),
            dropout_rate=dropout_rate,
            noise=noise,
            n_batch=n_batch,
        )
        kernel_name = kernel if isinstance(kernel, str) else type(kernel).__name__
        self._model_summary_string = (
            f"SpaVAE: n_gp={n_gp}, n_gauss={n_gauss}, kernel={kernel_name}, "
            f"n_inducing={len(inducing_sets[0])} "
            f"({inducing if isinstance(inducing, str) else 'given'}), "
            f"formulation={formulation}, sections={n_batch}"
        )
        self.init_params_ = self._get_init_params(locals())
        self.init_params_["non_kwargs"]["inducing"] = raw_sets[0] if n_batch == 1 else raw_sets
        self.run_params_ = {
            "n_gp": n_gp,
            "n_gauss": n_gauss,
            "kernel": kernel_name,
            "n_inducing": len(inducing_sets[0]),
            "n_sections": n_batch,
            "inducing": inducing if isinstance(inducing, str) else "given",
            "loc_range": loc_range,
            "keep_aspect": keep_aspect,
            "formulation": formulation,
        }

    # -- AnnData setup --------------------------------------------------------------------------
    @classmethod
    def setup_anndata(
        cls,
        adata: AnnData,
        layer: str | None = None,
        spatial_key: str = OBSM.SPATIAL,
        batch_key: str | None = None,
        size_factor_key: str | None = None,
        **kwargs,
    ) -> None:
        """Register raw counts and spot coordinates.

        Parameters
        ----------
        adata
            AnnData with raw integer counts and coordinates. Its data are not modified; like
            every scvi-tools model, registration adds ``obs['_scvi_batch']`` (the batch code)
            and ``uns['_scvi_uuid']`` / ``uns['_scvi_manager_uuid']``. A query AnnData
            encoded later is matched to the training genes by ``var_names`` (any order, extra
            genes ignored; missing genes are an error that names them).
        layer
            Layer holding raw counts (``None``: ``adata.X``).
        spatial_key
            Key in ``adata.obsm`` of the ``n × 2`` (or ``n × 3``) coordinates; positions must be
            distinct within a section. Each section keeps its own coordinate frame.
        batch_key
            Optional ``adata.obs`` column naming the section of each spot (multi-slice
            integration): the section enters encoder and decoder one-hot and each section gets
            an independent GP.
        size_factor_key
            Optional ``adata.obs`` column of positive size factors; default: library size / its
            median, computed on the fly.

        Raises
        ------
        KeyError
            If a key is missing.
        ValueError
            If ``adata`` has fewer than two spots (one, for a query set up for a saved model),
            counts are not raw integers, coordinates are malformed, two spots of a section
            share a position, or the batch column has missing values.
        """
        # Before any other local variable exists: every local is recorded as a setup argument.
        setup_method_args = cls._get_setup_method_args(**locals())
        check_setup_anndata(adata, cls.__name__, query="source_registry" in kwargs)
        check_counts(adata, layer)
        if batch_key is None:
            check_coordinates(adata, spatial_key, n_dims=(2, 3), allow_duplicates=False)
        else:
            check_obs_column(adata, batch_key, "batch_key")
            sections = adata.obs[batch_key]
            check_coordinates(adata, spatial_key, n_dims=(2, 3))
            for level in pd.unique(sections):
                check_coordinates(
                    adata[(sections == level).to_numpy()],
                    spatial_key,
                    n_dims=(2, 3),
                    allow_duplicates=False,
                )
        if size_factor_key is not None:
            check_obs_column(adata, size_factor_key, "size_factor_key")
            try:
                sf = np.asarray(adata.obs[size_factor_key], dtype=np.float64)
            except (TypeError, ValueError):
                sf = np.array([np.nan])
            if not (np.isfinite(sf).all() and (sf > 0).all()):
                raise ValueError(
                    f"adata.obs[{size_factor_key!r}] (`size_factor_key`) must hold finite positive "
                    "size factors; pass `size_factor_key=None` to compute them from library sizes."
                )
        fields = [
            GeneAlignedLayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=True),
            CategoricalObsField(REGISTRY_KEYS.BATCH_KEY, batch_key),
            ObsmField(REGISTRY_KEYS.SPATIAL_KEY, spatial_key),
        ]
        if size_factor_key is not None:
            fields.append(NumericalObsField(REGISTRY_KEYS.SIZE_FACTOR_KEY, size_factor_key))
        manager = SpatialviAnnDataManager(fields=fields, setup_method_args=setup_method_args)
        manager.register_fields(adata, **kwargs)
        cls.register_manager(manager)

    # -- training -------------------------------------------------------------------------------
    @train_docstring
    def train(
        self,
        max_epochs: int = 5000,
        batch_size: int | None = None,
        train_size: float = 0.95,
        early_stopping: bool = True,
        early_stopping_patience: int = 200,
        early_stopping_rel_delta: float = 3e-3,
        restore_best: bool = True,
        lr: float = 1e-3,
        lr_warmup_steps: int = 0,
        weight_decay: float = 1e-6,
        beta: float | None = None,
        kl_target: float = 0.025,
        beta_init: float = 10.0,
        beta_min: float = 4.0,
        beta_max: float = 25.0,
        accelerator: str = "auto",
        devices="auto",
        plan_kwargs: dict | None = None,
        **trainer_kwargs,
    ):
        """Train with the paper's defaults, then condition the GP on all spots.

        Parameters
        ----------
        max_epochs
            Maximum number of epochs (paper: 5000, with early stopping).
        batch_size
            Minibatch size; default 128 / 256 / 512 for ``N ≤ 1024 / ≤ 2048 / larger``, capped
            at the training-set size.
        train_size
            Fraction of spots for training; the rest is the validation set (paper: 0.95).
        early_stopping, early_stopping_patience, early_stopping_rel_delta
            Stop when the validation ELBO at β = 1 (``elbo_validation``, which does not move
            with β) has not improved by more than ``rel_delta`` × its value for ``patience``
            epochs (:class:`~spatialvi.train.RelativeEarlyStopping`). The relative margin
            keeps a slowly creeping, noisy ELBO from resetting the patience forever. A
            patience of 100 stops a third earlier at a lower layer ARI on DLPFC
            (docs/spavae.md, "Training time").
        restore_best
            With early stopping, end with the weights of the epoch with the lowest validation
            ELBO (the authors' early stopping does the same); its epoch is stored in
            ``run_params_['best_epoch']``.
        lr, weight_decay
            AdamW learning rate and weight decay (the authors' 1e-3).
        lr_warmup_steps
            Raise the learning rate linearly from ``lr / 3`` to ``lr`` over this many optimizer
            steps (``0``: ``lr`` from the first step); ``plan_kwargs={"lr_warmup_start": f}``
            starts it at ``f × lr``. ``lr=3e-3, lr_warmup_steps=1000`` stops after 66–82 % of
            the default's epochs on DLPFC, not yet at the same layer ARI on every seed
            (docs/spavae.md, "Training time").
        beta
            ``None``: PI-controlled β (dynamic VAE); a number: fixed β.
        kl_target
            Target KL per latent dim and spot for the controller (total target
            ``kl_target × (n_gp + n_gauss)``).
        beta_init, beta_min, beta_max
            Controller initial value and bounds.
        {train_common}
        """
        if batch_size is None:
            batch_size = spavae_batch_size(self.adata.n_obs)
        if beta is None:
            controller = PIBetaController(
                kl_target * self.module.n_latent,
                beta_init=beta_init,
                beta_min=beta_min,
                beta_max=beta_max,
            )
        else:
            controller = float(beta)
        return self._train_recipe(
            locals(),
            beta_controller=controller,
            optimizer="AdamW",
            run_params={"beta": "pi" if beta is None else float(beta)},
            plan_defaults={"lr_warmup_steps": lr_warmup_steps, "lr_warmup_start": 1 / 3},
        )

    def _before_training(self, n_train: int) -> None:
        # N of the N/b scaling per section: its expected number of training spots (the split is
        # uniform at random, so section s contributes n_train · n_s / n).
        counts = np.bincount(self._section_codes(), minlength=self.module.n_batch)
        n = self.adata.n_obs
        self.module.n_total.copy_(torch.as_tensor(n_train * counts / n, dtype=torch.float32))
        self.module.use_stored_posterior.fill_(False)
        for gp in self.module.gps:
            gp.clear_posterior()

    def _after_training(self) -> None:
        self.compute_posterior()

    @torch.inference_mode()
    def compute_posterior(self, batch_size: int = 1024) -> None:
        """Condition each section's GP on all its spots of the training AnnData and store it.

        Called by :meth:`train`; the stored posterior makes the latent of each spot independent
        of spot order and minibatch composition, and is saved with the model. With several
        sections, each section's GP dims are then centred on its spots (their translation is
        not identified by the model; the decoder absorbs the shift, so expression outputs do not
        change), which puts the sections in one latent frame.
        """
        self.module.eval()
        sections = self._section_codes()
        g = self.module.n_gp
        device = self.device

        def chunks(loader):
            for tensors in loader:
                x = tensors[REGISTRY_KEYS.X_KEY].to(device)
                batch_index = tensors[REGISTRY_KEYS.BATCH_KEY].to(device)
                sf = tensors.get(REGISTRY_KEYS.SIZE_FACTOR_KEY)
                sf = (
                    self.module.size_factor_from_counts(x)
                    if sf is None
                    else sf.to(device).reshape(-1, 1)
                )
                mean, var = self.module.encode(x, sf, batch_index)
                coords = self.module.rescale_coordinates(
                    tensors[REGISTRY_KEYS.SPATIAL_KEY].to(device), batch_index
                )
                yield coords, mean[:, :g], var[:, :g]

        for k, gp in enumerate(self.module.gps):
            indices = np.flatnonzero(sections == k)
            loader = self._make_data_loader(
                adata=self.adata, indices=indices, batch_size=batch_size, shuffle=False
            )
            gp.fit_posterior(chunks(loader))
        self.module.use_stored_posterior.fill_(True)
        if self.module.n_batch > 1:
            # A section's GP latent is identified only up to a translation (absorbed by the
            # decoder's section covariate): centre each section's GP dims on its spots, so
            # that the sections share one latent frame (see `SpaVAEModule.centre_gp_latent`).
            coords = np.asarray(self.adata_manager.get_from_registry(REGISTRY_KEYS.SPATIAL_KEY))
            shift = torch.zeros_like(self.module.gp_offset)
            for k in range(self.module.n_batch):
                sec = torch.as_tensor(coords[sections == k], dtype=torch.float32, device=device)
                total = torch.zeros(g, dtype=torch.float64, device=device)
                for start in range(0, len(sec), batch_size):
                    xs = sec[start : start + batch_size]
                    bidx = torch.full((len(xs), 1), k, dtype=torch.long, device=device)
                    mean, _ = self.module.gp_predict(
                        self.module.rescale_coordinates(xs, bidx), bidx
                    )
                    total += mean.double().sum(0)
                shift[k] = (total / len(sec)).to(shift)
            self.module.centre_gp_latent(shift)

    # -- outputs ---------------------------------------------------------------------------------
    def _require_posterior(self) -> None:
        if not self.module.has_posterior:
            raise RuntimeError(
                "SpaVAE has no full-data GP posterior; train the model (or call "
                "`model.compute_posterior()`) first."
            )

    @torch.inference_mode()
    def get_latent_representation(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        give_mean: bool = True,
        batch_size: int | None = None,
        **kwargs,
    ) -> np.ndarray:
        """Latent representation ``n × (n_gp + n_gauss)``.

        GP dims: posterior mean at each spot's coordinates under the GP conditioned on all
        training spots (independent of spot order); Gaussian dims: encoder means.

        Parameters
        ----------
        adata
            AnnData set up like the training data (default: the training AnnData).
        indices
            Subset of spots (default: all).
        give_mean
            Posterior mean (default) or one sample.
        batch_size
            Minibatch size for inference.
        """
        out = [
            (inf["qz"].loc if give_mean else inf["z"]).cpu()
            for _, inf in self._inference_batches(adata, indices, batch_size)
        ]
        return torch.cat(out).numpy()

    def _inference_batches(self, adata, indices, batch_size):
        """``(tensors, inference outputs)`` per minibatch of a trained model, in eval mode."""
        self._check_if_trained(warn=False)
        self._require_posterior()
        adata = self._validate_anndata(adata)
        loader = self._make_data_loader(adata=adata, indices=indices, batch_size=batch_size or 1024)
        self.module.eval()
        for tensors in loader:
            yield tensors, self.module.inference(**self.module._get_inference_input(tensors))

    @torch.inference_mode()
    def get_denoised_expression(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Denoised counts: NB means decoded from the posterior-mean latent (``n × genes``).

        Each spot keeps its own size factor. Unlike scvi-tools' ``get_normalized_expression``
        (which decodes one sample of ``z`` unless ``n_samples`` is raised), this decodes the
        latent of :meth:`get_latent_representation`, so it is deterministic.
        """
        columns = None
        if adata is not None:
            if not self._can_denoise(adata):
                raise ValueError(
                    "Denoised counts exist for the model's genes only: `adata` must hold "
                    "exactly the training genes (any order); `get_latent_representation` also "
                    "takes a query with extra genes."
                )
            columns = gene_order(adata.var_names, self.adata.var_names)
        out = []
        for tensors, inf in self._inference_batches(adata, indices, batch_size):
            log_rate = self.module.decode_log_rate(
                inf["qz"].loc, tensors[REGISTRY_KEYS.BATCH_KEY].to(inf["qz"].loc.device)
            )
            out.append((inf["size_factor"] * torch.exp(log_rate)).cpu().numpy())
        values = np.concatenate(out).astype(np.float32)
        # In the query's gene order when it lists the training genes in another order.
        return values if columns is None else values[:, columns]

    def _can_denoise(self, adata: AnnData) -> bool:
        # Denoised counts are on the training genes: the query must hold exactly those.
        reference = self.adata.var_names
        return len(adata.var_names) == len(reference) and bool(
            adata.var_names.isin(reference).all()
        )

    def _output_params(self) -> dict:
        params = super()._output_params()
        scales = [_kernel_scale(gp.kernel) for gp in self.module.gps]
        params["kernel_scale"] = scales[0] if len(scales) == 1 else scales
        return params


def _kernel_scale(kernel) -> float | None:
    for name in ("scale", "lengthscale"):
        value = getattr(kernel, name, None)
        if isinstance(value, torch.Tensor):
            return float(value.detach().reshape(-1)[0])
    return None


def _log1p_normalised_moments(x, size_factor: np.ndarray, chunk: int = 2048):
    """Per-gene mean and sd of ``log1p(x / size_factor)``, in chunks (``x`` dense or sparse)."""
    n, g = x.shape
    s1 = np.zeros(g)
    s2 = np.zeros(g)
    for start in range(0, n, chunk):
        block = x[start : start + chunk]
        block = block.toarray() if sparse.issparse(block) else np.asarray(block)
        block = np.log1p(block.astype(np.float64) / size_factor[start : start + chunk, None])
        s1 += block.sum(0)
        s2 += (block**2).sum(0)
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 0.0))
    # All-zero (constant) genes: unit sd keeps them at 0 instead of dividing by 0.
    std[std < 1e-6] = 1.0
    return mean, std


__all__ = ["SpaVAE"]

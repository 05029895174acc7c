"""DPVAE: a VAE whose latent distances mirror tissue distances (distance-preserving VAE)."""

from __future__ import annotations

import logging

import numpy as np
import torch
from anndata import AnnData
from scipy import sparse

from spatialvi._keys import MODEL, OBSM, REGISTRY_KEYS
from spatialvi._validation import (
    check_choice,
    check_coordinates,
    check_counts,
    check_expression,
    check_int,
    check_number,
    check_setup_anndata,
    get_matrix,
)
from spatialvi.data import (
    GeneAlignedLayerField,
    ObservationIndexField,
    SpatialviAnnDataManager,
    TrainingOnlyObsmField,
)
from spatialvi.model.base import SpatialviModel, train_docstring
from spatialvi.module._dpvae import DPVAEModule
from spatialvi.train import KLWarmup, dpvae_max_epochs

logger = logging.getLogger(__name__)

_MASKS = ("all", "knn", "cluster")


class DPVAE(SpatialviModel):
    """Distance-preserving VAE: expression VAE + λ · (‖z_i − z_j‖ − c‖s_i − s_j‖)² on minibatch pairs.

    Coordinates ``s`` are needed only for training: a query AnnData with expression alone is
    encoded by :meth:`get_latent_representation` and placed in space by
    :func:`spatialvi.tl.reconstruct_spatial`. Coordinates are standardised (centred, unit
    root-mean-square distance to their centroid); the factor is stored as
    :attr:`coordinate_scale` so latent distances convert back to the reference's units.

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    n_latent
        Latent dimension (2 to read coordinates off the latent directly).
    likelihood
        ``'nb'`` for raw counts or ``'normal'`` for continuous (e.g. log-normalised) values.
    dp_weight
        λ, weight of the distance-preserving loss; ``0.0`` is the plain VAE baseline.
    mask
        Pairs entering the loss: ``'all'``, ``'knn'`` (spatial nearest neighbours within each
        minibatch), ``'cluster'`` (same ``obs[cluster_key]``) or the name of an ``obsp``
        matrix (non-zero entries = pairs).
    n_neighbors
        Neighbours for ``mask='knn'``.
    cluster_key
        ``obs`` column for ``mask='cluster'``.
    dp_loss
        ``'squared'`` (paper eq. 3) or ``'abs'``.
    learn_scale
        Learn ``c`` (lower-bounded by ``min_scale``) instead of fixing ``c = 1``.
    **module_kwargs
        Passed to :class:`~spatialvi.module.DPVAEModule` (``n_hidden``, ``n_layers``,
        ``dropout_rate``, ``max_pairs``, ``min_scale``).

    Examples
    --------
    >>> DPVAE.setup_anndata(adata)
    >>> model = DPVAE(adata, dp_weight=100.0)
    >>> model.train(max_epochs=200)
    >>> model.write_outputs()  # obsm['X_dpvae'], layers['dpvae_denoised'], uns['dpvae']
    >>> spatialvi.tl.reconstruct_spatial(query, model, key_added="spatial_dpvae")
    """

    _model_name = MODEL.DPVAE
    _module_cls = DPVAEModule

    def __init__(
        self,
        adata,
        n_latent: int = 10,
        likelihood: str = "nb",
        dp_weight: float = 100.0,
        mask: str = "all",
        n_neighbors: int = 10,
        cluster_key: str | None = None,
        dp_loss: str = "squared",
        learn_scale: bool = False,
        **module_kwargs,
    ):
        super().__init__(adata)
        check_choice("likelihood", likelihood, ("nb", "normal"))
        check_choice("dp_loss", dp_loss, ("squared", "abs"))
        check_number("dp_weight", dp_weight, low=0.0)
        check_int("n_latent", n_latent)
        check_int("n_neighbors", n_neighbors)
        manager = self.adata_manager
        layer = manager.get_state_registry(REGISTRY_KEYS.X_KEY).get("layer")
        if likelihood == "nb":
            check_counts(adata, layer)
        has_coords = manager.has_field_data(REGISTRY_KEYS.SPATIAL_KEY)
        centre, scale, n_spatial = None, 1.0, 2
        if has_coords:
            coords = np.asarray(
                manager.get_from_registry(REGISTRY_KEYS.SPATIAL_KEY), dtype=np.float64
            )
            centre = coords.mean(0)
            scale = float(np.sqrt(((coords - centre) ** 2).sum(1).mean())) or 1.0
            n_spatial = coords.shape[1]
        module_mask = mask
        if mask not in _MASKS:
            module_mask = "matrix"
        self.module = self._module_cls(
            n_input=adata.n_vars,
            n_latent=n_latent,
            likelihood=likelihood,
            dp_weight=dp_weight,
            mask="matrix" if module_mask == "matrix" else mask,
            n_neighbors=n_neighbors,
            dp_loss=dp_loss,
            learn_scale=learn_scale,
            spatial_centre=centre,
            spatial_scale=scale,
            n_spatial=n_spatial,
            **module_kwargs,
        )
        if mask == "cluster":
            if cluster_key is None:
                raise ValueError(
                    "mask='cluster' needs `cluster_key=`, the adata.obs column whose labels define "
                    "the pairs entering the distance-preserving loss."
                )
            if cluster_key not in adata.obs:
                raise KeyError(
                    f"cluster_key {cluster_key!r} not found in adata.obs (available: {list(adata.obs)})."
                )
            codes = np.asarray(adata.obs[cluster_key].astype("category").cat.codes)
            self.module.cell_labels = codes
        elif module_mask == "matrix" and has_coords:
            if mask not in adata.obsp:
                raise KeyError(
                    f"`mask` must be one of {_MASKS} or a key of adata.obsp; {mask!r} is neither "
                    f"(obsp keys: {list(adata.obsp)})."
                )
            self.module.pair_mask = sparse.csr_matrix(adata.obsp[mask])
        self.reference_var_names_ = adata.var_names.copy()
        self._model_summary_string = (
            f"DPVAE: n_latent={n_latent}, likelihood={likelihood}, dp_weight={dp_weight}, mask={mask!r}, "
            f"coordinate scale={scale:.4g}"
        )
        self.init_params_ = self._get_init_params(locals())
        self.run_params_ = {
            "n_latent": n_latent,
            "likelihood": likelihood,
            "dp_weight": float(dp_weight),
            "mask": mask,
            "coordinate_scale": float(scale),
        }

    @property
    def coordinate_scale(self) -> float:
        """Root-mean-square distance of the training coordinates to their centroid."""
        return float(self.module.spatial_scale)

    @property
    def coordinate_centre(self) -> np.ndarray:
        """Centroid of the training coordinates."""
        return self.module.spatial_centre.detach().cpu().numpy().astype(np.float64)

    @property
    def distance_scale(self) -> float:
        """The scale ``c`` relating latent to standardised spatial distances."""
        return float(self.module.scale.detach().cpu())

    @classmethod
    def setup_anndata(
        cls, adata, layer: str | None = None, spatial_key: str = OBSM.SPATIAL, **kwargs
    ):
        """Register expression and (training-only) coordinates.

        Parameters
        ----------
        adata
            AnnData with expression in ``X`` or ``layers[layer]`` and coordinates in
            ``obsm[spatial_key]``.
        layer
            Layer holding the expression (raw counts for ``likelihood='nb'``).
        spatial_key
            ``obsm`` key of the n × 2 (or n × 3) coordinates; required here, optional for the
            query AnnData encoded later.

        Notes
        -----
        ``adata`` is not modified: the cell positions the cluster and matrix masks need come
        from :class:`~spatialvi.data.ObservationIndexField`, not from an ``obs`` column.
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        check_setup_anndata(adata, cls.__name__, query="source_registry" in kwargs)
        check_expression(adata, layer)
        check_coordinates(adata, spatial_key)
        fields = [
            GeneAlignedLayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=False),
            TrainingOnlyObsmField(REGISTRY_KEYS.SPATIAL_KEY, spatial_key),
            ObservationIndexField(REGISTRY_KEYS.INDICES_KEY),
        ]
        manager = SpatialviAnnDataManager(fields=fields, setup_method_args=setup_method_args)
        manager.register_fields(adata, **kwargs)
        cls.register_manager(manager)

    @train_docstring
    def train(
        self,
        max_epochs: int | None = None,
        batch_size: int = 128,
        train_size: float = 0.9,
        early_stopping: bool = False,
        early_stopping_patience: int = 45,
        early_stopping_rel_delta: float = 0.0,
        restore_best: bool = False,
        kl_warmup_epochs: int | None = None,
        lr: float = 2e-3,
        weight_decay: float = 1e-6,
        accelerator: str = "auto",
        devices="auto",
        plan_kwargs: dict | None = None,
        **trainer_kwargs,
    ):
        """Train with Adam on the negative ELBO plus λ · L_dp.

        Parameters
        ----------
        max_epochs
            Number of epochs; ``None``: ``min(round(20000 / n_obs · 200), 200)``, half of
            scvi-tools' heuristic, trained at twice its learning rate (the default ``lr``).
            On DLPFC sections the held-out reconstruction of 200 epochs at ``lr=2e-3`` matches
            that of scvi-tools' 400 at ``1e-3`` (docs/dpvae.md).
        batch_size
            Minibatch size (the distance loss uses the pairs within each minibatch), capped at
            the training-set size.
        train_size
            Fraction of observations for training; the rest is the validation set.
        early_stopping, early_stopping_patience, early_stopping_rel_delta, restore_best
            Stop when the validation ELBO (``elbo_validation``) has not improved by more than
            ``rel_delta`` × its value for ``patience`` epochs
            (:class:`~spatialvi.train.RelativeEarlyStopping`); off by default.
        kl_warmup_epochs
            The KL weight rises linearly from 0 to 1 over this many epochs
            (:class:`~spatialvi.train.KLWarmup`; ``0`` disables the warm-up); ``None``
            (default): over the whole training, ``e / max_epochs`` in epoch ``e`` (the shape of
            scvi-tools' ``e / 400`` over its 400 epochs). The KL weight stays below 1 for the
            whole training (``1 − 1/max_epochs`` in the last epoch), so the latent is shaped
            mostly by the reconstruction and the distance loss.
        lr, weight_decay
            Adam learning rate and weight decay.
        {train_common}
        """
        if max_epochs is None:
            max_epochs = dpvae_max_epochs(self.adata.n_obs)
        if kl_warmup_epochs is None:
            kl_warmup_epochs = max_epochs
        return self._train_recipe(
            locals(),
            beta_controller=KLWarmup(kl_warmup_epochs),
            optimizer="Adam",
            run_params={"kl_warmup_epochs": int(kl_warmup_epochs)},
        )

    def align_genes(self, adata, min_gene_overlap: float = 0.5):
        """Return ``adata`` with the reference's genes in the reference's order.

        Genes are matched by ``var_names``; reference genes missing from ``adata`` are filled
        with zeros; extra genes are not used. The user's AnnData is not modified.

        Raises
        ------
        ValueError
            If fewer than ``min_gene_overlap`` of the reference genes are present.
        """
        import anndata as ad

        ref = self.reference_var_names_
        if adata.var_names.equals(ref):
            return adata
        present = ref.isin(adata.var_names)
        frac = float(present.mean())
        if frac < min_gene_overlap:
            raise ValueError(
                f"Only {present.sum()} of the model's {len(ref)} genes ({frac:.0%}) are in the query "
                f"(matched by var_names); at least {min_gene_overlap:.0%} are required. Use the same "
                "gene identifiers (e.g. Ensembl IDs) or train on the genes shared with the query."
            )
        logger.warning(
            "Query holds %d of %d model genes; the rest are set to 0.", present.sum(), len(ref)
        )
        layer = self.adata_manager.get_state_registry(REGISTRY_KEYS.X_KEY).get("layer")
        x = sparse.csr_matrix(get_matrix(adata, layer))
        cols = adata.var_names.get_indexer(ref[present])
        mapping = sparse.csr_matrix(
            (np.ones(len(cols)), (cols, np.flatnonzero(present))), shape=(adata.n_vars, len(ref))
        )
        aligned = (x @ mapping).tocsr()
        out = ad.AnnData(obs=adata.obs[[]].copy(), var=ref.to_frame(name="gene").set_index(ref))
        if layer is None:
            out.X = aligned
        else:
            out.layers[layer] = aligned
        return out

    def get_latent_representation(self, adata=None, min_gene_overlap: float = 0.5, **kwargs):
        """Posterior mean latent (``n_obs × n_latent``), genes aligned to the reference by name.

        Parameters
        ----------
        adata
            AnnData to encode (default the training data); coordinates are not needed.
        min_gene_overlap
            Minimum fraction of the model's genes the query must hold.
        **kwargs
            Passed to :meth:`scvi.model.base.VAEMixin.get_latent_representation`.
        """
        if adata is not None:
            adata = self.align_genes(adata, min_gene_overlap)
        return super().get_latent_representation(adata, **kwargs)

    def _can_denoise(self, adata: AnnData) -> bool:
        # Denoised values are on the model's genes: a query with other genes gets none.
        return adata.var_names.equals(self.reference_var_names_)

    @torch.inference_mode()
    def get_denoised_expression(
        self, adata: AnnData | None = None, batch_size: int | None = None
    ) -> np.ndarray:
        """Decoded expression at the posterior-mean latent (``n_obs × genes``, float32).

        NB likelihood: the NB means at each observation's own library size; normal likelihood:
        the decoder means. ``adata`` must hold the model's genes in the model's order.
        """
        if adata is not None and not self._can_denoise(adata):
            raise ValueError(
                "Denoised values are computed on the model's genes: `adata` must have the "
                "training var_names in the same order (`write_outputs` leaves the layer out "
                "for a query with other genes; `get_latent_representation` aligns them)."
            )
        self._check_if_trained(warn=False)
        adata = self._validate_anndata(adata)
        loader = self._make_data_loader(adata=adata, batch_size=batch_size or 1024)
        self.module.eval()
        out = []
        for tensors in loader:
            inf = self.module.inference(**self.module._get_inference_input(tensors))
            gen = self.module.generative(inf["qz"].loc, inf["library"])
            out.append(gen["px"].mean.cpu().numpy())
        return np.concatenate(out).astype(np.float32)

"""SpaVAE analyses at new locations: spatial interpolation and resolution enhancement.

Tian et al. 2024 (Nat Methods) predict the latent at an unmeasured location from the GP
posterior (the GP dims) and from the nearest measured spots (the Gaussian dims, which carry no
spatial prior), and decode it to expression. Resolution enhancement is the same prediction on a
grid of sub-spots inside every spot. Differential expression needs nothing here: scvi-tools'
:meth:`~scvi.model.base.RNASeqMixin.differential_expression` works on SpaVAE as it is.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Real
from typing import Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from spatialvi._keys import OBS, OBSM, REGISTRY_KEYS
from spatialvi._validation import check_choice, check_int
from spatialvi.geometry import spot_distance, subspot_coordinates

#: Query points farther than this many spot spacings from every training spot of their section
#: trigger a warning: the GP has reverted towards its prior there.
_FAR_SPACINGS = 3.0


class SpaVAETasksMixin:
    """Spatial interpolation (:meth:`predict_at`) and resolution enhancement for SpaVAE.

    Both methods need a trained model (the stored full-data GP posterior) and return a new
    :class:`~anndata.AnnData` with one observation per query point; nothing the user passed is
    modified.
    """

    # -- public API ------------------------------------------------------------------------------
    @torch.inference_mode()
    def predict_at(
        self,
        coords: np.ndarray,
        batch: str | Sequence | np.ndarray | None = None,
        n_neighbors: int = 6,
        weights: Literal["distance", "uniform"] = "distance",
        library_size: float | Literal["neighbors", "median"] = "neighbors",
        gene_list: Sequence[str] | None = None,
        batch_size: int = 8192,
    ) -> AnnData:
        """Latent and expression at new locations (spatial interpolation).

        For every query point:

        - **GP dims**: the posterior mean of each GP dim at the point, under the GP conditioned
          on all training spots of the point's section (the stored posterior).
        - **Gaussian dims**: these have no spatial prior, so they are taken from the
          ``n_neighbors`` nearest training spots of the same section (a k-d tree on the raw
          training coordinates): their encoder means, averaged with inverse-distance weights
          by default. A point on a training spot gets exactly that spot's values, so
          ``predict_at`` at the training coordinates reproduces
          :meth:`get_latent_representation`.
        - **Expression**: the decoder's NB mean ``size_factor · exp(decoder(z))`` with the
          point's section as decoder covariate.

        Parameters
        ----------
        coords
            ``n × d`` query coordinates in the raw units of the training coordinates
            (``adata.obsm[spatial_key]``), ``d`` the training dimension.
        batch
            Section of the query points for a model trained with a ``batch_key``: one label of
            the training ``batch_key`` categories for all points, or one label per point. It
            picks the section's GP, coordinate frame, training spots and decoder covariate.
            Not needed for a single-section model.
        n_neighbors
            Number of nearest training spots the Gaussian dims (and the default library size)
            are taken from; ``1`` copies the nearest spot.
        weights
            ``"distance"`` (default): inverse-distance weights, ``"uniform"``: plain mean of
            the neighbours.
        library_size
            Library size the NB mean is computed at, as the size factor
            ``library_size / median_library`` (the model's definition): ``"neighbors"``
            (default) the neighbours' size factors averaged with the same weights (a point on a
            measured spot gets that spot's own, as in the denoised layer), ``"median"`` the
            median training library (size factor 1), or a positive number. The NB mean
            ``size_factor · exp(decoder(z))`` sums to about, not exactly, this library.
        gene_list
            Genes to return (in the given order); default all training genes in training order.
        batch_size
            Number of query points processed at once.

        Returns
        -------
        :class:`~anndata.AnnData` with observations ``query_0``, ``query_1``, … in the order of
        ``coords`` and the training genes (or ``gene_list``): ``X`` and
        ``layers['spavae_denoised']`` the predicted NB means (float32), ``obsm['X_spavae']``
        the latent (GP dims first), ``obsm['spatial']`` the query coordinates,
        ``obs['section']`` the section label (multi-section models) and ``uns['spavae']``
        the parameters of the prediction (SpaLDVAE: ``X_spaldvae``, ``spaldvae_denoised``,
        ``spaldvae``).

        Raises
        ------
        ValueError
            If ``coords`` is not an ``n × d`` array of finite numbers, ``batch`` is missing or
            names an unknown section, or a parameter is out of range.
        RuntimeError
            If the model is not trained.

        Examples
        --------
        >>> grid = np.mgrid[0:2000:25, 0:2000:25].reshape(2, -1).T
        >>> fine = model.predict_at(grid)
        >>> svi.pl.spatial_scatter(fine, color="gene_0001")
        """
        self._require_trained_posterior()
        genes = self._check_prediction_options(
            n_neighbors, weights, library_size, gene_list, batch_size
        )
        query = self._query_coordinates(coords)
        codes = self._query_sections(batch, len(query))
        reference = self._reference_spots(None)
        out = self._predict(
            query,
            codes,
            reference,
            n_neighbors=n_neighbors,
            weights=weights,
            library_size=library_size,
            genes=genes,
            batch_size=batch_size,
            obs_names=np.char.add("query_", np.arange(len(query)).astype(str)),
        )
        out.uns[self.output_keys().uns]["task"] = "predict_at"
        return out

    @torch.inference_mode()
    def enhance_resolution(
        self,
        factor: int = 2,
        adata: AnnData | None = None,
        distance: float | None = None,
        include_centre: bool | None = None,
        n_neighbors: int = 6,
        weights: Literal["distance", "uniform"] = "distance",
        library_size: float | Literal["neighbors", "median"] = "neighbors",
        gene_list: Sequence[str] | None = None,
        batch_size: int = 8192,
    ) -> AnnData:
        """Latent and expression on a sub-spot grid inside every spot (resolution enhancement).

        Sub-spots are placed around each spot by :func:`spatialvi.tl.subspot_coordinates`
        (``factor=2``: the paper's four points at ``(±d/4, ±d/4)`` and the spot centre, ``d``
        the median nearest-neighbour distance of the spot's section), then predicted as in
        :meth:`predict_at`, with the spots of ``adata`` as the neighbours that give the
        Gaussian dims and library sizes.

        Parameters
        ----------
        factor
            Resolution factor: a ``factor × factor`` grid of sub-spots per spot.
        adata
            AnnData set up like the training data whose spots are enhanced (default: the
            training AnnData). Its coordinates must be in the frame of the training section
            they belong to.
        distance
            Spot spacing ``d``; default the median nearest-neighbour distance, per section.
        include_centre
            Whether to add the spot centre for even factors (default: yes).
        n_neighbors, weights, library_size, gene_list, batch_size
            As in :meth:`predict_at`; the neighbours are the spots of ``adata``. The
            ``"neighbors"`` library size is on the scale of a whole spot (not divided by the
            number of sub-spots), so sub-spot and spot expression are directly comparable.

        Returns
        -------
        :class:`~anndata.AnnData` with the sub-spots of every spot, spot by spot in the order of
        ``adata.obs_names`` (names ``<spot>_sub<j>``), laid out as in :meth:`predict_at`, plus
        ``obs['parent_spot']`` (the spot each sub-spot belongs to) and ``obs['section']``
        (multi-section models).

        Raises
        ------
        ValueError
            If the coordinates are not 2-D or ``factor`` is not a positive integer.
        RuntimeError
            If the model is not trained.
        """
        check_int("factor", factor)
        if distance is not None and not (np.isfinite(distance) and distance > 0):
            raise ValueError(
                f"`distance` must be a positive spot spacing or None (measured), got {distance!r}."
            )
        self._require_trained_posterior()
        genes = self._check_prediction_options(
            n_neighbors, weights, library_size, gene_list, batch_size
        )
        reference = self._reference_spots(adata)
        spots, codes = reference["coords"], reference["codes"]
        if spots.shape[1] != 2:
            raise ValueError(
                f"enhance_resolution needs 2-D spot coordinates, got {spots.shape[1]}-D ones; "
                "for 3-D data pass sub-spot positions to `predict_at` instead."
            )
        labels = self._section_labels()
        per_spot, distances = None, {}
        for k in np.unique(codes):
            idx = np.flatnonzero(codes == k)
            if distance is None and len(idx) < 2:
                raise ValueError(
                    f"Section {labels[k]!r} has a single spot, so its spot spacing is unknown; "
                    "pass `distance=`."
                )
            d = spot_distance(spots[idx]) if distance is None else float(distance)
            points, _ = subspot_coordinates(spots[idx], factor, d, include_centre)
            points = points.reshape(len(idx), -1, 2)
            if per_spot is None:
                per_spot = np.empty((len(spots), points.shape[1], 2))
            per_spot[idx] = points
            distances[str(labels[k])] = d
        n_sub = per_spot.shape[1]
        query = per_spot.reshape(-1, 2)
        parent = np.repeat(np.arange(len(spots)), n_sub)
        spot_names = np.asarray(reference["obs_names"])
        sub = np.tile(np.arange(n_sub), len(spots)).astype(str)
        names = np.char.add(np.char.add(spot_names[parent].astype(str), "_sub"), sub)
        out = self._predict(
            query,
            codes[parent],
            reference,
            n_neighbors=n_neighbors,
            weights=weights,
            library_size=library_size,
            genes=genes,
            batch_size=batch_size,
            obs_names=names,
        )
        out.obs[OBS.PARENT_SPOT] = pd.Categorical(
            spot_names[parent], categories=pd.unique(spot_names)
        )
        params = out.uns[self.output_keys().uns]
        params.update(
            {
                "task": "enhance_resolution",
                "factor": int(factor),
                "subspots_per_spot": int(n_sub),
                "spot_distance": distances,
            }
        )
        return out

    # -- pieces ----------------------------------------------------------------------------------
    def _require_trained_posterior(self) -> None:
        self._check_if_trained(warn=False)
        self._require_posterior()

    def _spatial_key(self) -> str:
        return self.adata_manager.data_registry[REGISTRY_KEYS.SPATIAL_KEY].attr_key

    def _section_labels(self) -> np.ndarray:
        """Labels of the training sections, in the order of their integer codes."""
        state = self.adata_manager.get_state_registry(REGISTRY_KEYS.BATCH_KEY)
        return np.asarray(state.categorical_mapping)

    def _query_coordinates(self, coords) -> np.ndarray:
        d = self.module.coord_offset.shape[-1]
        key = self._spatial_key()
        raw = coords.to_numpy() if hasattr(coords, "to_numpy") else coords
        raw = np.asarray(raw)
        if raw.ndim != 2 or raw.shape[1] != d:
            hint = " (a single point: `np.reshape(point, (1, -1))`)" if raw.ndim == 1 else ""
            raise ValueError(
                f"`coords` has shape {raw.shape}; expected (n_points, {d}), in the units of the "
                f"training coordinates adata.obsm[{key!r}]{hint}."
            )
        if raw.dtype.kind not in "iuf":
            raise ValueError(f"`coords` has dtype {raw.dtype}; expected numbers.")
        if len(raw) == 0:
            raise ValueError("`coords` holds no points; pass at least one query location.")
        raw = raw.astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(raw).all(axis=1))
        if len(bad):
            raise ValueError(
                f"`coords` has NaN or infinite values in {len(bad)} rows (e.g. rows "
                f"{bad[:5].tolist()}); pass finite coordinates only."
            )
        return raw

    def _query_sections(self, batch, n: int) -> np.ndarray:
        """Integer section code of every query point from the user's ``batch`` labels."""
        labels = self._section_labels()
        n_batch = self.module.n_batch
        if batch is None:
            if n_batch > 1:
                raise ValueError(
                    f"This SpaVAE was trained on {n_batch} sections; pass `batch=` with the "
                    f"section of the query points (one of {labels.tolist()}, or one per point)."
                )
            return np.zeros(n, dtype=np.int64)
        if np.ndim(batch) == 0:
            values = np.full(n, batch, dtype=object)
        else:
            values = np.asarray(batch, dtype=object).reshape(-1)
            if len(values) != n:
                raise ValueError(
                    f"`batch` has {len(values)} labels for {n} query points; pass one section "
                    "label for all points or one per point."
                )
        codes = pd.Index(labels.astype(str)).get_indexer(values.astype(str))
        unknown = pd.unique(values[codes < 0])
        if len(unknown):
            raise ValueError(
                f"`batch` names sections {list(unknown[:5])} that the model was not trained on; "
                f"known sections: {labels.tolist()}."
            )
        return codes.astype(np.int64)

    def _reference_spots(self, adata: AnnData | None) -> dict:
        """Coordinates, sections, Gaussian-dim encoder means and size factors of measured spots."""
        adata = self._validate_anndata(adata)
        manager = self.get_anndata_manager(adata, required=True)
        coords = np.asarray(manager.get_from_registry(REGISTRY_KEYS.SPATIAL_KEY), dtype=np.float64)
        codes = self._section_codes(adata)
        latent = self.get_latent_representation(adata)
        return {
            "coords": coords,
            "codes": codes,
            "gauss": latent[:, self.module.n_gp :],
            "size_factors": self.registered_size_factors(adata),
            "obs_names": adata.obs_names,
        }

    def _neighbour_weights(
        self,
        query: np.ndarray,
        codes: np.ndarray,
        reference: dict,
        n_neighbors: int,
        weights: str,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Indices into the reference spots (``n × k``) and row-normalised weights."""
        from scipy.spatial import cKDTree

        n = len(query)
        k_max = int(n_neighbors)
        index = np.zeros((n, k_max), dtype=np.int64)
        weight = np.zeros((n, k_max))
        n_far = 0
        for s in np.unique(codes):
            rows = np.flatnonzero(codes == s)
            pool = np.flatnonzero(reference["codes"] == s)
            if len(pool) == 0:
                raise ValueError(
                    f"Section {self._section_labels()[s]!r} has no measured spots to take the "
                    "Gaussian latent dims from."
                )
            k = min(k_max, len(pool))
            tree = cKDTree(reference["coords"][pool])
            dist, nn = tree.query(query[rows], k=k)
            dist, nn = dist.reshape(len(rows), k), nn.reshape(len(rows), k)
            if weights == "uniform":
                w = np.ones_like(dist)
            else:
                # A point on a measured spot takes that spot's values exactly.
                scale = np.abs(reference["coords"][pool]).max() + 1.0
                exact = dist[:, 0] <= 1e-9 * scale
                w = 1.0 / np.maximum(dist, 1e-9 * scale)
                w[exact] = 0.0
                w[exact, 0] = 1.0
            index[rows, :k] = pool[nn]
            weight[rows, :k] = w / w.sum(1, keepdims=True)
            if len(pool) > 1:
                spacing = spot_distance(reference["coords"][pool])
                n_far += int((dist[:, 0] > _FAR_SPACINGS * spacing).sum())
        if n_far:
            warnings.warn(
                f"{n_far} query points lie more than {_FAR_SPACINGS:g} spot spacings from every "
                "measured spot of their section; there the GP dims revert towards the prior and "
                "the Gaussian dims come from distant spots.",
                UserWarning,
                stacklevel=3,
            )
        return index, weight

    def _check_prediction_options(
        self, n_neighbors, weights, library_size, gene_list, batch_size
    ) -> np.ndarray:
        """Validate the options shared by the prediction methods; return the gene indices."""
        check_int("n_neighbors", n_neighbors)
        check_choice("weights", weights, ("distance", "uniform"))
        check_int("batch_size", batch_size)
        if isinstance(library_size, str):
            if library_size not in ("neighbors", "median"):
                raise ValueError(
                    "`library_size` must be 'neighbors', 'median' or a positive number, got "
                    f"{library_size!r}."
                )
        elif not (
            isinstance(library_size, Real)
            and not isinstance(library_size, bool)
            and np.isfinite(library_size)
            and library_size > 0
        ):
            raise ValueError(
                f"`library_size` must be 'neighbors', 'median' or a positive number, got "
                f"{library_size!r}."
            )
        var_names = self.adata.var_names
        if gene_list is None:
            genes = np.arange(len(var_names))
        else:
            gene_list = [gene_list] if isinstance(gene_list, str) else list(gene_list)
            genes = var_names.get_indexer(gene_list)
            if (genes < 0).any():
                missing = [g for g, i in zip(gene_list, genes, strict=True) if i < 0]
                raise KeyError(
                    f"`gene_list` names genes not in the training var_names: {missing[:5]}."
                )
        return genes

    def _predict(
        self,
        query: np.ndarray,
        codes: np.ndarray,
        reference: dict,
        n_neighbors: int,
        weights: str,
        library_size,
        genes: np.ndarray,
        batch_size: int,
        obs_names: np.ndarray,
    ) -> AnnData:
        median = float(self.module.median_library)
        var_names = self.adata.var_names
        index, weight = self._neighbour_weights(query, codes, reference, int(n_neighbors), weights)
        gauss = np.einsum("nk,nkd->nd", weight, reference["gauss"][index])
        if library_size == "neighbors":
            size_factor = (weight * reference["size_factors"][index]).sum(1)
        elif library_size == "median":
            size_factor = np.ones(len(query))
        else:
            size_factor = np.full(len(query), float(library_size) / median)

        module = self.module
        module.eval()
        device = self.device
        multi = module.n_batch > 1
        n_gp = module.n_gp
        latent = np.empty((len(query), module.n_latent), dtype=np.float32)
        expression = np.empty((len(query), len(genes)), dtype=np.float32)
        genes_t = torch.as_tensor(genes, device=device)
        for start in range(0, len(query), int(batch_size)):
            stop = min(start + int(batch_size), len(query))
            xs = torch.as_tensor(query[start:stop], dtype=torch.float32, device=device)
            bidx = (
                torch.as_tensor(codes[start:stop], dtype=torch.long, device=device).reshape(-1, 1)
                if multi
                else None
            )
            gp_mean, _ = module.gp_predict(module.rescale_coordinates(xs, bidx), bidx)
            z = torch.cat(
                [gp_mean, torch.as_tensor(gauss[start:stop], dtype=gp_mean.dtype, device=device)],
                dim=-1,
            )
            log_rate = module.decode_log_rate(z, bidx)[:, genes_t]
            sf = torch.as_tensor(size_factor[start:stop], dtype=log_rate.dtype, device=device)
            latent[start:stop] = z.cpu().numpy()
            expression[start:stop] = (sf[:, None] * torch.exp(log_rate)).cpu().numpy()

        out = AnnData(
            X=expression,
            obs=pd.DataFrame(index=pd.Index(obs_names, dtype=str)),
            var=pd.DataFrame(index=var_names[genes]),
        )
        keys = self.output_keys()
        out.layers[keys.denoised] = expression
        out.obsm[keys.latent] = latent
        out.obsm[OBSM.SPATIAL] = query
        labels = self._section_labels()
        if multi:
            out.obs[OBS.SECTION] = pd.Categorical(labels[codes], categories=labels)
        out.uns[keys.uns] = {
            "n_gp": n_gp,
            "n_gauss": module.n_gauss,
            "n_neighbors": int(n_neighbors),
            "weights": weights,
            "library_size": library_size if isinstance(library_size, str) else float(library_size),
            "median_library": median,
            "latent_key": keys.latent,
            "denoised_key": keys.denoised,
            "model": type(self).__name__,
        }
        return out


__all__ = ["SpaVAETasksMixin"]

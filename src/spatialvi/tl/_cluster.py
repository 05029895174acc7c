"""Clustering of a latent representation into spatial domains, with optional spatial refinement."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from spatialvi._keys import MODEL_LATENTS, OBS, OBSM, cluster_key
from spatialvi._validation import (
    check_choice,
    check_coordinates,
    check_feature_matrix,
    check_int,
    check_obsm_key,
)

logger = logging.getLogger(__name__)


def refine_labels(coords: np.ndarray, labels: np.ndarray, n_neighbors: int = 10) -> np.ndarray:
    """Spatial majority vote: each spot takes the most frequent label among its spatial kNN.

    The spot itself counts as one of the voters; ties keep the spot's own label when it is among
    the most frequent, otherwise the smallest label code wins. Vectorised over spots.

    Parameters
    ----------
    coords
        ``n × d`` spot coordinates.
    labels
        Length-``n`` integer labels ``0 .. K−1``.
    n_neighbors
        Number of spatial neighbours (excluding the spot itself).
    """
    from sklearn.neighbors import NearestNeighbors

    labels = np.asarray(labels)
    n = len(labels)
    k = min(n_neighbors + 1, n)
    idx = NearestNeighbors(n_neighbors=k).fit(coords).kneighbors(coords, return_distance=False)
    n_labels = int(labels.max()) + 1
    votes = np.zeros((n, n_labels), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(n), k), labels[idx].ravel()), 1)
    best = votes.max(1)
    own = votes[np.arange(n), labels]
    return np.where(own == best, labels, votes.argmax(1))


def cluster(
    adata: AnnData,
    use_rep: str | None = None,
    n_clusters: int | None = None,
    resolution: float | None = None,
    method: Literal["kmeans", "leiden"] = "kmeans",
    refine: bool = False,
    standardize: bool = False,
    key_added: str | None = None,
    spatial_key: str = OBSM.SPATIAL,
    n_neighbors_refine: int = 10,
    n_init: int = 20,
    random_state: int = 0,
    copy: bool = False,
) -> AnnData | None:
    """Cluster spots on a latent representation (KMeans or Leiden), optionally spatially refined.

    Parameters
    ----------
    adata
        Annotated data.
    use_rep
        Key in ``adata.obsm`` of the representation. ``None``: the one model latent present
        (``X_spavae``, ``X_spaldvae``, ``X_dpvae``, ``X_sivae`` or ``X_adagvae``); its key is
        logged and stored in ``uns[key_added]``. With none or several present, pass it.
    n_clusters
        Number of clusters; required for ``method='kmeans'``.
    resolution
        Leiden resolution (default 1.0).
    method
        ``'kmeans'`` (:class:`sklearn.cluster.KMeans`) or ``'leiden'`` (scanpy, on a kNN graph
        of the representation).
    refine
        Replace each label by the majority label among the spot and its
        ``n_neighbors_refine`` spatial nearest neighbours (``adata.obsm[spatial_key]``).
    standardize
        Scale each dimension of the representation to zero mean and unit variance first, so
        that high-variance dims (e.g. SpaVAE's GP dims) do not dominate the distances.
    key_added
        Column of ``adata.obs`` written (categorical of string labels); default
        ``'<stem>_cluster'`` with ``stem`` = ``use_rep`` without ``X_`` (``'spavae_cluster'``).
        The parameters go to ``uns[key_added]``.
    spatial_key
        Coordinates used by ``refine``.
    n_neighbors_refine
        Spatial neighbours for the refinement vote.
    n_init
        KMeans restarts.
    random_state
        Seed.
    copy
        Return a copy instead of writing into ``adata``.

    Returns
    -------
    ``None``, or the modified copy if ``copy=True``.
    """
    check_choice("method", method, ("kmeans", "leiden"))
    use_rep = _find_rep(adata, use_rep)
    if key_added is None:
        key_added = cluster_key(use_rep)
    rep = check_obsm_key(
        adata,
        use_rep,
        "use_rep",
        hint="Compute a representation first (e.g. `SpaVAE.write_outputs(adata)`) or pass "
        "`use_rep=` naming one.",
    )
    rep = check_feature_matrix(f"adata.obsm[{use_rep!r}]", rep, n_obs=adata.n_obs)
    rep = rep.astype(np.float64)
    if method == "kmeans":
        if n_clusters is None:
            raise ValueError("`n_clusters` (a positive integer) is required for method='kmeans'.")
        n_clusters = check_int("n_clusters", n_clusters, maximum=adata.n_obs)
    if refine:
        check_int("n_neighbors_refine", n_neighbors_refine)
        check_obsm_key(
            adata,
            spatial_key,
            "spatial_key",
            hint="`refine=True` votes among spatial neighbours: pass `spatial_key=` naming the "
            "spot coordinates, or `refine=False`.",
        )
        coords = check_coordinates(adata, spatial_key)
    if standardize:
        sd = rep.std(0)
        rep = (rep - rep.mean(0)) / np.where(sd > 0, sd, 1.0)
    if method == "kmeans":
        from sklearn.cluster import KMeans

        labels = KMeans(n_clusters, n_init=n_init, random_state=random_state).fit_predict(rep)
    elif method == "leiden":
        import scanpy as sc

        work = AnnData(np.zeros((adata.n_obs, 0), dtype=np.float32), obsm={OBSM.REP: rep})
        sc.pp.neighbors(work, use_rep=OBSM.REP, random_state=random_state)
        sc.tl.leiden(
            work,
            resolution=1.0 if resolution is None else resolution,
            random_state=random_state,
            flavor="igraph",
            n_iterations=2,
            directed=False,
        )
        labels = work.obs[OBS.LEIDEN].astype(int).to_numpy()
    if refine:
        labels = refine_labels(coords, labels, n_neighbors_refine)
    if copy:
        adata = adata.copy()
    cats = [str(c) for c in np.unique(labels)]
    adata.obs[key_added] = pd.Categorical(labels.astype(str), categories=cats)
    adata.uns[key_added] = {
        "use_rep": use_rep,
        "method": method,
        "n_clusters": len(cats),
        "refine": bool(refine),
        "standardize": bool(standardize),
        "random_state": random_state,
    }
    return adata if copy else None


def _find_rep(adata: AnnData, use_rep: str | None) -> str:
    """``use_rep``, or the one model latent in ``adata.obsm`` (logged)."""
    if use_rep is not None:
        return use_rep
    present = [key for key in MODEL_LATENTS if key in adata.obsm]
    if len(present) != 1:
        found = f"found {present}" if present else "found none"
        raise KeyError(
            f"`use_rep=None` looks for exactly one model latent in adata.obsm ({list(MODEL_LATENTS)}) "
            f"but {found}; pass `use_rep=` (obsm keys: {list(adata.obsm)})."
        )
    logger.info("tl.cluster: clustering adata.obsm[%r] (use_rep=None).", present[0])
    return present[0]

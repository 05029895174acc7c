"""Spatial reconstruction from a latent space (the problem; :func:`smacof` is the solver)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spatialvi._keys import OBSM, reconstruction_uns_key
from spatialvi._validation import (
    check_array_coordinates,
    check_feature_matrix,
    check_int,
    check_mask,
    check_number,
    check_obsm_key,
)
from spatialvi.geometry import similarity_fit, smacof

_DENSE_MAX = 20000


def _anchor_rows(adata, anchors) -> np.ndarray:
    """Rows of the anchors: a boolean mask over cells or distinct obs_names."""
    if anchors is None:
        return np.zeros(0, dtype=np.int64)
    arr = np.asarray(anchors)
    if arr.dtype.kind == "b":
        return np.flatnonzero(check_mask("anchors", arr, adata.n_obs))
    names = pd.Index([str(a) for a in np.atleast_1d(arr).ravel()])
    if names.has_duplicates:
        dup = list(pd.unique(names[names.duplicated()]))
        raise ValueError(
            f"`anchors` names {len(dup)} cells more than once (e.g. {dup[:5]}); each anchor "
            "is one cell: pass distinct obs_names, e.g. `list(dict.fromkeys(anchors))`."
        )
    idx = adata.obs_names.get_indexer(names)
    if (idx < 0).any():
        unknown = [n for n, i in zip(names, idx) if i < 0][:5]
        raise KeyError(
            f"`anchors` names {int((idx < 0).sum())} cells not in adata.obs_names (e.g. {unknown}); "
            "pass obs_names of this AnnData or a boolean mask over its cells."
        )
    return idx


def reconstruct_spatial(
    adata,
    model=None,
    use_rep: str | None = None,
    anchors=None,
    anchor_weight: float | None = None,
    spatial_key: str = OBSM.SPATIAL,
    n_dims: int = 2,
    key_added: str = OBSM.SPATIAL,
    overwrite: bool = False,
    copy: bool = False,
    n_neighbors: int = 15,
    max_iter: int = 300,
    eps: float = 1e-6,
):
    """Place cells in space from their latent distances (DPVAE) by weighted, anchored SMACOF.

    The latent of ``model`` (or ``adata.obsm[use_rep]``) gives pairwise distances; for a
    :class:`~spatialvi.model.DPVAE` they are divided by ``c`` and multiplied by the coordinate
    standardisation factor stored with the model, so results are in the reference's units.
    When the latent already has ``n_dims`` dimensions, it is the answer (positioned on the
    anchors by a similarity fit if anchors are given). Otherwise :func:`~spatialvi.tl.smacof`
    runs on the distances: dense up to 20 000 cells, on a latent kNN graph with landmark
    initialisation beyond.

    Parameters
    ----------
    adata
        Cells to place (expression alone suffices with ``model``).
    model
        A trained :class:`~spatialvi.model.DPVAE`.
    use_rep
        ``obsm`` key of a precomputed latent (used when ``model`` is None).
    anchors
        Cells with known coordinates (taken from ``obsm[spatial_key]``): boolean mask over cells
        or obs_names.
    anchor_weight
        ``None``: hard anchors; a positive number: soft anchors (see :func:`smacof`).
    spatial_key
        ``obsm`` key of the anchors' coordinates.
    n_dims
        Output dimension.
    key_added
        ``obsm`` key receiving the coordinates (squidpy reads ``'spatial'``).
    overwrite
        Replace an existing ``obsm[key_added]``; otherwise that is an error.
    copy
        Return a modified copy instead of writing into ``adata``.
    n_neighbors, max_iter, eps
        kNN graph size beyond 20 000 cells; SMACOF stopping rule.

    Returns
    -------
    ``None``, or the modified copy if ``copy=True``. Writes ``obsm[key_added]`` and
    ``uns['reconstruct_<key_added>']`` (``uns['reconstruct_spatial']`` by default: stress,
    iterations, settings).
    """
    from scipy import sparse
    from scipy.spatial.distance import cdist

    n_dims = check_int("n_dims", n_dims)
    check_int("n_neighbors", n_neighbors)
    check_int("max_iter", max_iter, minimum=0)
    if anchor_weight is not None:
        check_number("anchor_weight (None for hard anchors)", anchor_weight, low=0, low_open=True)
    if key_added in adata.obsm and not overwrite:
        raise ValueError(
            f"adata.obsm[{key_added!r}] exists; pass `overwrite=True` or another `key_added=` "
            "(anchors taken from the same key need one of the two)."
        )
    rows = _anchor_rows(adata, anchors)
    anchor_pos = None
    if len(rows):
        known = check_obsm_key(
            adata,
            spatial_key,
            "spatial_key",
            hint="The coordinates of the `anchors` are read from there; pass `spatial_key=`.",
        )
        anchor_pos = check_array_coordinates(
            f"adata.obsm[{spatial_key!r}][anchors]",
            known[rows][:, :n_dims],
            n_dims=(n_dims,),
        )
    if model is not None:
        z = np.asarray(model.get_latent_representation(adata), dtype=np.float64)
        z = check_feature_matrix("model.get_latent_representation(adata)", z, n_obs=adata.n_obs)
        to_units = model.coordinate_scale / model.distance_scale
        centre = model.coordinate_centre[:n_dims]
    elif use_rep is not None:
        z = check_obsm_key(
            adata,
            use_rep,
            "use_rep",
            hint="Pass `model=` or `use_rep=` naming a latent stored there.",
        )
        z = check_feature_matrix(f"adata.obsm[{use_rep!r}]", z, n_obs=adata.n_obs)
        z = z.astype(np.float64)
        to_units, centre = 1.0, np.zeros(n_dims)
    else:
        raise ValueError("Pass a trained `model=` or `use_rep=` naming a latent in adata.obsm.")
    z = z * to_units
    info = {
        "n_dims": n_dims,
        "anchors": len(rows),
        "anchor_weight": anchor_weight,
        "latent_dims": int(z.shape[1]),
        "unit_factor": float(to_units),
    }
    if z.shape[1] == n_dims:
        coords = z + centre
        if len(rows) >= n_dims + 1:
            scale, rotation, shift = similarity_fit(coords[rows], anchor_pos)
            coords = scale * coords @ rotation + shift
        info.update(method="latent", stress=0.0, n_iter=0)
    else:
        anchor_arg = (rows, anchor_pos) if len(rows) else None
        if adata.n_obs <= _DENSE_MAX:
            dissimilarities = cdist(z, z)
            info["method"] = "dense"
        else:
            from sklearn.neighbors import NearestNeighbors

            dist, idx = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(z).kneighbors(z)
            r = np.repeat(np.arange(len(z)), n_neighbors)
            dissimilarities = sparse.csr_matrix(
                (dist[:, 1:].ravel() + 1e-12, (r, idx[:, 1:].ravel())), shape=(len(z), len(z))
            )
            info["method"] = "sparse_knn"
        result = smacof(
            dissimilarities,
            n_components=n_dims,
            anchors=anchor_arg,
            anchor_weight=anchor_weight,
            max_iter=max_iter,
            eps=eps,
        )
        coords = result.coordinates + (centre if not len(rows) else 0)
        info.update(stress=float(result.stress), n_iter=int(result.n_iter))
    if copy:
        adata = adata.copy()
    adata.obsm[key_added] = coords
    adata.uns[reconstruction_uns_key(key_added)] = info
    return adata if copy else None

"""Spatial autocorrelation (Moran's I, Geary's C) of genes or embedding dimensions via squidpy."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from spatialvi._keys import OBSM, OBSP
from spatialvi._threads import torch_threads_kept


def spatial_autocorr(
    adata,
    mode: Literal["moran", "geary"] = "moran",
    genes=None,
    use_rep: str | None = None,
    layer: str | None = None,
    spatial_key: str = OBSM.SPATIAL,
    n_neighbors: int = 6,
) -> pd.Series:
    """Moran's I or Geary's C of genes or of the columns of ``adata.obsm[use_rep]``.

    Builds a kNN spatial graph (``n_neighbors`` neighbours, row-normalised weights, squidpy's
    ``spatial_autocorr`` defaults) on a private copy, so ``adata`` is not modified.

    Parameters
    ----------
    adata
        Annotated data with coordinates in ``obsm[spatial_key]``.
    mode
        ``'moran'`` or ``'geary'``.
    genes
        Genes (``var_names``) to score; all genes by default. Ignored with ``use_rep``.
    use_rep
        Score the columns of this ``obsm`` entry (e.g. a latent space) instead of genes.
    layer
        Layer to read genes from (default ``X``).
    spatial_key
        Coordinates key in ``obsm``.
    n_neighbors
        Number of spatial neighbours per observation.

    Returns
    -------
    Series of the statistic indexed by gene name or column number.
    """
    import anndata as ad
    import squidpy as sq

    from spatialvi._validation import (
        check_choice,
        check_coordinates,
        check_feature_matrix,
        check_int,
        check_obsm_key,
        get_matrix,
    )

    check_choice("mode", mode, ("moran", "geary"))
    check_int("n_neighbors", n_neighbors)
    coords = check_coordinates(adata, spatial_key)
    # The values are checked before the (slower) graph is built.
    if use_rep is not None:
        values = check_obsm_key(
            adata, use_rep, "use_rep", hint="Pass `use_rep=None` to score genes instead."
        )
        values = check_feature_matrix(f"adata.obsm[{use_rep!r}]", values, n_obs=adata.n_obs)
        values = values.astype(np.float64)
        names = [str(i) for i in range(values.shape[1])]
    else:
        if genes is None:
            genes = list(adata.var_names)
        genes = [genes] if isinstance(genes, str) else list(genes)
        missing = [g for g in genes if g not in adata.var_names]
        if missing:
            raise KeyError(
                f"`genes` names {len(missing)} genes not in adata.var_names: {missing[:5]}."
            )
        get_matrix(adata, layer)
        sub = adata[:, genes]
        x = sub.X if layer is None else sub.layers[layer]
    graph = ad.AnnData(obs=pd.DataFrame(index=adata.obs_names.copy()))
    graph.obsm[OBSM.SPATIAL] = coords
    sq.gr.spatial_neighbors_knn(graph, n_neighs=n_neighbors, spatial_key=OBSM.SPATIAL)
    if use_rep is not None:
        work = ad.AnnData(X=values, obs=graph.obs, var=pd.DataFrame(index=names))
    else:
        work = ad.AnnData(X=x, obs=graph.obs, var=pd.DataFrame(index=genes))
    work.obsp[OBSP.SPATIAL_CONNECTIVITIES] = graph.obsp[OBSP.SPATIAL_CONNECTIVITIES]
    # squidpy's parallel backend resets torch's intra-op thread count (see spatialvi._threads).
    with torch_threads_kept():
        result = sq.gr.spatial_autocorr(
            work,
            mode=mode,
            genes=list(work.var_names),
            n_perms=None,
            copy=True,
            show_progress_bar=False,
        )
    column = "I" if mode == "moran" else "C"
    return result.loc[list(work.var_names), column].astype(float)


def morans_i(adata, genes=None, use_rep: str | None = None, **kwargs) -> pd.Series:
    """Moran's I of genes or ``obsm`` columns; see :func:`spatial_autocorr`."""
    return spatial_autocorr(adata, mode="moran", genes=genes, use_rep=use_rep, **kwargs)


def gearys_c(adata, genes=None, use_rep: str | None = None, **kwargs) -> pd.Series:
    """Geary's C of genes or ``obsm`` columns; see :func:`spatial_autocorr`."""
    return spatial_autocorr(adata, mode="geary", genes=genes, use_rep=use_rep, **kwargs)

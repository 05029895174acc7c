"""Spatial scatter plots in the squidpy/scanpy style (matplotlib; return the Axes)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spatialvi._keys import OBSM


def spatial_scatter(
    adata,
    color: str,
    spatial_key: str = OBSM.SPATIAL,
    ax=None,
    size: float | None = None,
    title: str | None = None,
    cmap: str = "viridis",
    palette: str = "tab10",
    save: str | None = None,
):
    """Scatter the observations at their coordinates, coloured by an obs column or a gene.

    Categorical columns get a legend, numerical ones a colour bar. Image-like coordinates
    (y down) are drawn with the y axis inverted, as squidpy does.

    Parameters
    ----------
    adata
        Annotated data with coordinates in ``obsm[spatial_key]``.
    color
        ``obs`` column or gene name.
    spatial_key
        Coordinates key in ``obsm``.
    ax
        Axes to draw in; a new figure is made if ``None``.
    size
        Marker size (points²); chosen from the number of observations by default.
    title
        Axes title (default: ``color``).
    cmap, palette
        Colour map for numbers, palette for categories.
    save
        File to save the figure to.

    Returns
    -------
    The :class:`matplotlib.axes.Axes` drawn in.
    """
    import matplotlib.pyplot as plt

    from spatialvi._validation import check_coordinates

    coords = check_coordinates(adata, spatial_key)
    if color in adata.obs:
        values = adata.obs[color]
    elif color in adata.var_names:
        column = adata[:, color].X
        values = pd.Series(
            np.asarray(column.todense() if hasattr(column, "todense") else column).ravel()
        )
    else:
        raise KeyError(
            f"`color={color!r}` is neither an adata.obs column nor a gene in adata.var_names."
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    size = size if size is not None else float(np.clip(40000 / max(len(coords), 1), 1.0, 60.0))
    if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object:
        cats = pd.Categorical(values)
        colors = plt.get_cmap(palette)(np.arange(len(cats.categories)) % plt.get_cmap(palette).N)
        missing = cats.codes < 0
        if missing.any():
            ax.scatter(*coords[missing, :2].T, s=size, c="lightgrey", label="NA", linewidths=0)
        for k, name in enumerate(cats.categories):
            sel = cats.codes == k
            ax.scatter(*coords[sel, :2].T, s=size, color=colors[k], label=str(name), linewidths=0)
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, markerscale=2)
    else:
        sc = ax.scatter(
            *coords[:, :2].T, s=size, c=np.asarray(values, dtype=float), cmap=cmap, linewidths=0
        )
        ax.figure.colorbar(sc, ax=ax, fraction=0.046, pad=0.04)
    ax.set_aspect("equal")
    ax.invert_yaxis()
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(color if title is None else title)
    if save is not None:
        ax.figure.savefig(save, bbox_inches="tight", dpi=120)
    return ax

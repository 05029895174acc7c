"""Spatial scatter plots in the squidpy/scanpy style (matplotlib; return the Axes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    palette: str | Sequence | Mapping = "tab10",
    save: str | None = None,
):
    """Scatter the observations at their coordinates, coloured by an obs column or a gene.

    Categorical columns get a legend, numerical ones a colour bar. Image-like coordinates
    (y down) are drawn with the y axis inverted, as squidpy does.

    A category's colour is fixed by its position in the column's categories (or by
    ``palette`` when that is a mapping), not by which categories are present: two panels
    whose columns share categories in the same order, such as true domains and clusters
    renamed by :func:`spatialvi.metrics.match_labels`, colour the same label alike. The
    legend lists the categories present.

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
    cmap
        Colour map for numbers.
    palette
        Colours of the categories: a matplotlib colour map name (cycled through), a sequence
        of colours (cycled through, in category order) or a mapping from category to colour
        (every category present must be in it).
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
        colors = _category_colors(cats.categories, np.unique(cats.codes[cats.codes >= 0]), palette)
        missing = cats.codes < 0
        if missing.any():
            ax.scatter(*coords[missing, :2].T, s=size, c="lightgrey", label="NA", linewidths=0)
        for k, name in enumerate(cats.categories):
            sel = cats.codes == k
            if not sel.any():
                continue
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


def _category_colors(categories, present, palette) -> list:
    """One RGBA colour per category, by position (colour map, sequence) or name (mapping).

    ``present`` are the codes of the categories drawn: only those need a colour in a mapping.
    """
    from matplotlib import colormaps
    from matplotlib.colors import to_rgba

    if isinstance(palette, Mapping):
        absent = [categories[k] for k in present if categories[k] not in palette]
        if absent:
            raise KeyError(
                f"`palette` has no colour for the categories {absent}; "
                "give every category drawn a colour or pass a colour map name."
            )
        return [to_rgba(palette[c]) if c in palette else None for c in categories]
    if isinstance(palette, str):
        cmap = colormaps[palette]
        return [cmap(k % cmap.N) for k in range(len(categories))]
    if isinstance(palette, Sequence) and len(palette) > 0:
        return [to_rgba(palette[k % len(palette)]) for k in range(len(categories))]
    raise TypeError(
        f"`palette` must be a colour map name, a non-empty sequence of colours or a mapping "
        f"from category to colour, not {palette!r}."
    )

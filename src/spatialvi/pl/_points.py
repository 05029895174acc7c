"""Plots of point patterns in images: images with their points, and summary functions by group."""

from __future__ import annotations

import numpy as np

from spatialvi._keys import OBS, OBSM, points_count_key


def _rows(points: np.ndarray, i: int) -> np.ndarray:
    row = points[i]
    return row[~np.isnan(row[:, 0])]


def point_images(
    adata,
    obs: list | None = None,
    n_per_group: int = 2,
    groupby: str | None = OBS.LABEL,
    image_key: str = OBSM.IMAGE,
    points_key: str | None = OBSM.POINTS,
    detected_key: str | None = None,
    channel: int = 0,
    axes_size: float = 2.2,
    save: str | None = None,
):
    """Images with their point sets: true points as circles, detected points as crosses.

    Parameters
    ----------
    adata
        AnnData with ``obsm[image_key]`` (``n × C × H × W``) and optionally point sets
        (``n × K × 2``, image units, NaN-padded).
    obs
        Observations to show (names or integer positions); by default the first
        ``n_per_group`` of each group of ``obs[groupby]`` (one column per group), or the first
        ``n_per_group`` observations without ``groupby``.
    n_per_group
        Images per group (rows of the grid).
    groupby
        ``obs`` column grouping the images, or ``None``.
    image_key, points_key, detected_key
        ``obsm`` keys of the images, the true and the detected points (``None`` to skip).
    channel
        Image channel shown.
    axes_size
        Side of each panel in inches.
    save
        File to save the figure to.

    Returns
    -------
    The :class:`matplotlib.figure.Figure`.
    """
    import matplotlib.pyplot as plt

    from spatialvi._validation import check_images, check_points

    images = check_images(adata, image_key)
    h, w = images.shape[-2:]
    scale = max(h, w)
    sets = {
        key: check_points(adata, key, image_key, points_count_key(key))
        for key in (points_key, detected_key)
        if key is not None
    }
    if obs is not None:
        index = [adata.obs_names.get_loc(o) if isinstance(o, str) else int(o) for o in obs]
        columns = [("", index)]
    elif groupby is not None:
        if groupby not in adata.obs:
            raise KeyError(
                f"`groupby={groupby!r}` is not an adata.obs column; pass groupby=None or obs=[...]."
            )
        labels = adata.obs[groupby]
        groups = labels.cat.categories if hasattr(labels, "cat") else sorted(labels.unique())
        columns = [
            (str(g), list(np.flatnonzero((labels == g).to_numpy())[:n_per_group])) for g in groups
        ]
    else:
        columns = [("", list(range(min(n_per_group, adata.n_obs))))]
    n_rows = max(len(idx) for _, idx in columns)
    fig, axes = plt.subplots(
        n_rows,
        len(columns),
        figsize=(axes_size * len(columns), axes_size * n_rows),
        squeeze=False,
    )
    for c, (title, idx) in enumerate(columns):
        for r in range(n_rows):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if r >= len(idx):
                ax.set_axis_off()
                continue
            i = idx[r]
            ax.imshow(images[i, channel], cmap="gray", interpolation="nearest")
            for key, style in ((points_key, "true"), (detected_key, "detected")):
                if key is None:
                    continue
                pixels = _rows(sets[key], i) * scale - 0.5
                if style == "true":
                    ax.scatter(*pixels.T, s=30, facecolors="none", edgecolors="tab:orange", lw=0.8)
                else:
                    ax.scatter(*pixels.T, s=14, marker="x", c="tab:cyan", lw=0.8)
            if r == 0 and title:
                ax.set_title(title, fontsize=9)
    handles = []
    if points_key is not None:
        handles.append(
            plt.Line2D([], [], ls="", marker="o", mfc="none", mec="tab:orange", label=points_key)
        )
    if detected_key is not None:
        handles.append(plt.Line2D([], [], ls="", marker="x", c="tab:cyan", label=detected_key))
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.05 if handles else 0, 1, 1))
    if save is not None:
        fig.savefig(save, dpi=150, bbox_inches="tight")
    return fig


_FUNCTION_LABELS = {"L": "L(r) − r", "K": "K(r)", "g": "g(r)", "G": "G(r)"}


def _summary(function: str):
    """The metric computing ``function`` (``'L'``, ``'K'``, ``'g'`` or ``'G'``)."""
    from spatialvi import metrics

    funcs = {
        "L": metrics.l_function,
        "K": metrics.k_function,
        "g": metrics.pair_correlation,
        "G": metrics.g_function,
    }
    if function not in funcs:
        raise ValueError(f"`function` must be one of {sorted(funcs)}, got {function!r}.")
    return funcs[function]


def _window_and_radii(adata, window, radii):
    """The window (given, from the images, from ``uns['image']``, else the unit square) and the
    radii (given, else 64 up to ¼ of the shorter side)."""
    from spatialvi._keys import UNS

    if window is None:
        if OBSM.IMAGE in adata.obsm:
            h, w = np.asarray(adata.obsm[OBSM.IMAGE]).shape[-2:]
            window = (0.0, w / max(h, w), 0.0, h / max(h, w))
        elif UNS.IMAGE in adata.uns and "window" in adata.uns[UNS.IMAGE]:
            window = tuple(adata.uns[UNS.IMAGE]["window"])
        else:
            window = (0.0, 1.0, 0.0, 1.0)
    side = min(window[1] - window[0], window[3] - window[2])
    r = np.linspace(0.0, side / 4, 64) if radii is None else np.asarray(radii, dtype=float)
    return window, r


def _curves(function: str, patterns, r, window) -> np.ndarray:
    """``function`` of each pattern (rows; NaN where undefined, e.g. L of < 2 points), drawn
    values: ``L(r) − r`` for L."""
    import warnings

    func = _summary(function)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined for tiny patterns: NaN rows
        values = np.array([func(p[~np.isnan(p[:, 0])], r, window) for p in patterns])
    values = values.reshape(len(patterns), len(r))
    return values - r if function == "L" else values


def _groups(adata, groupby):
    """``[(name, obs indices)]`` for ``groupby`` (one group ``'all'`` for ``None``)."""
    if groupby is None:
        return [("all", np.arange(adata.n_obs))]
    if groupby not in adata.obs:
        raise KeyError(f"`groupby={groupby!r}` is not an adata.obs column; pass groupby=None.")
    labels = adata.obs[groupby]
    names = labels.cat.categories if hasattr(labels, "cat") else sorted(labels.unique())
    return [(str(g), np.flatnonzero((labels == g).to_numpy())) for g in names]


def summary_function(
    adata,
    function: str = "L",
    radii=None,
    groupby: str | None = OBS.LABEL,
    points_key: str = OBSM.POINTS,
    window=None,
    ax=None,
    save: str | None = None,
):
    """Mean ± sd of a summary function of each image's points, per group.

    ``function`` is ``'L'`` (drawn as ``L(r) − r``, 0 for complete spatial randomness),
    ``'K'``, ``'g'`` (pair correlation, 1 for CSR) or ``'G'``; see :mod:`spatialvi.metrics`.
    Images with too few points for the function are left out of the mean (and counted in the
    legend).

    Parameters
    ----------
    adata
        AnnData with point sets in ``obsm[points_key]``.
    function
        Which summary function.
    radii
        Distances; by default 64 up to ¼ of the shorter window side.
    groupby
        ``obs`` column of groups (one curve each), or ``None`` for one curve.
    points_key
        ``obsm`` key of the point sets.
    window
        ``(x_min, x_max, y_min, y_max)``; by default from the images (``obsm['image']``) or
        ``uns['image']['window']``, else the unit square.
    ax, save
        Axes to draw in, file to save to.

    Returns
    -------
    The :class:`matplotlib.axes.Axes` drawn in.
    """
    import matplotlib.pyplot as plt

    from spatialvi._validation import check_points

    _summary(function)
    points = check_points(adata, points_key, count_key=points_count_key(points_key))
    window, r = _window_and_radii(adata, window, radii)
    groups = _groups(adata, groupby)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    for name, idx in groups:
        values = _curves(function, points[idx], r, window)
        values = values[np.isfinite(values[:, 1:]).all(axis=1)]
        mean, sd = values.mean(axis=0), values.std(axis=0)
        (line,) = ax.plot(r, mean, label=f"{name} (n={len(values)})")
        ax.fill_between(r, mean - sd, mean + sd, color=line.get_color(), alpha=0.15, lw=0)
    reference = {"L": 0.0, "g": 1.0}
    if function in reference:
        ax.axhline(reference[function], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("r (image units)")
    ax.set_ylabel(_FUNCTION_LABELS[function])
    ax.legend(frameon=False, fontsize=8)
    if save is not None:
        ax.figure.savefig(save, dpi=150, bbox_inches="tight")
    return ax


def simulation_envelope(
    adata,
    simulated_key: str = OBSM.POINTS_SIMULATED,
    observed_key: str = OBSM.POINTS,
    function: str = "L",
    groupby: str | None = OBS.LABEL,
    radii=None,
    window=None,
    alpha: float = 0.05,
    save: str | None = None,
):
    """Observed against simulated patterns, per group: the global Monte Carlo band.

    One panel per group: the band in which a whole summary curve of a simulated pattern lies
    with probability ``1 − alpha`` (grey; :func:`spatialvi.metrics.envelope_test`, pooling all
    samples of the group's images), the mean simulated curve (dashed), the observed curves
    (thin) and their mean (thick). The title gives the fraction of observed patterns the test
    rejects at ``alpha``: about ``alpha`` when the simulations reproduce the observed patterns.

    Parameters
    ----------
    adata
        AnnData with the observed point sets in ``obsm[observed_key]`` (``n × K_max × 2``) and
        simulated ones in ``obsm[simulated_key]`` (``n × n_samples × K_max × 2``, e.g. from
        :func:`spatialvi.tl.simulate_points`).
    simulated_key, observed_key
        ``obsm`` keys of the simulated and the observed patterns.
    function
        ``'L'`` (drawn as ``L(r) − r``), ``'K'``, ``'g'`` or ``'G'``.
    groupby
        ``obs`` column of groups (one panel each), or ``None`` for one panel.
    radii, window
        As in :func:`summary_function`; ``radii`` should start above 0 for ``'g'``.
    alpha
        Level of the band and of the test (needs ``⌈1/alpha⌉ − 1`` simulated patterns per group).
    save
        File to save the figure to.

    Returns
    -------
    The :class:`matplotlib.figure.Figure`.
    """
    import matplotlib.pyplot as plt

    from spatialvi import metrics
    from spatialvi._validation import check_points

    _summary(function)
    observed = check_points(adata, observed_key, count_key=points_count_key(observed_key))
    simulated = check_points(adata, simulated_key, samples=True)
    window, r = _window_and_radii(adata, window, radii)
    groups = _groups(adata, groupby)
    n_cols = min(3, len(groups))
    n_rows = int(np.ceil(len(groups) / n_cols))
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(3.6 * n_cols, 3.0 * n_rows), squeeze=False, sharey=True
    )
    for ax, (name, idx) in zip(axes.flat, groups, strict=False):
        obs = _curves(function, observed[idx], r, window)
        sims = _curves(function, simulated[idx].reshape(-1, *simulated.shape[2:]), r, window)
        test = metrics.envelope_test(obs, sims, alpha=alpha)
        ax.fill_between(r, test.lower, test.upper, color="0.8", lw=0, label="simulated band")
        ax.plot(r, test.centre, color="0.3", ls="--", lw=1.2, label="simulated mean")
        finite = obs[np.isfinite(obs).all(axis=1)]
        ax.plot(r, finite.T, color="tab:blue", lw=0.4, alpha=0.25)
        ax.plot(r, finite.mean(axis=0), color="tab:blue", lw=2.0, label="observed mean")
        ax.set_title(f"{name}: {test.rejected:.0%} rejected (α = {alpha:g})", fontsize=9)
        ax.set_xlabel("r (image units)")
    for ax in axes.flat[len(groups) :]:
        ax.set_axis_off()
    for ax in axes[:, 0]:
        ax.set_ylabel(_FUNCTION_LABELS[function])
    axes.flat[0].legend(frameon=False, fontsize=7)
    fig.tight_layout()
    if save is not None:
        fig.savefig(save, dpi=150, bbox_inches="tight")
    return fig


def potentials(
    model,
    adata=None,
    groupby: str | None = OBS.LABEL,
    radii=None,
    show_phi: bool = True,
    grid_size: int = 32,
    save: str | None = None,
):
    """The Gibbs potentials a trained SIVAE infers from each image, averaged per group.

    Left: the pair potential ψ(r) (mean ± sd over each group's images; positive is repulsion,
    negative attraction, 0 no interaction), drawn up to the interaction range where the decay
    w(r) switches it off. Right (``show_phi``): the mean first-order potential φ(u) of each
    group over the window (low φ = high intensity).

    Parameters
    ----------
    model
        A trained :class:`~spatialvi.model.SIVAE`.
    adata
        AnnData with images (default: the training data).
    groupby
        ``obs`` column grouping the images, or ``None``.
    radii, grid_size
        Passed to :meth:`~spatialvi.model.SIVAE.get_potentials`.
    show_phi
        Also draw the φ maps.
    save
        File to save the figure to.

    Returns
    -------
    The :class:`matplotlib.figure.Figure`.
    """
    import matplotlib.pyplot as plt

    target = model.adata if adata is None else adata
    pots = model.get_potentials(target, radii=radii, grid_size=grid_size)
    groups = _groups(target, groupby)
    n_maps = len(groups) if show_phi else 0
    fig, axes = plt.subplots(
        1,
        1 + n_maps,
        figsize=(4.5 + 2.2 * n_maps, 3.6),
        squeeze=False,
        gridspec_kw={"width_ratios": [2.0] + [1.0] * n_maps},
    )
    ax = axes[0, 0]
    r = pots["radii"]
    x_min, x_max = pots["x"][0], pots["x"][-1]
    y_min, y_max = pots["y"][0], pots["y"][-1]
    phi_lims = np.percentile(pots["phi"], [2, 98])
    for k, (name, sel) in enumerate(groups):
        mean, sd = pots["psi"][sel].mean(0), pots["psi"][sel].std(0)
        (line,) = ax.plot(r, mean, label=name)
        ax.fill_between(r, mean - sd, mean + sd, color=line.get_color(), alpha=0.15, lw=0)
        if show_phi:
            m = axes[0, 1 + k]
            im = m.imshow(
                pots["phi"][sel].mean(0),
                origin="upper",
                extent=(x_min, x_max, y_max, y_min),
                vmin=phi_lims[0],
                vmax=phi_lims[1],
                cmap="viridis",
            )
            m.set_title(name, fontsize=8)
            m.set_xticks([])
            m.set_yticks([])
    ax.axhline(0.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("r (image units)")
    ax.set_ylabel("ψ(r)  (> 0 repulsion)")
    ax.legend(frameon=False, fontsize=7)
    if show_phi:
        fig.colorbar(im, ax=list(axes[0, 1:]), shrink=0.8, label="φ(u)")
    if save is not None:
        fig.savefig(save, dpi=150, bbox_inches="tight")
    return fig

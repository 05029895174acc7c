"""Image-conditioned point-process simulation from a trained SIVAE."""

from __future__ import annotations

import numpy as np

from spatialvi._keys import OBSM, UNS, _check_key_added, points_count_key

#: Distance bins of the tabulated pair potential and cells per side of the tabulated φ.
PAIR_BINS, PHI_GRID = 256, 64


def simulate_points(
    model,
    adata=None,
    n_samples: int = 1,
    n_steps: int = 50_000,
    max_points: int | None = None,
    key_added: str = OBSM.POINTS_SIMULATED,
    random_state: int | None = 0,
    copy: bool = False,
    progress_bar: bool | None = None,
):
    """Simulate point patterns from the intensity a trained SIVAE infers from each image.

    For every image the posterior-mean latent fixes the Gibbs potentials; birth–death–shift
    Metropolis–Hastings (:mod:`spatialvi.sim`'s kernel, spatstat's proposal probabilities, from
    the empty pattern, ``n_steps`` steps) then samples from
    ``λ(u; X) = exp(−φ(u) − Σ_v w(‖u − v‖) ψ(‖u − v‖))`` on the image's window, with φ tabulated
    on a 64 × 64 grid and w·ψ on 256 distance bins up to the interaction range. Only the image
    is needed (no points). Attractive pair potentials (ψ < 0) make no stable process: the chain
    can run away, so births beyond ``max_points`` are refused and the fraction of chains that hit
    the cap is reported.

    Parameters
    ----------
    model
        A trained :class:`~spatialvi.model.SIVAE`.
    adata
        AnnData with images (default: the model's training data).
    n_samples
        Patterns per image.
    n_steps
        Metropolis–Hastings steps per pattern.
    max_points
        Cap on the points of a pattern; by default twice the largest training count plus 10.
    key_added
        ``obsm`` key of the patterns (``n × n_samples × K_max × 2`` float32, NaN-padded); the
        mean count per image goes to ``obs['n_<key_added>']`` and the run parameters (with
        ``cap_hit_fraction``) to ``uns['simulate_points'][key_added]``.
    random_state
        Seed.
    copy
        Return a modified copy instead of writing into ``adata``.
    progress_bar
        Show a progress bar (default: for more than 200 images).

    Returns
    -------
    The copy with ``copy=True``, else ``None``.
    """
    from tqdm.auto import tqdm

    from spatialvi.sim._mh_kernel import run_gibbs_chain

    _check_key_added(key_added)
    if int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"`n_samples` must be a positive integer, got {n_samples!r}.")
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"`n_steps` must be a positive integer, got {n_steps!r}.")
    target = model.adata if adata is None else adata
    if copy:
        target = target.copy()
    cap = int(max_points) if max_points is not None else 2 * model.max_training_points_ + 10
    if cap < 1:
        raise ValueError(f"`max_points` must be a positive integer, got {max_points!r}.")
    window = model.window
    head = model.module.head
    bins = (np.arange(PAIR_BINS) + 0.5) * head.interaction_range / PAIR_BINS
    potentials = model.get_potentials(target, radii=bins, grid_size=PHI_GRID)
    pair = potentials["psi"] * potentials["decay"][None, :]
    rng = np.random.default_rng(random_state)
    n_obs = len(pair)
    patterns: list[list[np.ndarray]] = []
    hits = 0
    show = n_obs > 200 if progress_bar is None else progress_bar
    for i in tqdm(range(n_obs), desc="simulating", disable=not show):
        row = []
        for _ in range(int(n_samples)):
            points, capped = run_gibbs_chain(
                -potentials["phi"][i],
                window,
                pair[i],
                head.interaction_range,
                int(n_steps),
                cap,
                rng,
            )
            hits += capped > 0
            row.append(points)
        patterns.append(row)
    k_max = max((len(p) for row in patterns for p in row), default=0)
    out = np.full((n_obs, int(n_samples), k_max, 2), np.nan, dtype=np.float32)
    for i, row in enumerate(patterns):
        for j, p in enumerate(row):
            out[i, j, : len(p)] = p
    target.obsm[key_added] = out
    target.obs[points_count_key(key_added)] = (~np.isnan(out[..., 0])).sum(-1).mean(-1)
    runs = dict(target.uns.get(UNS.SIMULATE_POINTS, {}))
    runs[key_added] = {
        "n_samples": int(n_samples),
        "n_steps": int(n_steps),
        "max_points": cap,
        "cap_hit_fraction": hits / (n_obs * int(n_samples)) if n_obs else 0.0,
        "random_state": random_state,
    }
    target.uns[UNS.SIMULATE_POINTS] = runs
    return target if copy else None

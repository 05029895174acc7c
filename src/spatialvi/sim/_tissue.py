"""Simulated spatial transcriptomics sections: the package's embedded default data."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse

from spatialvi._keys import LAYERS, OBS, OBSM, UNS, VAR
from spatialvi._validation import check_int, check_number
from spatialvi.geometry import hex_grid, subspot_offsets

NONE_MARKER = "none"


def _layout(pattern: str, n_domains: int, rng: np.random.Generator) -> tuple[callable, callable]:
    """Draw a domain layout on the unit square: returns (domain(u, v), gradient(u, v))."""
    if pattern == "layers":
        # Cortex-like bands of unequal thickness with wavy boundaries.
        widths = rng.dirichlet(np.full(n_domains, 4.0))
        breaks = np.cumsum(widths)[:-1]
        amp, freq, phase = rng.uniform(0.04, 0.08), rng.uniform(0.6, 1.4), rng.uniform(0, 2 * np.pi)

        def domain(u, v):
            t = v + amp * np.sin(2 * np.pi * freq * u + phase) - amp * np.sin(phase)
            return np.digitize(t, breaks)

    elif pattern == "blobs":
        # Warped Voronoi cells around well-separated centres.
        centres = rng.uniform(0.1, 0.9, size=(n_domains, 2))
        phase = rng.uniform(0, 2 * np.pi, size=2)

        def domain(u, v):
            uw = u + 0.05 * np.sin(2 * np.pi * 2 * v + phase[0])
            vw = v + 0.05 * np.sin(2 * np.pi * 2 * u + phase[1])
            d = (uw[:, None] - centres[None, :, 0]) ** 2 + (vw[:, None] - centres[None, :, 1]) ** 2
            return np.argmin(d, axis=1)

    else:
        raise ValueError(f"`pattern` must be 'layers' or 'blobs', got {pattern!r}.")
    angle = rng.uniform(0, 2 * np.pi)

    def gradient(u, v):
        return np.cos(angle) * (u - 0.5) + np.sin(angle) * (v - 0.5)

    return domain, gradient


def synthetic_tissue(
    n_spots: int = 3000,
    n_genes: int = 500,
    n_domains: int = 5,
    pattern: Literal["layers", "blobs"] = "layers",
    n_sections: int = 1,
    batch_effect: float = 0.5,
    subspot_factor: int = 1,
    frac_markers: float = 0.2,
    frac_gradient: float = 0.05,
    marker_lfc: tuple[float, float] = (0.6, 1.2),
    library_size: float = 1500.0,
    library_sd: float = 0.4,
    dispersion: float = 3.0,
    spot_distance: float = 100.0,
    random_state: int = 0,
):
    """Simulate a spatial transcriptomics section (or several) with known domains.

    Spots lie on a Visium-like hexagonal grid. The tissue is cut into ``n_domains`` spatial
    domains (layered bands or blobs). Marker genes are up-regulated in one domain each,
    gradient genes follow a smooth spatial trend, the remaining genes are spatially uniform.
    Counts are negative binomial around ``library × proportion`` with log-normal library sizes
    and per-gene overdispersion.

    Parameters
    ----------
    n_spots
        Spots per section.
    n_genes
        Number of genes.
    n_domains
        Number of spatial domains (``obs['domain']``).
    pattern
        ``'layers'``: cortex-like bands with wavy boundaries; ``'blobs'``: warped Voronoi cells.
    n_sections
        Number of sections. They share the domain layout but are sampled at spots shifted by a
        random sub-spot offset, and each has its own batch effect (``obs['section']``).
    batch_effect
        Standard deviation of each section's per-gene log-scale effect (and of a per-section
        library-size factor at half that scale). Ignored for a single section.
    subspot_factor
        Simulate each spot as ``subspot_factor × subspot_factor`` sub-spots on a square grid
        inside the spot (offsets ``((i + 0.5)/f − 0.5)·spot_distance``), aggregate their means
        to the spot, and keep the sub-spot truth in ``uns['synthetic_tissue']['subspots']``
        (``spatial``, ``domain``, ``spot`` index, ``mean`` proportions). ``1`` = spot level only.
    frac_markers
        Fraction of genes that mark one domain each (``var['marker_of']``).
    frac_gradient
        Fraction of genes following a smooth spatial gradient.
    marker_lfc
        Range of the natural-log fold change of a marker in its domain.
    library_size
        Median total counts per spot.
    library_sd
        Standard deviation of log library size.
    dispersion
        Median inverse dispersion θ of the negative binomial (smaller = more overdispersed).
    spot_distance
        Distance between neighbouring spot centres (µm, as in Visium: 100).
    random_state
        Random seed; the same seed gives the same data.

    Returns
    -------
    :class:`~anndata.AnnData` with raw counts (CSR, int32) in ``X``; ``obsm['spatial']``;
    ``obs['domain']`` (and ``obs['section']`` for several sections); ``layers['true_mean']``,
    the noise-free expression proportions (rows sum to 1); ``var['spatially_variable']``,
    ``var['marker_of']`` (domain or ``'none'``) and ``var['true_dispersion']``; the parameters in
    ``uns['synthetic_tissue']``.
    """
    import anndata as ad

    for name, value in (("n_spots", n_spots), ("n_genes", n_genes), ("n_sections", n_sections)):
        check_int(name, value)
    check_int("n_domains", n_domains, minimum=2, maximum=20)
    check_int("subspot_factor", subspot_factor)
    if not 0 <= frac_markers + frac_gradient <= 1:
        raise ValueError("`frac_markers + frac_gradient` must lie in [0, 1].")

    rng = np.random.default_rng(random_state)
    domain_fn, gradient_fn = _layout(pattern, n_domains, rng)
    domain_names = np.array([f"domain_{k}" for k in range(n_domains)])

    # Genes: baseline composition, role, and effect sizes.
    base_log = rng.normal(0.0, 1.0, n_genes)
    n_markers = round(frac_markers * n_genes)
    n_gradient = round(frac_gradient * n_genes)
    roles = rng.permutation(n_genes)
    marker_genes, gradient_genes = roles[:n_markers], roles[n_markers : n_markers + n_gradient]
    marker_of = np.full(n_genes, NONE_MARKER, dtype=object)
    marker_domain = np.arange(n_markers) % n_domains  # every domain gets markers
    marker_of[marker_genes] = domain_names[marker_domain]
    domain_lfc = np.zeros((n_domains, n_genes))
    domain_lfc[marker_domain, marker_genes] = rng.uniform(*marker_lfc, n_markers)
    gradient_lfc = np.zeros(n_genes)
    gradient_lfc[gradient_genes] = rng.choice([-1.0, 1.0], n_gradient) * rng.uniform(
        1.0, 2.0, n_gradient
    )
    theta = dispersion * np.exp(rng.normal(0.0, 0.5, n_genes))
    spatially_variable = np.zeros(n_genes, dtype=bool)
    spatially_variable[np.concatenate([marker_genes, gradient_genes])] = True

    base = hex_grid(n_spots, spot_distance)
    extent = base.max(axis=0) + spot_distance
    f = int(subspot_factor)
    sub_offsets = subspot_offsets(f, spot_distance, include_centre=False)

    def proportions(xy):
        u, v = xy[:, 0] / extent[0], xy[:, 1] / extent[1]
        dom = domain_fn(u, v)
        log_rate = (
            base_log[None, :] + domain_lfc[dom] + gradient_fn(u, v)[:, None] * gradient_lfc[None, :]
        )
        rate = np.exp(log_rate)
        return dom, rate

    blocks, obs_frames, coords_all, fine_all, mean_all = [], [], [], [], []
    for s in range(n_sections):
        shift = np.zeros(2) if s == 0 else rng.uniform(0, spot_distance, 2)
        coords = base + shift
        fine_xy = (coords[:, None, :] + sub_offsets[None, :, :]).reshape(-1, 2)
        fine_dom, fine_rate = proportions(fine_xy)
        fine_prop = fine_rate / fine_rate.sum(axis=1, keepdims=True)
        # A spot's expression is the average of its sub-spots (Visium spots mix cells).
        prop = fine_prop.reshape(n_spots, f * f, n_genes).mean(axis=1)
        spot_dom = domain_fn(coords[:, 0] / extent[0], coords[:, 1] / extent[1])
        lib = library_size * np.exp(rng.normal(0.0, library_sd, n_spots))
        if n_sections > 1:
            gene_batch = np.exp(rng.normal(0.0, batch_effect, n_genes))
            lib = lib * np.exp(rng.normal(0.0, batch_effect / 2))
            observed = prop * gene_batch[None, :]
            observed /= observed.sum(axis=1, keepdims=True)
        else:
            observed = prop
        mu = lib[:, None] * observed
        # NB(μ, θ) as a Gamma–Poisson mixture.
        counts = rng.poisson(rng.gamma(theta[None, :], mu / theta[None, :]))
        blocks.append(sparse.csr_matrix(counts.astype(np.int32)))
        prefix = f"section_{s}_" if n_sections > 1 else ""
        obs = pd.DataFrame(
            {OBS.DOMAIN: domain_names[spot_dom]},
            index=[f"{prefix}spot_{i:05d}" for i in range(n_spots)],
        )
        if n_sections > 1:
            obs[OBS.SECTION] = f"section_{s}"
        obs_frames.append(obs)
        coords_all.append(coords)
        mean_all.append(prop.astype(np.float32))
        if f > 1:
            fine_all.append(
                (
                    fine_xy,
                    domain_names[fine_dom],
                    s * n_spots + np.repeat(np.arange(n_spots), f * f),
                    fine_prop.astype(np.float32),
                )
            )

    obs = pd.concat(obs_frames)
    obs[OBS.DOMAIN] = pd.Categorical(obs[OBS.DOMAIN], categories=list(domain_names))
    if n_sections > 1:
        obs[OBS.SECTION] = pd.Categorical(obs[OBS.SECTION])
    var = pd.DataFrame(
        {
            VAR.SPATIALLY_VARIABLE: spatially_variable,
            VAR.MARKER_OF: pd.Categorical(marker_of, categories=[*domain_names, NONE_MARKER]),
            "true_dispersion": theta,
        },
        index=[f"gene_{g:04d}" for g in range(n_genes)],
    )
    adata = ad.AnnData(X=sparse.vstack(blocks).tocsr(), obs=obs, var=var)
    adata.obsm[OBSM.SPATIAL] = np.vstack(coords_all)
    adata.layers[LAYERS.TRUE_MEAN] = np.vstack(mean_all)
    params = {
        "n_spots": n_spots,
        "n_genes": n_genes,
        "n_domains": n_domains,
        "pattern": pattern,
        "n_sections": n_sections,
        "batch_effect": batch_effect,
        "subspot_factor": f,
        "frac_markers": frac_markers,
        "frac_gradient": frac_gradient,
        "marker_lfc": list(marker_lfc),
        "library_size": library_size,
        "library_sd": library_sd,
        "dispersion": dispersion,
        "spot_distance": spot_distance,
        "random_state": random_state,
    }
    if f > 1:
        params["subspots"] = {
            "spatial": np.vstack([b[0] for b in fine_all]),
            "domain": np.concatenate([b[1] for b in fine_all]).astype(str),
            "spot": np.concatenate([b[2] for b in fine_all]),
            "mean": np.vstack([b[3] for b in fine_all]),
        }
    adata.uns[UNS.SYNTHETIC_TISSUE] = params
    return adata


def held_out_section(
    n_spots: int = 700,
    n_genes: int = 100,
    fraction: float = 0.1,
    random_state: int = 0,
    split_state: int = 0,
    **kwargs,
):
    """A simulated section with a random fraction of its spots held out: the interpolation task.

    The section is :func:`synthetic_tissue` with four domains, 2 × 2 sub-spots and marker fold
    changes in ``(1.0, 1.5)`` unless ``kwargs`` say otherwise; train on ``adata[~held]`` and
    predict at ``adata.obsm['spatial'][held]``. The tests' and benchmarks' interpolation,
    enhancement and DE checks are built on it.

    Parameters
    ----------
    n_spots, n_genes
        Size of the section.
    fraction
        Fraction of the spots held out, in ``(0, 1)``; ``round(fraction * n_obs)`` spots.
    random_state
        Seed of the simulation.
    split_state
        Seed of the choice of held-out spots (independent of the simulation).
    **kwargs
        Further arguments of :func:`synthetic_tissue`.

    Returns
    -------
    ``(adata, held)``: the whole section and a boolean mask over its spots (``True`` = held out).
    """
    fraction = check_number("fraction", fraction, low=0, high=1, low_open=True, high_open=True)
    kwargs = {"n_domains": 4, "subspot_factor": 2, "marker_lfc": (1.0, 1.5), **kwargs}
    adata = synthetic_tissue(n_spots=n_spots, n_genes=n_genes, random_state=random_state, **kwargs)
    held = np.zeros(adata.n_obs, dtype=bool)
    n_held = max(1, round(fraction * adata.n_obs))
    held[np.random.default_rng(split_state).choice(adata.n_obs, n_held, replace=False)] = True
    return adata, held

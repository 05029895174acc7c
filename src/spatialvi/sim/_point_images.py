"""Images of point patterns and the six-class benchmark dataset of SIVAE (ICLR 2026).

Points are in the SPEC's image units: for an ``H × W`` image with ``s = max(H, W)``, pixel
``(col, row)`` has centre ``((col + 0.5)/s, (row + 0.5)/s)``; a square image's window is the
unit square.
"""

from __future__ import annotations

import numpy as np

from spatialvi._keys import OBS, OBSM, UNS
from spatialvi._validation import check_int
from spatialvi.sim._point_processes import (
    UNIT_SQUARE,
    _positive,
    _rng,
    poisson_process,
    strauss_beta,
    strauss_process,
    thomas_process,
)

#: The six classes of :func:`point_pattern_dataset`, in order.
PATTERN_CLASSES = (
    "poisson",
    "thomas",
    "strauss",
    "poisson_inhom",
    "thomas_inhom",
    "strauss_inhom",
)
#: Thomas parameters of the dataset: κ parents per unit area, offspring spread σ.
THOMAS_KAPPA, THOMAS_SIGMA = 8.0, 0.03
#: Strauss parameters of the dataset: interaction γ and range R (β is calibrated).
STRAUSS_GAMMA, STRAUSS_R = 0.1, 0.05
#: Slope of the inhomogeneous classes' log-linear trend along x.
TREND_SLOPE = 2.0


def linear_log_trend(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The inhomogeneous classes' trend ``f(x, y) = exp(2x)``: intensity ×7.4 from left to right."""
    return np.exp(TREND_SLOPE * np.asarray(x, dtype=np.float64)) * np.ones_like(y, dtype=np.float64)


def render_points(
    points,
    shape: int | tuple[int, int] = 64,
    spot_sigma: float = 1.0,
    amplitude: float = 1.0,
    snr: float | None = 12.8,
    random_state=None,
) -> np.ndarray:
    """Render points as Gaussian spots plus Gaussian noise.

    Each point adds ``amplitude · exp(−d²/(2 spot_sigma²))`` (``d`` in pixels) to a zero
    background; noise of standard deviation ``amplitude / snr`` is added to every pixel, so
    ``snr`` is the spot amplitude over the noise level (values are not clipped).

    Parameters
    ----------
    points
        ``n × 2`` points in the image units of an image of this ``shape`` (NaN rows ignored).
    shape
        ``H × W`` in pixels, or one int for a square image.
    spot_sigma
        Spot width: standard deviation of each Gaussian spot, in pixels.
    amplitude
        Peak value of an isolated spot.
    snr
        Amplitude over noise standard deviation; ``None`` for a noise-free image.
    random_state
        Seed or :class:`numpy.random.Generator` for the noise.

    Returns
    -------
    ``H × W`` float32 image.
    """
    height, width = (shape, shape) if np.isscalar(shape) else tuple(int(v) for v in shape)
    spot_sigma = _positive("spot_sigma", spot_sigma)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    pts = pts[~np.isnan(pts[:, 0])]
    scale = max(height, width)
    col, row = pts[:, 0] * scale - 0.5, pts[:, 1] * scale - 0.5
    # A sum of separable Gaussians is one matrix product: (H × n) @ (n × W).
    gy = np.exp(-((np.arange(height)[:, None] - row[None, :]) ** 2) / (2 * spot_sigma**2))
    gx = np.exp(-((np.arange(width)[:, None] - col[None, :]) ** 2) / (2 * spot_sigma**2))
    image = amplitude * (gy @ gx.T)
    if snr is not None:
        snr = _positive("snr", snr)
        image = image + _rng(random_state).normal(0.0, amplitude / snr, image.shape)
    return image.astype(np.float32)


def dataset_parameters(expected_points: float = 52.0) -> dict[str, dict]:
    """Process parameters of each class of :func:`point_pattern_dataset` on the unit square.

    Poisson: intensity = ``expected_points``. Thomas: ``κ = 8``, ``σ = 0.03``,
    ``μ = expected_points / κ``. Strauss: ``γ = 0.1``, ``R = 0.05`` and β calibrated by
    :func:`strauss_beta` (separately with the trend). Inhomogeneous classes use the trend
    :func:`linear_log_trend`, normalised to mean 1, so every class has ``expected_points``
    points on average.
    """
    expected = _positive("expected_points", expected_points)
    homogeneous = {
        "poisson": {"process": "poisson", "intensity": expected},
        "thomas": {
            "process": "thomas",
            "kappa": THOMAS_KAPPA,
            "mu": expected / THOMAS_KAPPA,
            "sigma": THOMAS_SIGMA,
        },
        "strauss": {
            "process": "strauss",
            "beta": strauss_beta(expected, STRAUSS_GAMMA, STRAUSS_R),
            "gamma": STRAUSS_GAMMA,
            "R": STRAUSS_R,
        },
    }
    params = {name: {**p, "trend": None} for name, p in homogeneous.items()}
    for name, p in homogeneous.items():
        inhom = {**p, "trend": "exp(2x)"}
        if name == "strauss":
            inhom["beta"] = strauss_beta(expected, STRAUSS_GAMMA, STRAUSS_R, trend=linear_log_trend)
        params[f"{name}_inhom"] = inhom
    return params


def simulate_pattern(params: dict, random_state=None) -> np.ndarray:
    """One pattern on the unit square from a class's entry of :func:`dataset_parameters`."""
    trend = linear_log_trend if params["trend"] is not None else None
    rng = _rng(random_state)
    if params["process"] == "poisson":
        return poisson_process(params["intensity"], UNIT_SQUARE, trend, rng)
    if params["process"] == "thomas":
        return thomas_process(
            params["kappa"], params["mu"], params["sigma"], UNIT_SQUARE, trend, rng
        )
    if params["process"] == "strauss":
        return strauss_process(
            params["beta"], params["gamma"], params["R"], UNIT_SQUARE, trend, random_state=rng
        )
    raise ValueError(f"Unknown process {params['process']!r}; expected poisson, thomas or strauss.")


def point_pattern_dataset(
    n_per_class: int,
    image_size: int = 64,
    snr: float = 12.8,
    expected_points: float = 52.0,
    spot_sigma: float = 1.0,
    random_state: int | None = 0,
    progress_bar: bool | None = None,
):
    """The SIVAE benchmark: images of six kinds of point patterns with ≈ the same mean count.

    Classes (``obs['label']``): Poisson, Thomas (clustered) and Strauss (repulsive), each
    homogeneous and inhomogeneous (:func:`dataset_parameters`); ``n_per_class`` patterns each,
    in that order. Each pattern is rendered by :func:`render_points` into a square image.

    Equal mean counts do not make counts uninformative: their variance differs by class
    (Thomas over-dispersed, Strauss under-dispersed), so a probe on the count alone does better
    than chance (see ``docs/point_patterns.md``).

    Parameters
    ----------
    n_per_class
        Patterns per class.
    image_size
        Side of the square images in pixels.
    snr
        Spot amplitude over noise standard deviation (the paper uses 12.8 and 9.6).
    expected_points
        Mean number of points of every class (the paper: ≈ 52).
    spot_sigma
        Spot width (Gaussian standard deviation) in pixels.
    random_state
        Seed.
    progress_bar
        Show a progress bar; by default when simulating 1000 patterns or more.

    Returns
    -------
    :class:`~anndata.AnnData` with ``obsm['image']`` (``n × 1 × H × W`` float32),
    ``obsm['points']`` (true points, ``n × K_max × 2`` float32, NaN-padded, image units),
    ``obs['n_points']``, ``obs['label']`` (categorical) and ``uns['point_patterns']`` (class
    parameters, image settings). ``X`` is an empty ``n × 0`` matrix.
    """
    import anndata as ad
    import pandas as pd
    from tqdm.auto import tqdm

    n_per_class = check_int("n_per_class", n_per_class)
    image_size = check_int("image_size", image_size, minimum=4)
    params = dataset_parameters(expected_points)
    rng = np.random.default_rng(random_state)
    total = n_per_class * len(PATTERN_CLASSES)
    show = total >= 1000 if progress_bar is None else progress_bar
    patterns, labels = [], []
    with tqdm(total=total, desc="point patterns", disable=not show) as bar:
        for name in PATTERN_CLASSES:
            for _ in range(n_per_class):
                patterns.append(simulate_pattern(params[name], rng))
                labels.append(name)
                bar.update()
    counts = np.array([len(p) for p in patterns], dtype=np.int64)
    images = np.stack([render_points(p, image_size, spot_sigma, 1.0, snr, rng) for p in patterns])[
        :, None
    ]
    padded = np.full((total, int(counts.max(initial=0)), 2), np.nan, dtype=np.float32)
    for i, p in enumerate(patterns):
        padded[i, : len(p)] = p
    obs = pd.DataFrame(
        {
            OBS.LABEL: pd.Categorical(labels, categories=list(PATTERN_CLASSES)),
            OBS.N_POINTS: counts,
        },
        index=[f"pattern_{i}" for i in range(total)],
    )
    adata = ad.AnnData(X=np.zeros((total, 0), dtype=np.float32), obs=obs)
    adata.obsm[OBSM.IMAGE] = images
    adata.obsm[OBSM.POINTS] = padded
    adata.uns[UNS.POINT_PATTERNS] = {
        "classes": {
            name: {k: v for k, v in p.items() if v is not None} for name, p in params.items()
        },
        "image_size": image_size,
        "window": list(UNIT_SQUARE),
        "snr": float(snr),
        "spot_sigma": float(spot_sigma),
        "amplitude": 1.0,
        "expected_points": float(expected_points),
        "random_state": random_state,
    }
    return adata

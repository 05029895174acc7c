"""Point-process simulators: known moments, spatstat's rStrauss, trends, the image renderer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spatialvi import metrics, sim

FIXTURES = Path(__file__).parent.parent / "fixtures" / "spatstat"
WINDOW = (0.0, 1.5, 0.0, 1.0)


def left_half_fraction(trend, window):
    """∫ f over the left half of the window / ∫ f over the window (midpoint rule)."""
    xs = np.linspace(window[0], window[1], 2001)
    fx = trend(xs, np.zeros_like(xs))
    mid = 0.5 * (window[0] + window[1])
    return fx[xs <= mid].sum() / fx.sum()


def exp_trend(x, y):
    return np.exp(1.5 * x) * np.ones_like(y)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_poisson_counts_and_trend(seed):
    rng = np.random.default_rng(seed)
    area = 1.5
    counts = np.array([len(sim.poisson_process(40, WINDOW, random_state=rng)) for _ in range(400)])
    # Poisson counts: mean = variance = λ|W| = 60
    assert abs(counts.mean() - 60) < 4 * np.sqrt(60 / 400)
    assert abs(counts.var(ddof=1) / 60 - 1) < 4 * np.sqrt(2 / 399)
    patterns = [sim.poisson_process(40, WINDOW, exp_trend, rng) for _ in range(400)]
    counts = np.array([len(p) for p in patterns])
    assert abs(counts.mean() - 40 * area) < 4 * np.sqrt(60 / 400)  # λ stays the mean intensity
    pts = np.vstack(patterns)
    expected = left_half_fraction(exp_trend, WINDOW)
    assert abs((pts[:, 0] < 0.75).mean() - expected) < 4 * np.sqrt(
        expected * (1 - expected) / len(pts)
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_thomas_mean_count_and_inhomogeneous_thomas(seed):
    rng = np.random.default_rng(seed)
    kappa, mu, sigma = 12.0, 5.0, 0.02
    patterns = [sim.thomas_process(kappa, mu, sigma, WINDOW, random_state=rng) for _ in range(300)]
    counts = np.array([len(p) for p in patterns])
    assert abs(counts.mean() - kappa * mu * 1.5) < 4 * counts.std(ddof=1) / np.sqrt(300)
    # over-dispersed: Var n ≈ λ|W|(1 + μ) (slightly less: offspring leave the window)
    assert 0.7 * (1 + mu) < counts.var(ddof=1) / counts.mean() < 1.1 * (1 + mu)
    patterns = [sim.thomas_process(kappa, mu, sigma, WINDOW, exp_trend, rng) for _ in range(300)]
    counts = np.array([len(p) for p in patterns])
    assert abs(counts.mean() - kappa * mu * 1.5) < 4 * counts.std(ddof=1) / np.sqrt(300)
    pts = np.vstack(patterns)
    expected = left_half_fraction(exp_trend, WINDOW)
    assert abs((pts[:, 0] < 0.75).mean() - expected) < 0.03


@pytest.mark.parametrize("case", ["strauss_a", "strauss_b"])
def test_strauss_matches_spatstat_rstrauss(case):
    """400 patterns each (ours vs spatstat's exact rStrauss): count and L within 4 SE."""
    f = json.loads((FIXTURES / f"{case}.json").read_text())
    window, r, n = tuple(f["window"]), np.array(f["r"]), f["n_patterns"][0]
    rng = np.random.default_rng(2026)
    patterns = [
        sim.strauss_process(f["beta"][0], f["gamma"][0], f["R"][0], window, random_state=rng)
        for _ in range(n)
    ]
    counts = np.array([len(p) for p in patterns])
    se = np.sqrt((counts.var(ddof=1) + f["count_sd"][0] ** 2) / n)
    assert abs(counts.mean() - f["count_mean"][0]) < 4 * se
    assert abs(counts.std(ddof=1) / f["count_sd"][0] - 1) < 0.2
    lvals = np.array([metrics.l_function(p, r, window) for p in patterns])[:, 1:]
    se_l = np.sqrt((lvals.var(0, ddof=1) + np.array(f["L_sd"][1:]) ** 2) / n)
    assert np.abs((lvals.mean(0) - f["L_mean"][1:]) / se_l).max() < 4


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_strauss_limits_poisson_and_hard_core(seed):
    rng = np.random.default_rng(seed)
    # γ = 1 is an (inhomogeneous) Poisson process of mean intensity β
    patterns = [
        sim.strauss_process(40, 1.0, 0.1, WINDOW, exp_trend, random_state=rng) for _ in range(300)
    ]
    counts = np.array([len(p) for p in patterns])
    assert abs(counts.mean() - 60) < 4 * np.sqrt(60 / 300)
    assert abs(counts.var(ddof=1) / 60 - 1) < 4 * np.sqrt(2 / 299)
    pts = np.vstack(patterns)
    expected = left_half_fraction(exp_trend, WINDOW)
    assert abs((pts[:, 0] < 0.75).mean() - expected) < 4 * np.sqrt(
        expected * (1 - expected) / len(pts)
    )
    # γ = 0 is a hard core: no two points within R
    for _ in range(20):
        p = sim.strauss_process(150, 0.0, 0.06, WINDOW, random_state=rng)
        d = np.hypot(*(p[:, None, :] - p[None, :, :]).transpose(2, 0, 1))
        assert d[np.triu_indices(len(p), 1)].min() > 0.06


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_strauss_beta_calibrates_the_mean_count(seed):
    beta = sim.strauss_beta(40.0, 0.2, 0.06)
    rng = np.random.default_rng(seed)
    counts = np.array(
        [len(sim.strauss_process(beta, 0.2, 0.06, random_state=rng)) for _ in range(300)]
    )
    assert abs(counts.mean() - 40.0) < 4 * counts.std(ddof=1) / np.sqrt(300) + 0.5


def test_simulators_are_reproducible():
    for make in (
        lambda s: sim.poisson_process(50, WINDOW, exp_trend, s),
        lambda s: sim.thomas_process(10, 5, 0.03, WINDOW, exp_trend, s),
        lambda s: sim.strauss_process(60, 0.3, 0.05, WINDOW, exp_trend, random_state=s),
    ):
        np.testing.assert_array_equal(make(7), make(7))
        assert not np.array_equal(make(7), make(8))


def test_points_lie_in_the_window():
    for p in (
        sim.poisson_process(200, WINDOW, random_state=0),
        sim.thomas_process(20, 10, 0.05, WINDOW, random_state=0),
        sim.strauss_process(200, 0.5, 0.03, WINDOW, random_state=0),
    ):
        assert ((p[:, 0] >= 0) & (p[:, 0] <= 1.5) & (p[:, 1] >= 0) & (p[:, 1] <= 1)).all()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: sim.strauss_process(50, 1.5, 0.05), "gamma"),
        (lambda: sim.strauss_process(50, 0.5, 0.0), "interaction range"),
        (lambda: sim.strauss_process(50, 0.5, 0.6), "interaction range"),
        (lambda: sim.strauss_process(-1, 0.5, 0.05), "beta"),
        (lambda: sim.strauss_process(50, 0.5, 0.05, n_steps=0), "n_steps"),
        (lambda: sim.poisson_process(50, trend=lambda x, y: x - 0.5), "negative"),
        (lambda: sim.poisson_process(50, trend=lambda x, y: np.where(x < 0.5, np.nan, x)), "NaN"),
        (lambda: sim.poisson_process(50, trend=lambda x, y: 0 * x), "zero everywhere"),
        (lambda: sim.thomas_process(0, 5, 0.03), "kappa"),
        (lambda: sim.thomas_process(10, 5, 0.03, window=(0, 1, 1, 0)), "empty"),
        (lambda: sim.render_points([[0.5, 0.5]], snr=0), "snr"),
    ],
)
def test_bad_parameters_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_strauss_cap_is_reported():
    with pytest.raises(ValueError, match="max_points"):
        sim.strauss_process(500, 1.0, 0.01, max_points=50, random_state=0)


def test_render_points_places_spots_at_their_pixels_with_the_stated_noise():
    # a point at pixel (col 10, row 20) of a 40 × 64 (H × W) image: x = 10.5/64, y = 20.5/64
    image = sim.render_points([[10.5 / 64, 20.5 / 64]], (40, 64), spot_sigma=1.5, snr=None)
    assert image.shape == (40, 64) and image.dtype == np.float32
    assert np.unravel_index(image.argmax(), image.shape) == (20, 10)
    assert np.isclose(image.max(), 1.0)
    assert np.isclose(image.sum(), 2 * np.pi * 1.5**2, rtol=1e-4)  # mass of a Gaussian spot
    for seed in range(3):
        empty = sim.render_points(np.zeros((0, 2)), 128, snr=9.6, random_state=seed)
        assert abs(empty.std() * 9.6 - 1) < 0.02

"""Ripley's K, L, pair correlation and G: agreement with spatstat and with theory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spatialvi import metrics, sim

FIXTURES = Path(__file__).parent.parent / "fixtures" / "spatstat"
SUMMARY_PATTERNS = ("nonsquare", "clustered", "regular", "offset_small")


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def ref(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


@pytest.fixture(params=SUMMARY_PATTERNS)
def fixture(request):
    f = load(f"summary_{request.param}")
    return np.c_[f["x"], f["y"]], np.array(f["r"]), tuple(f["window"]), f


@pytest.mark.parametrize("correction", ["none", "translate", "isotropic"])
def test_k_and_l_match_spatstat(fixture, correction):
    points, r, window, f = fixture
    k = metrics.k_function(points, r, window, correction)
    l_values = metrics.l_function(points, r, window, correction)
    np.testing.assert_allclose(k, ref(f[f"K_{correction}"]), atol=1e-3, rtol=0)
    np.testing.assert_allclose(l_values, ref(f[f"L_{correction}"]), atol=1e-3, rtol=0)
    # the agreement is to rounding error, not merely within the tolerance
    assert np.nanmax(np.abs(k - ref(f[f"K_{correction}"]))) < 1e-9


@pytest.mark.parametrize("correction", ["rs", "km"])
def test_g_matches_spatstat(fixture, correction):
    points, r, window, f = fixture
    g = metrics.g_function(points, r, window, correction)
    np.testing.assert_allclose(g, ref(f[f"G_{correction}"]), atol=1e-3, rtol=0)


@pytest.mark.parametrize("correction", ["translate", "isotropic"])
def test_pair_correlation_matches_spatstat(fixture, correction):
    points, r, window, f = fixture
    expected = ref(f[f"pcf_{correction}"])
    g = metrics.pair_correlation(points, r, window, correction)
    ok = np.isfinite(expected)
    assert np.isnan(g[r == 0]).all()
    np.testing.assert_allclose(g[ok], expected[ok], atol=5e-3, rtol=0)
    # the exact kernel sum differs from spatstat's FFT binning only by discretisation
    exact = metrics.pair_correlation(points, r, window, correction, method="exact")
    h = 0.15 / np.sqrt(len(points) / ((window[1] - window[0]) * (window[3] - window[2])))
    assert np.isclose(f["pcf_bw"][0], h / np.sqrt(5))
    assert np.nanmax(np.abs(exact - expected)[r >= h]) < 1e-2


def test_fixtures_cover_border_points_nonsquare_windows_and_quarter_side_radii():
    f = load("summary_nonsquare")
    x, y = np.array(f["x"]), np.array(f["y"])
    x0, x1, y0, y1 = f["window"]
    assert x1 - x0 != y1 - y0
    assert (np.minimum.reduce([x - x0, x1 - x, y - y0, y1 - y]) < 0.005).sum() >= 10
    assert np.isclose(f["r"][-1], min(x1 - x0, y1 - y0) / 4)


def _poisson_patterns(n_patterns, intensity, window, seed):
    rng = np.random.default_rng(seed)
    return [sim.poisson_process(intensity, window, random_state=rng) for _ in range(n_patterns)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_poisson_k_l_g_match_theory(seed):
    """200 Poisson patterns (λ = 100, 1.2 × 1 window): mean K, L, pcf, G within 4 standard errors."""
    window = (0.0, 1.2, 0.0, 1.0)
    r = np.linspace(0.0, 0.25, 26)[1:]
    patterns = _poisson_patterns(200, 100.0, window, seed)
    for correction in ("translate", "isotropic"):
        k = np.array([metrics.k_function(p, r, window, correction) for p in patterns])
        z = (k.mean(0) - np.pi * r**2) / (k.std(0, ddof=1) / np.sqrt(len(k)))
        assert np.abs(z).max() < 4, (correction, z)
    lvals = np.array([metrics.l_function(p, r, window) for p in patterns])
    assert np.abs(lvals.mean(0) - r).max() < 4 * (lvals.std(0, ddof=1) / np.sqrt(200)).max()
    # pair correlation: E ĝ = 1 for r ≥ h once the λ² estimate is replaced by the true λ
    counts = np.array([len(p) for p in patterns])
    rescale = (counts * (counts - 1) / (100.0 * 1.2) ** 2)[:, None]
    h = 0.15 / np.sqrt(100.0)
    r_pcf = np.linspace(h, 0.25, 25)
    pcf = np.array(
        [metrics.pair_correlation(p, r_pcf, window, bandwidth=h, method="exact") for p in patterns]
    )
    pcf = pcf * rescale
    assert np.abs((pcf.mean(0) - 1) / (pcf.std(0, ddof=1) / np.sqrt(200))).max() < 4
    # G's censoring is resolved on the grid of radii (as in spatstat): use a fine one
    r_g = np.linspace(0.0, 0.12, 481)
    theory = 1 - np.exp(-100 * np.pi * r_g**2)
    for correction in ("km", "rs"):
        g = np.array([metrics.g_function(p, r_g, window, correction) for p in patterns])
        se = g.std(0, ddof=1) / np.sqrt(200)
        rows = np.flatnonzero((se > 0) & (theory < 0.99))[::10]  # where G still varies
        assert np.abs((g.mean(0) - theory)[rows] / se[rows]).max() < 4, correction


def _thomas_g_smoothed(r, kappa, sigma, h):
    """E ĝ(r): the Thomas g convolved with the estimator's kernel, (1/r) ∫ κ_h(r − s) s g(s) ds."""
    s = np.linspace(0, r.max() + h, 20001)
    g = 1 + np.exp(-(s**2) / (4 * sigma**2)) / (4 * np.pi * kappa * sigma**2)
    t = (r[:, None] - s[None, :]) / h
    kern = np.where(np.abs(t) < 1, 0.75 * (1 - t**2) / h, 0.0)
    return np.trapezoid(kern * s * g, s, axis=1) / r


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_thomas_k_and_g_match_closed_form(seed):
    """200 Thomas patterns (κ = 10, μ = 8, σ = 0.03): K and smoothed g within 4 SE of theory."""
    kappa, mu, sigma = 10.0, 8.0, 0.03
    window = (0.0, 1.0, 0.0, 1.0)
    rng = np.random.default_rng(seed)
    patterns = [sim.thomas_process(kappa, mu, sigma, window, random_state=rng) for _ in range(200)]
    counts = np.array([len(p) for p in patterns])
    assert abs(counts.mean() - kappa * mu) < 4 * counts.std(ddof=1) / np.sqrt(200)
    # K̂ and ĝ divide by the estimate n(n−1)/|W|² of λ², which is biased for a clustered
    # process in a finite window; rescaled to the true λ = κμ they are unbiased (Campbell).
    rescale = (counts * (counts - 1) / (kappa * mu) ** 2)[:, None]
    r = np.linspace(0.0, 0.25, 26)[1:]
    k = np.array([metrics.k_function(p, r, window) for p in patterns]) * rescale
    theory = np.pi * r**2 + (1 - np.exp(-(r**2) / (4 * sigma**2))) / kappa
    assert np.abs((k.mean(0) - theory) / (k.std(0, ddof=1) / np.sqrt(200))).max() < 4
    h = 0.15 / np.sqrt(kappa * mu)
    r_g = np.linspace(h, 0.2, 30)
    g = np.array(
        [metrics.pair_correlation(p, r_g, window, bandwidth=h, method="exact") for p in patterns]
    )
    g = g * rescale
    z = (g.mean(0) - _thomas_g_smoothed(r_g, kappa, sigma, h)) / (g.std(0, ddof=1) / np.sqrt(200))
    assert np.abs(z).max() < 4


def test_k_is_invariant_to_translation_and_axis_swap(fixture):
    points, r, window, _ = fixture
    for correction in ("translate", "isotropic"):
        k = metrics.k_function(points, r, window, correction)
        moved = metrics.k_function(
            points + np.array([3.0, -2.0]),
            r,
            (window[0] + 3, window[1] + 3, window[2] - 2, window[3] - 2),
            correction,
        )
        swapped = metrics.k_function(points[:, ::-1], r, window[2:] + window[:2], correction)
        np.testing.assert_allclose(moved, k, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(swapped, k, rtol=1e-9, atol=1e-12)


def test_nan_padding_rows_are_not_points(fixture):
    points, r, window, _ = fixture
    padded = np.vstack([points, np.full((5, 2), np.nan)])
    np.testing.assert_array_equal(
        metrics.k_function(padded, r, window), metrics.k_function(points, r, window)
    )


def test_empty_and_single_point_patterns_are_undefined_with_a_warning():
    r = np.linspace(0, 0.2, 5)
    for pts in (np.zeros((0, 2)), np.array([[0.5, 0.5]])):
        for func in (
            metrics.k_function,
            metrics.l_function,
            metrics.pair_correlation,
            metrics.g_function,
        ):
            with pytest.warns(UserWarning, match="undefined"):
                assert np.isnan(func(pts, r, (0, 1, 0, 1))).all()


@pytest.mark.parametrize(
    ("points", "radii", "window", "match"),
    [
        ([[0.5, np.nan]], [0, 0.1], (0, 1, 0, 1), "one NaN"),
        ([[0.5, 1.2], [0.2, 0.2]], [0, 0.1], (0, 1, 0, 1), "outside the window"),
        ([[0.5, 0.5], [0.2, 0.2]], [0, 0.6], (0, 1, 0, 1), "beyond the window"),
        ([[0.5, 0.5], [0.2, 0.2]], [0.2, 0.1], (0, 1, 0, 1), "increasing"),
        ([[0.5, 0.5], [0.2, 0.2]], [0, -0.1], (0, 1, 0, 1), "non-negative"),
        ([[0.5, 0.5], [0.2, 0.2]], [0, 0.1], (1, 0, 0, 1), "empty"),
        ([[0.5, 0.5], [0.2, 0.2]], [0, 0.1], (0, 1, 0), "four finite"),
        ([[0.5, np.inf], [0.2, 0.2]], [0, 0.1], (0, 1, 0, 1), "infinite"),
    ],
)
def test_bad_input_is_refused(points, radii, window, match):
    with pytest.raises(ValueError, match=match):
        metrics.k_function(points, radii, window)


def test_unknown_correction_is_refused():
    pts = np.array([[0.2, 0.2], [0.4, 0.4], [0.6, 0.5]])
    with pytest.raises(ValueError, match="correction"):
        metrics.k_function(pts, [0, 0.1], (0, 1, 0, 1), correction="border")
    with pytest.raises(ValueError, match="correction"):
        metrics.g_function(pts, [0, 0.1], (0, 1, 0, 1), correction="han")
    with pytest.raises(ValueError, match="method"):
        metrics.pair_correlation(pts, [0, 0.1], (0, 1, 0, 1), method="fft")


def l_curves(patterns, r, window=(0, 1, 0, 1)) -> np.ndarray:
    return np.array([metrics.l_function(p, r, window) for p in patterns])


def test_envelope_test_matches_spatstat_mad_test():
    """mad.test(X, Lest, simulate = <39 given Poisson patterns>, leaveout = 1): same statistic
    and p-value for a Poisson and a clustered X."""
    f = load("mad_test")
    r = np.array(f["r"])
    sims = l_curves([np.c_[x, y] for x, y in zip(f["sim_x"], f["sim_y"], strict=True)], r)
    for name in ("poisson", "clustered"):
        observed = metrics.l_function(np.c_[f[name]["x"], f[name]["y"]], r, (0, 1, 0, 1))
        result = metrics.envelope_test(observed, sims)
        assert result.statistics[0] == pytest.approx(f[name]["statistic"][0], abs=1e-12)
        assert result.p_values[0] == pytest.approx(f[name]["p_value"][0], abs=1e-12)
    assert f["clustered"]["p_value"][0] < 0.05 < f["poisson"]["p_value"][0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_envelope_test_is_calibrated_and_has_power(seed):
    """Curves from the model are rejected about alpha of the time and stay in the band about
    1 − alpha of the time; clustered patterns against a Poisson model are rejected."""
    rng = np.random.default_rng(seed)
    r = np.linspace(0, 0.2, 21)

    def poisson(n):
        return [rng.uniform(size=(rng.poisson(50), 2)) for _ in range(n)]

    sims = l_curves(poisson(99), r)
    fresh = l_curves(poisson(200), r)
    result = metrics.envelope_test(fresh, sims)
    assert result.n_simulated == 99
    assert 0.005 <= result.rejected <= 0.15, result.rejected
    inside = ((fresh >= result.lower) & (fresh <= result.upper)).all(axis=1).mean()
    assert 0.85 <= inside <= 0.995, inside
    thomas = [sim.thomas_process(10, 5, 0.03, random_state=rng) for _ in range(50)]
    assert metrics.envelope_test(l_curves(thomas, r), sims).rejected >= 0.8


def test_envelope_test_bad_input():
    sims = np.random.default_rng(0).normal(size=(19, 5))
    with pytest.raises(ValueError, match="same radii"):
        metrics.envelope_test(np.zeros(4), sims)
    with pytest.raises(ValueError, match="too few"):
        metrics.envelope_test(np.zeros(5), sims[:10])
    with pytest.raises(ValueError, match="alpha"):
        metrics.envelope_test(np.zeros(5), sims, alpha=1.5)
    nan_curve = np.full(5, np.nan)
    result = metrics.envelope_test(np.vstack([nan_curve, sims[0]]), np.vstack([sims, nan_curve]))
    assert np.isnan(result.p_values[0]) and np.isfinite(result.p_values[1])
    assert result.n_simulated == 19

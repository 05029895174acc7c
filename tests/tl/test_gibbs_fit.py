"""Strauss maximum pseudo-likelihood: spatstat's ppm on fixtures, unbiasedness over simulations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spatialvi import sim, tl

FIXTURES = Path(__file__).parent.parent / "fixtures" / "spatstat"
FITS = json.loads((FIXTURES / "strauss_fits.json").read_text())
PATTERNS = sorted(k for k in FITS if k.startswith("pattern_"))


@pytest.mark.parametrize("name", PATTERNS)
def test_fit_matches_spatstat_ppm_nd128(name):
    f = FITS[name]
    fit = tl.fit_strauss(np.c_[f["x"], f["y"]], f["window"], f["R"][0], n_grid=128)
    assert fit.beta == pytest.approx(f["beta_nd128"][0], rel=0.05)
    assert fit.gamma == pytest.approx(f["gamma_nd128"][0], rel=0.05)
    assert fit.log_pl == pytest.approx(f["logpl_nd128"][0], rel=0.05)
    assert fit["gamma"] == fit.gamma and "128 × 128" in fit.quadrature
    assert fit.n_points == len(f["x"]) and 0 < fit.n_data < fit.n_points


@pytest.mark.parametrize("name", PATTERNS)
def test_fit_converges_with_the_grid(name):
    """Refining the midpoint grid changes γ̂ by less than 2 % (it converges to the exact MPLE)."""
    f = FITS[name]
    pts, window, R = np.c_[f["x"], f["y"]], f["window"], f["R"][0]
    fine = tl.fit_strauss(pts, window, R, n_grid=256)
    assert tl.fit_strauss(pts, window, R, n_grid=128).gamma == pytest.approx(fine.gamma, rel=0.02)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_fit_is_unbiased_over_simulated_patterns(seed):
    """200 simulated Strauss patterns: mean γ̂ and β̂ within three standard errors of the truth
    (two would fail one seed in ten for an unbiased estimator, with two checks per seed).

    With ≈ 250 points per pattern: β̂ = exp(θ̂₀) carries a Jensen bias of about Var(θ̂₀)/2, which
    for ≈ 70 points (sd of β̂ ≈ 22 %) is 1.5 standard errors of a 200-pattern mean.
    """
    beta, gamma, R = 400.0, 0.4, 0.03
    rng = np.random.default_rng(seed)
    fits = [
        tl.fit_strauss(
            sim.strauss_process(beta, gamma, R, random_state=rng), (0, 1, 0, 1), R, n_grid=64
        )
        for _ in range(200)
    ]
    gammas = np.array([f.gamma for f in fits])
    betas = np.array([f.beta for f in fits])
    z_gamma = (gammas.mean() - gamma) / (gammas.std(ddof=1) / np.sqrt(200))
    z_beta = (betas.mean() - beta) / (betas.std(ddof=1) / np.sqrt(200))
    assert abs(z_gamma) < 3 and abs(z_beta) < 3, (z_gamma, z_beta)


def test_hard_core_data_give_gamma_zero():
    """No data point has a neighbour within R: the MPLE is γ = 0, β from the free area."""
    pts = np.array([[x, y] for x in np.linspace(0.1, 0.9, 5) for y in np.linspace(0.1, 0.9, 5)])
    fit = tl.fit_strauss(pts, (0, 1, 0, 1), 0.1, n_grid=400)
    assert fit.gamma == 0.0
    # β = n_D / (area of D = [0.1, 0.9]² with no point within R): the 25 touching discs cover
    # 9 whole, 12 half (edges of D) and 4 quarter (corners) discs of area πR².
    free = 0.64 - (9 + 12 * 0.5 + 4 * 0.25) * np.pi * 0.1**2
    assert fit.beta == pytest.approx(25 / free, rel=0.02)


def test_clustered_pattern_warns_gamma_above_one():
    pts = sim.thomas_process(10, 10, 0.02, random_state=0)
    with pytest.warns(UserWarning, match="exceeds 1"):
        fit = tl.fit_strauss(pts, (0, 1, 0, 1), 0.05)
    assert fit.gamma > 1


@pytest.mark.parametrize(
    ("points", "R", "match"),
    [
        ([[0.5, 0.5], [0.6, 0.5]], 0.0, "interaction range"),
        ([[0.5, 0.5], [0.6, 0.5]], 0.5, "interaction range"),
        ([[0.01, 0.5], [0.99, 0.5]], 0.1, "No point lies"),
        (np.zeros((0, 2)), 0.1, "No point lies"),
        ([[0.5, 1.5]], 0.1, "outside the window"),
    ],
)
def test_bad_input_is_refused(points, R, match):
    with pytest.raises(ValueError, match=match):
        tl.fit_strauss(points, (0, 1, 0, 1), R)

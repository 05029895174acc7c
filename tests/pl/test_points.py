from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

from spatialvi import pl, pp, sim
from spatialvi._keys import OBSM


@pytest.fixture(scope="module")
def patterns():
    adata = sim.point_pattern_dataset(3, image_size=32, random_state=0)
    pp.detect_points(adata, spot_sigma=1.0)
    return adata


def test_point_images_draws_every_point(patterns, tmp_path):
    fig = pl.point_images(
        patterns, n_per_group=2, detected_key=OBSM.POINTS_DETECTED, save=tmp_path / "p.png"
    )
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 2 * len(sim.PATTERN_CLASSES)
    # first column, first row: the first pattern, drawn at its pixel positions
    first = axes[0]
    true = np.asarray(first.collections[0].get_offsets())
    pts = patterns.obsm[OBSM.POINTS][0]
    pts = pts[~np.isnan(pts[:, 0])]
    np.testing.assert_allclose(true, pts * 32 - 0.5, atol=1e-5)
    assert first.get_title() == sim.PATTERN_CLASSES[0]
    assert (tmp_path / "p.png").stat().st_size > 5000


def test_summary_function_plots_one_curve_per_group(patterns):
    ax = pl.summary_function(patterns, "L")
    assert len(ax.lines) == len(sim.PATTERN_CLASSES) + 1  # + the CSR reference
    assert ax.get_ylabel() == "L(r) − r"
    with pytest.raises(ValueError, match="function"):
        pl.summary_function(patterns, "F")
    with pytest.raises(KeyError, match="groupby"):
        pl.summary_function(patterns, "L", groupby="nothing")


def padded(patterns, k_max: int = 120) -> np.ndarray:
    out = np.full((len(patterns), k_max, 2), np.nan, dtype=np.float32)
    for i, p in enumerate(patterns):
        out[i, : len(p)] = p
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simulation_envelope_band_and_rejections(seed):
    """Poisson patterns against Poisson simulations are rarely rejected, Thomas patterns
    against them nearly always; the band drawn is the envelope test's."""
    import anndata as ad
    import pandas as pd

    from spatialvi import metrics

    rng = np.random.default_rng(seed)
    n = 30
    observed = [sim.poisson_process(50, random_state=rng) for _ in range(n)]
    observed += [sim.thomas_process(10, 5, 0.03, random_state=rng) for _ in range(n)]
    simulated = np.stack(
        [
            padded([sim.poisson_process(50, random_state=rng) for _ in range(3)])
            for _ in range(2 * n)
        ]
    )
    labels = ["poisson"] * n + ["thomas"] * n
    adata = ad.AnnData(obs=pd.DataFrame({"label": labels}, index=[str(i) for i in range(2 * n)]))
    adata.obsm[OBSM.POINTS] = padded(observed)
    adata.obsm[OBSM.POINTS_SIMULATED] = simulated
    r = np.linspace(0, 0.2, 21)
    fig = pl.simulation_envelope(adata, radii=r)
    rejected = {
        ax.get_title().split(":")[0]: float(ax.get_title().split(": ")[1].split("%")[0])
        for ax in fig.axes
    }
    assert rejected["poisson"] <= 25 and rejected["thomas"] >= 80, rejected
    pooled = simulated[:n].reshape(-1, 120, 2)
    sims = np.array([metrics.l_function(p[~np.isnan(p[:, 0])], r, (0, 1, 0, 1)) for p in pooled])
    expected = metrics.envelope_test(np.zeros((1, len(r))), sims - r)
    band = fig.axes[0].collections[0].get_paths()[0].vertices
    np.testing.assert_allclose(band[:, 1].max(), expected.upper.max(), rtol=1e-6)
    np.testing.assert_allclose(band[:, 1].min(), expected.lower.min(), rtol=1e-6)
    with pytest.raises(ValueError, match="n_samples"):
        pl.simulation_envelope(adata, simulated_key=OBSM.POINTS)

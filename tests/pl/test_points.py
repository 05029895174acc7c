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

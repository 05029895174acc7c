from __future__ import annotations

import numpy as np
import pytest

from spatialvi.geometry import hex_grid, spot_distance, subspot_coordinates, subspot_offsets


def test_factor_two_is_the_papers_five_points():
    offsets = subspot_offsets(2, 100.0)
    expected = {(-25.0, -25.0), (25.0, -25.0), (-25.0, 25.0), (25.0, 25.0), (0.0, 0.0)}
    assert {tuple(o) for o in offsets} == expected
    assert len(subspot_offsets(2, 100.0, include_centre=False)) == 4
    three = subspot_offsets(3, 90.0)
    assert len(three) == 9
    assert {tuple(np.round(o, 9)) for o in three} >= {(0.0, 0.0), (-30.0, -30.0), (30.0, 30.0)}


def test_subspot_coordinates_on_hex_grid():
    coords = hex_grid(200, spot_distance=100.0)
    assert spot_distance(coords) == pytest.approx(100.0)
    points, parent = subspot_coordinates(coords, factor=2)
    assert points.shape == (1000, 2)
    np.testing.assert_array_equal(parent, np.repeat(np.arange(200), 5))
    # Sub-spots average back to their spot centre.
    np.testing.assert_allclose(points.reshape(200, 5, 2).mean(axis=1), coords)
    with pytest.raises(ValueError, match="factor"):
        subspot_coordinates(coords, factor=0)
    with pytest.raises(ValueError, match="n × 2"):
        subspot_coordinates(coords[:, :1])

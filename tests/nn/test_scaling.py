"""Min–max scaling with ranges fitted on the source and reused unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spatialvi.nn import MinMaxScaling, apply_minmax, fit_minmax


def test_fit_and_apply_numpy_and_torch():
    x = np.array([[0.0, 5.0, 2.0], [4.0, 5.0, -2.0], [2.0, 5.0, 0.0]])
    lo, hi = fit_minmax(x)
    np.testing.assert_array_equal(lo, [0.0, 5.0, -2.0])
    np.testing.assert_array_equal(hi, [4.0, 5.0, 2.0])
    scaled = apply_minmax(x, lo, hi)
    # The constant column maps to 0 (no division by zero), the others to [0, 1].
    np.testing.assert_allclose(scaled, [[0, 0, 1], [1, 0, 0], [0.5, 0, 0.5]])
    t = torch.tensor(x, dtype=torch.float32)
    tlo, thi = fit_minmax(t)
    torch.testing.assert_close(apply_minmax(t, tlo, thi), torch.tensor(scaled).float())
    # Target data outside the source range is not re-fitted or clipped.
    target = np.array([[8.0, 6.0, 4.0]])
    np.testing.assert_allclose(apply_minmax(target, lo, hi), [[2.0, 0.0, 1.5]])


def test_module_keeps_ranges_in_its_state_dict():
    x = torch.tensor([[1.0, 3.0], [3.0, 3.0]])
    scaling = MinMaxScaling.fit(x)
    assert set(scaling.state_dict()) == {"lo", "hi"}
    torch.testing.assert_close(scaling(x), torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    restored = MinMaxScaling(np.zeros(2), np.ones(2))
    restored.load_state_dict(scaling.state_dict())
    torch.testing.assert_close(restored(torch.tensor([[2.0, 7.0]])), torch.tensor([[0.5, 0.0]]))
    assert torch.isfinite(restored(torch.full((1, 2), 3.0))).all()
    # inverse: back to the original units where the range is not constant
    y = torch.tensor([[0.25, 0.4]])
    torch.testing.assert_close(restored.inverse(y), torch.tensor([[1.5, 3.4]]))
    torch.testing.assert_close(restored.inverse(restored(x))[:, 0], x[:, 0])


def test_bad_input():
    with pytest.raises(ValueError, match="`features` contains NaN"):
        fit_minmax(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="n × F matrix"):
        fit_minmax(np.zeros(3))
    with pytest.raises(ValueError, match="no rows"):
        fit_minmax(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="one value per feature column \\(3\\)"):
        apply_minmax(np.zeros((2, 3)), np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="hi >= lo"):
        MinMaxScaling([1.0], [0.0])

"""The one size-factor definition: library / median library, floored at one count."""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse

from spatialvi.nn import library_size, median_library, size_factor


def test_library_and_size_factor_agree_across_array_types():
    rng = np.random.default_rng(0)
    x = rng.poisson(2.0, size=(50, 8)).astype(np.float32)
    x[3] = 0  # an all-zero spot
    lib = library_size(x)
    np.testing.assert_array_equal(lib, x.sum(1))
    np.testing.assert_array_equal(library_size(sparse.csr_matrix(x)), lib)
    lib_t = library_size(torch.as_tensor(x))
    assert lib_t.shape == (50, 1)
    median = median_library(lib)
    assert median == np.median(np.maximum(lib, 1.0))
    sf = size_factor(lib, median)
    # Floored at one count: the empty spot stays finite and positive.
    assert sf[3] == 1.0 / median and np.all(sf > 0)
    np.testing.assert_allclose(size_factor(lib_t, median).numpy().ravel(), sf, rtol=1e-6)
    # Relative to the median: half the spots have size factor ≤ 1.
    assert np.median(sf) == 1.0

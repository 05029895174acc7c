"""SMACOF backends checked against known configurations and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from scipy.spatial import procrustes
from scipy.spatial.distance import cdist

from spatialvi.geometry import smacof


def _config(n=120, seed=0):
    return np.random.default_rng(seed).uniform(0, 10, size=(n, 2))


def test_exact_distances_random_start():
    x = _config()
    init = np.random.default_rng(1).normal(size=x.shape)
    res = smacof(cdist(x, x), init=init, max_iter=3000, eps=1e-12)
    assert procrustes(x, res.coordinates)[2] < 1e-4


def test_default_torgerson_start_is_exact():
    x = _config()
    res = smacof(cdist(x, x), max_iter=50)
    assert procrustes(x, res.coordinates)[2] < 1e-8


def test_matches_sklearn_unit_weights():
    from sklearn.manifold import smacof as sk_smacof

    x = _config(80)
    d = cdist(x, x) * np.exp(np.random.default_rng(2).normal(0, 0.1, (80, 80)))
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0)
    init = np.random.default_rng(3).normal(size=(80, 2))
    ours = smacof(d, init=init, max_iter=300, eps=1e-6)
    theirs, _ = sk_smacof(
        d, metric=True, init=init.copy(), n_init=1, max_iter=300, eps=1e-6, normalized_stress=False
    )
    ref = ((cdist(theirs, theirs) - d)[np.triu_indices(80, 1)] ** 2).sum()
    assert abs(ours.stress - ref) <= 0.01 * ref


def test_knn_weights_and_monotone_stress():
    x = _config(150)
    d = cdist(x, x)
    order = np.argsort(d, axis=1)[:, 1:11]
    w = np.zeros_like(d)
    w[np.repeat(np.arange(150), 10), order.ravel()] = 1
    w = np.maximum(w, w.T)
    init = x + 0.02 * 10 * np.random.default_rng(4).normal(size=x.shape)
    res = smacof(d, weights=w, init=init, max_iter=2000, eps=1e-14)
    assert procrustes(x, res.coordinates)[2] < 1e-4
    assert np.all(np.diff(res.history) <= 1e-5 * res.history[0])


def test_sparse_backend_matches_dense_knn():
    x = _config(200)
    d = cdist(x, x)
    order = np.argsort(d, axis=1)[:, 1:11]
    rows = np.repeat(np.arange(200), 10)
    g = sparse.csr_matrix((d[rows, order.ravel()], (rows, order.ravel())), shape=(200, 200))
    res = smacof(g, max_iter=500, eps=1e-10)
    assert procrustes(x, res.coordinates)[2] < 1e-3


def test_hard_and_soft_anchors():
    x = _config(100)
    d = cdist(x, x)
    rng = np.random.default_rng(5)
    anchor_rows = rng.choice(100, 10, replace=False)
    anchors = {int(i): x[i] for i in anchor_rows}
    init = rng.uniform(0, 10, size=x.shape)
    hard = smacof(d, anchors=anchors, init=init, max_iter=3000, eps=1e-14)
    rmse = np.sqrt(((hard.coordinates - x) ** 2).sum(1).mean())
    assert rmse < 1e-3 * 10
    np.testing.assert_array_equal(hard.coordinates[anchor_rows], x[anchor_rows])
    assert np.all(np.diff(hard.history) <= 1e-5 * hard.history[0])
    errors = [
        np.abs(
            smacof(
                d, anchors=anchors, anchor_weight=mu, init=init, max_iter=3000, eps=1e-14
            ).coordinates
            - hard.coordinates
        ).max()
        for mu in (0.1, 1.0, 10.0)
    ]
    assert errors[0] >= errors[1] >= errors[2]
    assert errors[2] < 1e-2


def test_bad_input():
    x = _config(20)
    d = cdist(x, x)
    d[0, 1] = d[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        smacof(d)
    with pytest.raises(ValueError, match="anchor rows"):
        smacof(cdist(x, x), anchors={25: [0.0, 0.0]})


def test_fused_2d_pass_matches_torch_pass():
    from spatialvi.geometry._smacof import _DenseProblem

    rng = np.random.default_rng(1)
    truth = rng.uniform(size=(120, 2))
    delta = cdist(truth, truth) * np.exp(rng.normal(0, 0.1, (120, 120)))
    delta = (delta + delta.T) / 2
    np.fill_diagonal(delta, 0)
    weights = (rng.uniform(size=(120, 120)) < 0.3).astype(float)
    weights = np.maximum(weights, weights.T)
    x = rng.normal(size=(120, 2))
    x[5] = x[6]  # coincident points take the d = 0 branch
    for w in (None, weights):
        problem = _DenseProblem(delta, w, chunk_size=50)
        fused = problem._evaluate_fused_2d(x)
        reference = problem._evaluate_torch(x)
        np.testing.assert_allclose(fused[0], reference[0], rtol=1e-4)
        np.testing.assert_allclose(fused[1], reference[1], rtol=1e-4)
        np.testing.assert_allclose(fused[2], reference[2], rtol=1e-3, atol=1e-3)


def test_three_dimensional_recovery():
    rng = np.random.default_rng(2)
    truth = rng.uniform(size=(80, 3))
    result = smacof(
        cdist(truth, truth), n_components=3, init=rng.normal(size=(80, 3)), max_iter=2000, eps=1e-12
    )
    assert procrustes(truth, result.coordinates)[2] < 1e-4


def test_result_unpacks_as_coordinates_and_stress():
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(30, 2))
    result = smacof(cdist(x, x), max_iter=20)
    coords, stress = result
    assert coords.shape == (30, 2)
    assert stress == result.stress
    assert 1 <= result.n_iter == len(result.history) <= 20


def test_smacof_keeps_torch_thread_count():
    """The numba kernel shares torch's OpenMP runtime; smacof puts torch's count back."""
    import torch
    from scipy.spatial.distance import cdist

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        x = np.random.default_rng(0).uniform(size=(200, 2))
        smacof(cdist(x, x), max_iter=20)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)

"""The in-memory data splitter: the same minibatches as scvi-tools' loaders, cut from tensors.

The CUDA gather (torch CSR) runs here on CPU tensors; the device check runs it on a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from anndata import AnnData
from scvi.dataloaders import DataSplitter

from spatialvi._keys import REGISTRY_KEYS
from spatialvi.data import InMemoryDataSplitter, TensorStore, shuffled_batches
from spatialvi.data._inmemory import _gather_csr_rows, _gather_scipy_rows
from spatialvi.nn import nb_log_likelihood


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_csr_row_gather_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    x = sp.random(80, 40, density=0.15, format="csr", random_state=seed, dtype=np.float32)
    x.data[:5] = 0.0  # explicit zeros must not appear among the non-zero positions
    x.eliminate_zeros()
    rows = torch.as_tensor(rng.integers(0, 80, 33))  # repeats allowed
    dense, flat = _gather_csr_rows(
        torch.as_tensor(x.indptr, dtype=torch.int64),
        torch.as_tensor(x.indices, dtype=torch.int64),
        torch.as_tensor(x.data),
        40,
        rows,
    )
    expected = x[rows.numpy()].toarray()
    np.testing.assert_array_equal(dense.numpy(), expected)
    np.testing.assert_array_equal(flat.numpy(), np.flatnonzero(expected))
    # The host (CPU) gather gives the same.
    dense, flat = _gather_scipy_rows(x, rows)
    np.testing.assert_array_equal(dense.numpy(), expected)
    np.testing.assert_array_equal(flat.numpy(), np.flatnonzero(expected))


def _adata(sparse: bool, n: int = 90, g: int = 25, seed: int = 0) -> AnnData:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(0.7, size=(n, g)).astype(np.float32)
    adata = AnnData(sp.csr_matrix(counts) if sparse else counts)
    adata.obs_names = [f"s{i}" for i in range(n)]
    adata.obsm["spatial"] = rng.uniform(0, 10, size=(n, 2))
    adata.obs["section"] = rng.choice(["a", "b"], size=n)
    return adata


def _manager(adata):
    from spatialvi.model import SpaVAE

    SpaVAE.setup_anndata(adata, batch_key="section")
    return SpaVAE(adata, n_inducing=9).adata_manager


@pytest.mark.parametrize("sparse", [True, False])
def test_store_holds_what_scvi_tools_loads(sparse):
    adata = _adata(sparse)
    manager = _manager(adata)
    indices = np.random.default_rng(1).permutation(adata.n_obs)[:50]
    store = TensorStore(manager, indices, "cpu")
    positions = torch.as_tensor([3, 0, 49, 7, 7])
    ours = store.gather(positions)
    theirs = manager.create_torch_dataset()[indices[positions.numpy()]]
    for key, value in theirs.items():
        expected = value.toarray() if sp.issparse(value) else np.asarray(value)
        assert ours[key].dtype == torch.as_tensor(expected).dtype, key
        np.testing.assert_array_equal(ours[key].numpy(), expected, err_msg=key)
    # Sparse counts carry their non-zero positions (dense counts leave the search to the NB).
    assert (REGISTRY_KEYS.X_NONZERO_KEY in ours) == sparse
    if sparse:
        x = ours[REGISTRY_KEYS.X_KEY]
        np.testing.assert_array_equal(
            ours[REGISTRY_KEYS.X_NONZERO_KEY].numpy(), np.flatnonzero(x.numpy())
        )


def test_derived_tensors_are_gathered_with_their_rows():
    """``derive`` runs once on the held rows; batches carry its output row-aligned."""
    adata = _adata(False)
    manager = _manager(adata)
    indices = np.random.default_rng(2).permutation(adata.n_obs)[:40]
    calls = []

    def derive(tensors):
        calls.append(len(tensors[REGISTRY_KEYS.X_KEY]))
        return {"row_sum": tensors[REGISTRY_KEYS.X_KEY].sum(1)}

    store = TensorStore(manager, indices, "cpu", derive=derive)
    positions = torch.as_tensor([5, 39, 0, 5])
    batch = store.gather(positions)
    assert calls == [40]
    expected = np.asarray(adata.X[indices[positions.numpy()]]).sum(1)
    np.testing.assert_allclose(batch["row_sum"].numpy(), expected, rtol=1e-6)


def test_nb_likelihood_with_known_non_zeros_is_unchanged():
    gen = torch.Generator().manual_seed(0)
    log_mu = torch.randn(40, 12, generator=gen, dtype=torch.float64)
    log_theta = torch.randn(12, generator=gen, dtype=torch.float64, requires_grad=True)
    x = torch.poisson(torch.exp(log_mu), generator=gen)
    flat = torch.nonzero(x.reshape(-1)).squeeze(1)
    a = nb_log_likelihood(x, log_mu, log_theta)
    b = nb_log_likelihood(x, log_mu, log_theta, nonzero=flat)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    (ga,) = torch.autograd.grad(a.sum(), log_theta)
    (gb,) = torch.autograd.grad(b.sum(), log_theta)
    np.testing.assert_array_equal(ga.numpy(), gb.numpy())


@pytest.mark.parametrize(("n", "batch", "drop_last"), [(10, 4, False), (10, 4, True), (8, 4, True)])
def test_batches_cover_every_position_once(n, batch, drop_last):
    torch.manual_seed(0)
    batches, n_batches = shuffled_batches(n, batch, shuffle=True, drop_last=drop_last)
    got = [b.tolist() for b in batches()]
    assert len(got) == n_batches == (n // batch if drop_last else -(-n // batch))
    flat = [i for b in got for i in b]
    assert len(set(flat)) == len(flat)
    assert len(flat) == (n_batches * batch if drop_last else n)
    second = [i for b in batches() for i in b.tolist()]
    assert flat != second  # reshuffled every pass


def test_split_is_scvi_tools_split():
    adata = _adata(True)
    manager = _manager(adata)
    import scvi

    scvi.settings.seed = 3
    ours = InMemoryDataSplitter(manager, train_size=0.8, batch_size=16)
    ours.setup()
    scvi.settings.seed = 3
    theirs = DataSplitter(manager, train_size=0.8, batch_size=16)
    theirs.setup()
    np.testing.assert_array_equal(ours.train_idx, theirs.train_idx)
    np.testing.assert_array_equal(ours.val_idx, theirs.val_idx)
    loader = ours.train_dataloader()
    seen = np.concatenate([b[REGISTRY_KEYS.SPATIAL_KEY].numpy() for b in loader])
    assert len(loader) == -(-len(ours.train_idx) // 16)
    expected = np.asarray(adata.obsm["spatial"], dtype=np.float32)[ours.train_idx]
    np.testing.assert_array_equal(np.unique(seen, axis=0), np.unique(expected, axis=0))
    assert len(seen) == len(expected)
    # in_memory=False gives scvi-tools' loaders back.
    host = InMemoryDataSplitter(manager, train_size=0.8, batch_size=16, in_memory=False)
    host.setup()
    assert type(host.train_dataloader()).__name__ == "AnnDataLoader"

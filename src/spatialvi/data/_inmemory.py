"""Minibatches from tensors held once on the training device (the fast path of every model).

scvi-tools' :class:`~scvi.dataloaders.AnnDataLoader` builds each minibatch on the host: it
indexes every registered field of the AnnData, densifies the sparse rows, converts NumPy
arrays to tensors and copies them to the device, for every step of every epoch. With the small
networks of the spatialvi models that bookkeeping is a visible share of a step.
:class:`InMemoryDataSplitter` is a scvi-tools data splitter (the same train / validation split,
seeded by ``scvi.settings.seed``) whose loaders read the registered fields of their rows once
into tensors on the training device, sparse count matrices as CSR (memory grows with the
non-zeros, not with ``n_obs × n_vars``), and then cut minibatches by indexing those tensors:
a gather of the batch's rows, densified on the device. Models pass ``in_memory=False`` in
``datasplitter_kwargs`` to get scvi-tools' loaders back (for comparison).

A module may also derive tensors from its fields once, when the store is built, instead of at
every step (``derive``: SIVAE's pair features, which depend on the point sets alone); batches
then carry them under their own keys, and the module computes them itself when they are absent
(scvi-tools' loaders).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from scipy.sparse import csr_matrix, issparse
from scvi import settings
from scvi.dataloaders import DataSplitter

from spatialvi._keys import REGISTRY_KEYS


class TensorStore:
    """The registered fields of some rows of an AnnData, as tensors on one device.

    Dense fields are stored as scvi-tools' loaders load them (same dtypes); SciPy sparse
    matrices (the count matrix) as CSR, densified row by row when a minibatch is gathered.

    Parameters
    ----------
    adata_manager
        The model's AnnData manager.
    indices
        Rows of the AnnData to hold, in this order (minibatch positions refer to it).
    device
        Device the tensors live on.
    derive
        Optional function of the dense fields (a dict of tensors over all rows) returning more
        row-indexed tensors to hold and gather with them.
    """

    def __init__(self, adata_manager, indices: np.ndarray, device, derive=None):
        indices = np.asarray(indices, dtype=np.int64)
        self.n_obs = len(indices)
        self.device = torch.device(device)
        self.dense: dict[str, torch.Tensor] = {}
        # CSR per sparse field: SciPy on the CPU, (crow, col, values, n_cols) tensors elsewhere.
        self.sparse: dict = {}
        dataset = adata_manager.create_torch_dataset()
        dense_keys = {}
        for key, dtype in dataset.keys_and_dtypes.items():
            value = dataset.data[key]
            if not issparse(value):
                dense_keys[key] = dtype
                continue
            rows = csr_matrix(value[indices], dtype=dtype)
            rows.eliminate_zeros()
            rows.sort_indices()
            if self.device.type == "cpu":
                # On the CPU SciPy's row gather is ~10x faster than the torch one below.
                self.sparse[key] = rows
            else:
                self.sparse[key] = (
                    torch.as_tensor(rows.indptr.astype(np.int64), device=self.device),
                    torch.as_tensor(rows.indices.astype(np.int64), device=self.device),
                    torch.as_tensor(rows.data, device=self.device),
                    int(rows.shape[1]),
                )
        if dense_keys and len(indices):
            # AnnTorchDataset converts the dense fields the way scvi-tools' loaders do (dtypes,
            # DataFrames); one call reads all rows at once.
            subset = adata_manager.create_torch_dataset(data_and_attributes=dense_keys)
            for key, value in subset[indices].items():
                self.dense[key] = torch.as_tensor(np.asarray(value), device=self.device)
        if derive is not None and len(indices):
            self.dense.update(derive(dict(self.dense)))

    def gather(self, positions: torch.Tensor) -> dict[str, torch.Tensor]:
        """The minibatch of the rows at ``positions`` (into this store), as dense tensors.

        A sparse count matrix ``X`` also gives ``X_nonzero``
        (``REGISTRY_KEYS.X_NONZERO_KEY``): the sorted flat positions of its non-zero entries in
        the dense minibatch, which :func:`~spatialvi.nn.nb_log_likelihood` takes.
        """
        batch = {key: t[positions] for key, t in self.dense.items()}
        for key, value in self.sparse.items():
            if isinstance(value, csr_matrix):
                batch[key], flat = _gather_scipy_rows(value, positions)
            else:
                batch[key], flat = _gather_csr_rows(*value, positions)
            if key == REGISTRY_KEYS.X_KEY:
                batch[REGISTRY_KEYS.X_NONZERO_KEY] = flat
        return batch


def _gather_scipy_rows(matrix: csr_matrix, rows: torch.Tensor):
    """:func:`_gather_csr_rows` for a SciPy CSR matrix on the host (CPU training)."""
    sub = matrix[rows.numpy()]
    lengths = np.diff(sub.indptr)
    flat = np.repeat(np.arange(sub.shape[0], dtype=np.int64) * sub.shape[1], lengths)
    flat += sub.indices
    return torch.from_numpy(sub.toarray()), torch.from_numpy(flat)


def _gather_csr_rows(crow, col, values, n_cols: int, rows: torch.Tensor):
    """Dense ``len(rows) × n_cols`` matrix of the CSR rows ``rows``, and its non-zero positions.

    The positions are flat (row-major) indices into the dense matrix, sorted when the column
    indices of each CSR row are and without explicit zeros (the store makes them so).

    Written by hand because torch has no row gather for CSR tensors (``index_select`` on a
    sparse CSR tensor goes through COO and sorts); this is one ``repeat_interleave`` and one
    scatter, on the tensors' device.
    """
    starts = crow[rows]
    lengths = crow[rows + 1] - starts
    out = values.new_zeros(len(rows), n_cols)
    total = int(lengths.sum())
    if total == 0:
        return out, torch.zeros(0, dtype=torch.int64, device=rows.device)
    row_of = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), lengths)
    first = torch.cumsum(lengths, 0) - lengths
    pos = starts[row_of] + torch.arange(total, device=rows.device) - first[row_of]
    flat = row_of * n_cols + col[pos]
    out.view(-1)[flat] = values[pos]
    return out, flat


class TensorBatchLoader:
    """An iterable of minibatches (dicts of tensors) cut from a :class:`TensorStore`.

    Parameters
    ----------
    store
        The tensors.
    batches
        A function returning, for one pass, an iterable of position lists (into ``store``);
        called at the start of every pass (epoch), so it may shuffle.
    n_batches
        Number of minibatches per pass.
    """

    def __init__(self, store: TensorStore, batches: Callable[[], Iterable], n_batches: int):
        self.store, self._batches, self._n = store, batches, int(n_batches)

    def __len__(self) -> int:
        return self._n

    def __iter__(self):
        device = self.store.device
        for positions in self._batches():
            yield self.store.gather(torch.as_tensor(positions, dtype=torch.int64, device=device))


def shuffled_batches(n: int, batch_size: int, shuffle: bool, drop_last: bool):
    """Batches of positions ``0 … n−1`` as scvi-tools' loaders cut them.

    Returns ``(batches, n_batches)``: ``batches()`` gives one pass, shuffled (torch's global
    generator, which ``scvi.settings.seed`` seeds) when ``shuffle``; the last incomplete batch
    is dropped when ``drop_last``.
    """
    batch_size = max(1, int(batch_size))
    full, rest = divmod(n, batch_size)
    n_batches = full + (0 if drop_last or rest == 0 else 1)

    def batches():
        order = torch.randperm(n) if shuffle else torch.arange(n)
        for k in range(n_batches):
            yield order[k * batch_size : (k + 1) * batch_size]

    return batches, n_batches


class InMemoryDataSplitter(DataSplitter):
    """scvi-tools' data splitter with loaders that cut minibatches from device-held tensors.

    The split (``train_idx`` / ``val_idx`` / ``test_idx``) is scvi-tools' own. Each loader holds
    the registered fields of its rows once, on the device the trainer trains on (see
    :class:`TensorStore`); every epoch it shuffles positions and gathers minibatches.

    Parameters
    ----------
    adata_manager
        The model's AnnData manager.
    in_memory
        ``False``: scvi-tools' :class:`~scvi.dataloaders.AnnDataLoader` instead (the slower
        path, kept for comparison). A backed AnnData always uses scvi-tools' loaders.
    derive
        Tensors derived once from the held fields (:class:`TensorStore`).
    **kwargs
        As :class:`~scvi.dataloaders.DataSplitter` (``train_size``, ``batch_size``,
        ``drop_last``, …).
    """

    def __init__(self, adata_manager, in_memory: bool = True, derive=None, **kwargs):
        super().__init__(adata_manager, **kwargs)
        self.in_memory = bool(in_memory) and not adata_manager.adata.isbacked
        self.derive = derive

    @property
    def _device(self):
        trainer = getattr(self, "trainer", None)
        return trainer.strategy.root_device if trainer is not None else torch.device("cpu")

    def _batch_size(self) -> int:
        return int(self.data_loader_kwargs.get("batch_size") or settings.batch_size)

    def _batches(self, indices: np.ndarray, shuffle: bool, drop_last: bool):
        """``(batches, n_batches)`` over positions into ``indices``; subclasses change the cut."""
        return shuffled_batches(len(indices), self._batch_size(), shuffle, drop_last)

    def _loader(self, indices: np.ndarray, shuffle: bool, drop_last: bool):
        """A loader over the rows ``indices``: device-held tensors, or the host loader."""
        if not self.in_memory:
            return self._host_loader(indices, shuffle, drop_last)
        store = TensorStore(self.adata_manager, indices, self._device, self.derive)
        batches, n_batches = self._batches(indices, shuffle, drop_last)
        return TensorBatchLoader(store, batches, n_batches)

    def _host_loader(self, indices: np.ndarray, shuffle: bool, drop_last: bool):
        """scvi-tools' loader over the rows ``indices`` (``in_memory=False``)."""
        return self.data_loader_cls(
            self.adata_manager,
            indices=indices,
            shuffle=shuffle,
            drop_last=drop_last,
            load_sparse_tensor=self.load_sparse_tensor,
            pin_memory=self.pin_memory,
            **self.data_loader_kwargs,
        )

    def train_dataloader(self):
        """Shuffled minibatches of the training rows."""
        return self._loader(self.train_idx, True, self.drop_last)

    def val_dataloader(self):
        """Minibatches of the validation rows in order (``None`` without any)."""
        return self._loader(self.val_idx, False, False) if len(self.val_idx) else None

    def test_dataloader(self):
        """Minibatches of the remaining rows in order (``None`` without any)."""
        return self._loader(self.test_idx, False, False) if len(self.test_idx) else None


__all__ = [
    "InMemoryDataSplitter",
    "TensorBatchLoader",
    "TensorStore",
    "shuffled_batches",
]

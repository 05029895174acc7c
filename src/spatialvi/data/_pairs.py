"""Minibatches of pairs: a data splitter that keeps the two members of each pair together.

Weakly supervised models (AdaGVAE) train on pairs of observations that share all but a few
factors. :class:`PairDataSplitter` splits *pairs* (not observations) into training and
validation sets and loads minibatches whose rows ``2i`` and ``2i + 1`` are the two members of
one pair, shuffled by pair each epoch. It plugs into scvi-tools' training as any data splitter
(``_data_splitter_cls``), like the contrastive models' splitter; it is an
:class:`~spatialvi.data.InMemoryDataSplitter` (minibatches cut from device-held tensors). A model
set up without pairs gets the plain :class:`~spatialvi.data.InMemoryDataSplitter`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scvi import settings
from torch.utils.data import DataLoader, Sampler

from spatialvi.data._inmemory import InMemoryDataSplitter


def pair_members(pair_ids) -> np.ndarray:
    """Row indices of each pair's two members, ``n_pairs × 2`` (pairs in order of first row).

    Raises a ``ValueError`` naming the offending ids when a pair id has one member (a missing
    partner) or more than two, or when an id is missing.
    """
    ids = pd.Series(np.asarray(pair_ids))
    if ids.isna().any():
        raise ValueError(
            f"{int(ids.isna().sum())} observations have no pair id; every observation of a "
            "paired AnnData needs one (or set it up without `pair_key` for unsupervised training)."
        )
    codes, uniques = pd.factorize(ids)
    sizes = np.bincount(codes, minlength=len(uniques))
    bad = np.flatnonzero(sizes != 2)
    if bad.size:
        examples = ", ".join(f"{uniques[i]!r} ({sizes[i]} rows)" for i in bad[:5])
        raise ValueError(
            f"{bad.size} pair ids do not have exactly two members: {examples}"
            f"{' …' if bad.size > 5 else ''}. Each pair needs both of its members "
            "(a missing partner or a third member is an error)."
        )
    order = np.argsort(codes, kind="stable")
    return order.reshape(len(uniques), 2)


class PairBatchSampler(Sampler):
    """Batches of positions ``[a₀, b₀, a₁, b₁, …]`` from ``pairs_per_batch`` pairs at a time.

    Parameters
    ----------
    members
        ``n_pairs × 2`` positions (in the dataset) of each pair's members.
    pairs_per_batch
        Pairs per minibatch (the minibatch holds twice as many rows).
    shuffle
        Shuffle the pairs every epoch (torch's global generator, seeded by scvi-tools).
    drop_last
        Drop the last incomplete minibatch.
    """

    def __init__(
        self, members: np.ndarray, pairs_per_batch: int, shuffle: bool, drop_last: bool = False
    ):
        self.members = np.asarray(members, dtype=np.int64)
        self.pairs_per_batch = max(1, int(pairs_per_batch))
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)

    def __len__(self) -> int:
        n = len(self.members)
        full, rest = divmod(n, self.pairs_per_batch)
        return full + (0 if self.drop_last or rest == 0 else 1)

    def __iter__(self):
        n = len(self.members)
        order = torch.randperm(n).numpy() if self.shuffle else np.arange(n)
        for start in range(0, n, self.pairs_per_batch):
            chunk = order[start : start + self.pairs_per_batch]
            if self.drop_last and len(chunk) < self.pairs_per_batch:
                return
            yield self.members[chunk].reshape(-1).tolist()


class PairedAnnDataLoader(DataLoader):
    """A loader of pair minibatches over the rows ``indices`` of a registered AnnData.

    ``batch_size`` counts rows (two per pair). The rows of each pair are found from the pair
    ids; ``indices`` must hold both members of every pair it touches.
    """

    def __init__(
        self,
        adata_manager,
        indices,
        pair_ids,
        batch_size: int = 128,
        shuffle: bool = False,
        drop_last: bool = False,
        load_sparse_tensor: bool = False,
        pin_memory: bool = False,
        **kwargs,
    ):
        for unused in ("distributed_sampler", "drop_dataset_tail", "iter_ndarray"):
            kwargs.pop(unused, None)
        indices = np.asarray(indices, dtype=np.int64)
        dataset = adata_manager.create_torch_dataset(
            indices=indices, load_sparse_tensor=load_sparse_tensor
        )
        members = pair_members(np.asarray(pair_ids)[indices])
        sampler = PairBatchSampler(members, int(batch_size) // 2, shuffle, drop_last)
        kwargs.setdefault("num_workers", settings.dl_num_workers)
        super().__init__(dataset, sampler=sampler, batch_size=None, pin_memory=pin_memory, **kwargs)


class PairDataSplitter(InMemoryDataSplitter):
    """scvi-tools data splitter over pairs: ``train_size`` is the fraction of pairs in training.

    Parameters
    ----------
    adata_manager
        The model's AnnData manager; the pair ids are read from ``pair_registry_key``.
    pair_registry_key
        Registry key of the pair ids.
    **kwargs
        As :class:`~scvi.dataloaders.DataSplitter` (``train_size``, ``batch_size``,
        ``shuffle_set_split``, ``drop_last``, …).
    """

    def __init__(self, adata_manager, pair_registry_key: str, **kwargs):
        super().__init__(adata_manager, **kwargs)
        ids = np.asarray(adata_manager.get_from_registry(pair_registry_key)).reshape(-1)
        self.pair_ids = ids
        self.members = pair_members(ids)
        n_pairs = len(self.members)
        self.n_train_pairs = max(1, int(np.ceil(self.train_size * n_pairs)))
        if self.validation_size is not None:
            n_val = round(float(self.validation_size) * n_pairs)
        else:
            n_val = n_pairs - self.n_train_pairs
        self.n_val_pairs = max(0, min(n_val, n_pairs - self.n_train_pairs))
        self.n_train, self.n_val = 2 * self.n_train_pairs, 2 * self.n_val_pairs

    def setup(self, stage: str | None = None):
        """Split the pairs (seeded by ``scvi.settings.seed``) into train/validation/test."""
        order = np.arange(len(self.members))
        if self.shuffle_set_split:
            order = np.random.RandomState(seed=settings.seed).permutation(order)
        n_train, n_val = self.n_train_pairs, self.n_val_pairs
        self.val_idx = self.members[order[:n_val]].reshape(-1)
        self.train_idx = self.members[order[n_val : n_val + n_train]].reshape(-1)
        self.test_idx = self.members[order[n_val + n_train :]].reshape(-1)

    def _batches(self, indices: np.ndarray, shuffle: bool, drop_last: bool):
        """Pair minibatches (rows ``2i``, ``2i + 1`` one pair) over positions into ``indices``."""
        members = pair_members(self.pair_ids[np.asarray(indices)])
        sampler = PairBatchSampler(members, self._batch_size() // 2, shuffle, drop_last)
        return (lambda: iter(sampler)), len(sampler)

    def _host_loader(self, indices: np.ndarray, shuffle: bool, drop_last: bool):
        """scvi-tools-style loader of pair minibatches (``in_memory=False``)."""
        return PairedAnnDataLoader(
            self.adata_manager,
            indices,
            self.pair_ids,
            shuffle=shuffle,
            drop_last=drop_last,
            load_sparse_tensor=self.load_sparse_tensor,
            pin_memory=self.pin_memory,
            **self.data_loader_kwargs,
        )

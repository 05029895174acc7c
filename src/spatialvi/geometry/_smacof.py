"""Weighted, anchored SMACOF (stress majorisation) and classical (Torgerson) MDS.

Hand-written because :func:`sklearn.manifold.smacof` has neither weights nor anchors and
materialises several dense ``n × n`` float64 arrays per iteration. References: de Leeuw &
Mair 2009 (J. Stat. Softw. 31(3)) for the weighted Guttman transform; the anchored updates are
the constrained majorisation steps given in the project SPEC ("SMACOF with weights and
anchors"). Stress is ``σ(X) = Σ_{i<j} w_ij (δ_ij − d_ij(X))²``.

Backends:

* ``dense``: torch float32, rows processed in chunks so that only ``chunk × n`` temporaries
  exist besides the dissimilarities themselves (up to ~20k points).
* ``sparse``: dissimilarities and weights given on the edges of a sparse graph (e.g. kNN);
  cost per iteration ``O(|E|·p)``; initialised by landmark MDS on graph shortest paths.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import sparse

from spatialvi._checks import (
    check_array_coordinates,
    check_distance_matrix,
    check_int,
    check_number,
)
from spatialvi._threads import keeps_torch_threads
from spatialvi.geometry._procrustes import similarity_fit


class _SmacofPair(NamedTuple):
    coordinates: np.ndarray
    """``n × p`` configuration."""
    stress: float
    """Final raw stress ``Σ_{i<j} w_ij (δ_ij − d_ij)²``."""


class SmacofResult(_SmacofPair):
    """Output of :func:`smacof`: unpacks as ``coordinates, stress``.

    Also carries ``n_iter`` (iterations run) and ``history`` (stress after each iteration,
    non-increasing up to float32 rounding) as attributes.
    """

    n_iter: int
    history: np.ndarray

    def __new__(cls, coordinates, stress, n_iter: int, history: np.ndarray):
        result = super().__new__(cls, coordinates, stress)
        result.n_iter = n_iter
        result.history = history
        return result


# ---------------------------------------------------------------------------------------------
# classical MDS and alignment
# ---------------------------------------------------------------------------------------------
def torgerson(dissimilarities: np.ndarray, n_components: int = 2) -> np.ndarray:
    """Classical (Torgerson) MDS: top eigenvectors of the double-centred squared dissimilarities."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    d2 = np.asarray(dissimilarities, dtype=np.float64) ** 2
    n = d2.shape[0]
    row_mean = d2.mean(axis=1)
    total = row_mean.mean()

    def matvec(v):
        v = np.asarray(v).ravel()
        # −½ J D² J v without forming the centred matrix (J = I − 11ᵀ/n).
        vc = v - v.mean()
        out = d2 @ vc
        return -0.5 * (out - out.mean() - row_mean * vc.sum() + total * 0)

    if n <= 600:
        j = np.eye(n) - 1.0 / n
        b = -0.5 * j @ d2 @ j
        vals, vecs = np.linalg.eigh(b)
        vals, vecs = vals[::-1][:n_components], vecs[:, ::-1][:, :n_components]
    else:
        op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
        vals, vecs = eigsh(
            op, k=n_components, which="LA", v0=np.ones(n) / np.sqrt(n) + 1e-3 * np.arange(n) / n
        )
        order = np.argsort(vals)[::-1]
        vals, vecs = vals[order], vecs[:, order]
    return vecs * np.sqrt(np.clip(vals, 0, None))[None, :]


# ---------------------------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------------------------
def _parse_anchors(anchors, n: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    if anchors is None:
        return np.zeros(0, dtype=np.int64), np.zeros((0, p))
    if isinstance(anchors, dict):
        idx = np.fromiter((int(k) for k in anchors), dtype=np.int64, count=len(anchors))
        pos = np.array([np.asarray(v, dtype=np.float64) for v in anchors.values()]).reshape(
            len(idx), -1
        )
    elif isinstance(anchors, tuple) and len(anchors) == 2:
        idx = np.asarray(anchors[0], dtype=np.int64).ravel()
        pos = np.asarray(anchors[1], dtype=np.float64)
    else:
        arr = np.asarray(anchors, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] != n:
            raise ValueError(
                "`anchors` must be a dict {row: coordinates}, a tuple (rows, coordinates), or an "
                f"n × p array with NaN rows for free points; got shape {arr.shape}."
            )
        known = ~np.isnan(arr).any(axis=1)
        idx, pos = np.flatnonzero(known), arr[known]
    if pos.shape != (len(idx), p):
        raise ValueError(
            f"`anchors`: anchor coordinates must be {len(idx)} × {p} (one row of "
            f"`n_components`={p} coordinates per anchor), got {pos.shape}."
        )
    outside = (idx < 0) | (idx >= n)
    if outside.any():
        raise ValueError(
            f"`anchors`: anchor rows must lie in [0, {n}), one per row of `dissimilarities`; "
            f"got {sorted(set(idx[outside].tolist()))[:5]}."
        )
    rows, counts = np.unique(idx, return_counts=True)
    if (counts > 1).any():
        raise ValueError(
            f"`anchors`: anchor rows must be distinct; rows {rows[counts > 1][:5].tolist()} are "
            "given more than once. Give each anchored row one position."
        )
    if not np.isfinite(pos).all():
        bad = idx[~np.isfinite(pos).all(axis=1)]
        raise ValueError(
            f"`anchors`: anchor coordinates must be finite; rows {bad[:5].tolist()} are not."
        )
    return idx, pos


# ---------------------------------------------------------------------------------------------
# the solver
# ---------------------------------------------------------------------------------------------
@keeps_torch_threads
def smacof(
    dissimilarities,
    n_components: int = 2,
    weights=None,
    anchors=None,
    anchor_weight: float | None = None,
    init: np.ndarray | None = None,
    max_iter: int = 300,
    eps: float = 1e-6,
    chunk_size: int | None = None,
    random_state: int | None = 0,
) -> SmacofResult:
    """Weighted metric MDS by SMACOF, with optional hard or soft anchors.

    Parameters
    ----------
    dissimilarities
        Dense symmetric ``n × n`` array, or a sparse matrix giving δ on the edges of a graph
        (sparse backend; pairs absent from it have weight 0).
    n_components
        Output dimension ``p``.
    weights
        Non-negative symmetric weights ``w_ij`` (dense, or sparse on the same pattern as sparse
        dissimilarities); default 1 for every (stored) pair.
    anchors
        Known coordinates of some rows: ``{row: coords}``, ``(rows, coords)`` or an ``n × p``
        array with NaN rows for the free points.
    anchor_weight
        ``None``: hard anchors (rows fixed; free rows by the closed-form constrained update).
        A positive number μ: soft anchors, a penalty ``μ·deg_i‖x_i − a_i‖²`` with ``deg_i``
        the weighted degree of row ``i`` (an absolute μ would let anchors drift).
    init
        Start configuration; default Torgerson MDS (landmark MDS on graph distances for the
        sparse backend), aligned to the anchors by a similarity transform when given.
    max_iter, eps
        Stop after ``max_iter`` iterations or once the stress decrease relative to
        ``Σ_{i<j} d_ij²`` falls below ``eps`` (scikit-learn's criterion).
    chunk_size
        Rows per chunk of the dense backend (memory ``chunk_size × n`` floats); default about
        2²⁵ / n (at least 1024): large chunks keep the per-chunk overhead of torch small.
    random_state
        Seed for the sparse backend's landmark choice.

    Returns
    -------
    :class:`SmacofResult` ``(coordinates, stress, n_iter, history)``.
    """
    is_sparse = sparse.issparse(dissimilarities)
    if is_sparse:
        if dissimilarities.ndim != 2 or dissimilarities.shape[0] != dissimilarities.shape[1]:
            raise ValueError(
                "`dissimilarities` must be a square n × n matrix, got shape "
                f"{dissimilarities.shape}."
            )
    else:
        dissimilarities = check_distance_matrix("dissimilarities", dissimilarities)
    n = dissimilarities.shape[0]
    check_int("n_components", n_components)
    if anchor_weight is not None:
        check_number("anchor_weight (None for hard anchors)", anchor_weight, low=0, low_open=True)
    check_int("max_iter", max_iter, minimum=0)
    anchor_idx, anchor_pos = _parse_anchors(anchors, n, n_components)
    if is_sparse:
        problem = _SparseProblem(dissimilarities, weights, chunk_size)
    else:
        problem = _DenseProblem(dissimilarities, weights, chunk_size, checked=True)

    if init is None:
        x = problem.initial(n_components, random_state)
        if len(anchor_idx) >= n_components + 1:
            scale, rot, shift = similarity_fit(x[anchor_idx], anchor_pos)
            x = scale * x @ rot + shift
    else:
        x = np.array(init, dtype=np.float64)
        if x.shape != (n, n_components):
            raise ValueError(
                f"`init` must be {n} × {n_components} (one row per row of `dissimilarities`, "
                f"`n_components` columns), got shape {x.shape}."
            )
        x = check_array_coordinates("init", x, n_dims=(n_components,), n_obs=n).copy()
    hard = len(anchor_idx) > 0 and anchor_weight is None
    if hard:
        x[anchor_idx] = anchor_pos
    solve = problem.make_solver(anchor_idx, anchor_weight)

    # One pass over the pairs gives both the stress of X and B(X)X for the next update.
    stress, sum_sq, bx = problem.evaluate(x)
    history = []
    for _ in range(max_iter):
        if len(anchor_idx) and not hard:
            deg = problem.degree[anchor_idx]
            bx[anchor_idx] += anchor_weight * deg[:, None] * anchor_pos
        x = solve(bx, x, anchor_pos)
        new_stress, sum_sq, bx = problem.evaluate(x)
        history.append(new_stress)
        converged = (stress - new_stress) / max(sum_sq, 1e-300) < eps
        stress = new_stress
        if converged:
            break
    return SmacofResult(x, float(stress), len(history), np.asarray(history))


class _DenseProblem:
    def __init__(self, dissimilarities, weights, chunk_size, checked: bool = False):
        import torch

        self.torch = torch
        # `smacof` checks the matrix before building the problem (`checked=True`).
        d = (
            dissimilarities
            if checked
            else check_distance_matrix("dissimilarities", dissimilarities)
        )
        self.n = d.shape[0]
        self.delta = torch.as_tensor(d, dtype=torch.float32)
        if weights is None:
            self.w = None
            self.degree = np.full(self.n, self.n - 1.0)
        else:
            w = check_distance_matrix(
                "weights", weights.toarray() if sparse.issparse(weights) else weights
            )
            np.fill_diagonal(w, 0.0)
            self.w = torch.as_tensor(w, dtype=torch.float32)
            self.degree = w.sum(axis=1)
        self.chunk = max(1, int(chunk_size)) if chunk_size else max(1024, 2**25 // max(self.n, 1))

    def initial(self, p, random_state):
        return torgerson(self.delta.double().numpy(), p)

    def _chunks(self):
        for start in range(0, self.n, self.chunk):
            yield slice(start, min(start + self.chunk, self.n))

    def evaluate(self, x):
        """Stress, ``Σ_{i<j} d_ij²`` and ``B(X) X`` in one chunked pass over the pairs."""
        if x.shape[1] == 2:
            return self._evaluate_fused_2d(x)
        return self._evaluate_torch(x)

    def _evaluate_torch(self, x):
        torch = self.torch
        xt = torch.as_tensor(x, dtype=torch.float32)
        out = torch.empty_like(xt)
        total, sum_sq = 0.0, 0.0
        for rows in self._chunks():
            dist = torch.cdist(xt[rows], xt).clamp_min_(0.0)
            delta = self.delta[rows]
            flat = dist.view(-1)
            sum_sq += float(torch.dot(flat, flat))
            # B off-diagonal −w δ/d, zero where d = 0 (coincident points, the diagonal).
            ratio = delta / dist
            ratio.masked_fill_(dist == 0, 0.0)
            resid = dist.sub_(delta).view(-1)  # dist is not needed any more: reuse its memory
            if self.w is not None:
                w = self.w[rows]
                ratio.mul_(w)
                total += float(torch.dot(resid * w.reshape(-1), resid))
            else:
                total += float(torch.dot(resid, resid))
            out[rows] = ratio.sum(1, keepdim=True) * xt[rows] - ratio @ xt
        return total / 2, sum_sq / 2, out.double().numpy()

    def _evaluate_fused_2d(self, x):
        from spatialvi.geometry._smacof_kernels import guttman_pass_2d

        delta = self.delta.numpy()
        weighted = self.w is not None
        weights = self.w.numpy() if weighted else np.ones((1, 1), dtype=np.float32)
        x32 = np.ascontiguousarray(x.T, dtype=np.float32)
        out = np.empty_like(x32)
        stress, sum_sq = guttman_pass_2d(delta, weights, weighted, x32[0], x32[1], out[0], out[1])
        return float(stress), float(sum_sq), out.T.astype(np.float64)

    def laplacian(self):
        if self.w is None:
            return None
        w = self.w.double().numpy()
        return np.diag(w.sum(axis=1)) - w

    def make_solver(self, anchor_idx, anchor_weight):
        from scipy.linalg import cho_factor, cho_solve

        n = self.n
        v = self.laplacian()
        if len(anchor_idx) == 0:
            if v is None:
                return lambda bx, x, a: bx / n  # unit weights: V⁺ B X = B X / n
            # V⁺ on the centred subspace: (V + 11ᵀ/n)⁻¹ applied to B X (whose columns sum to 0).
            factor = cho_factor(v + 1.0 / n)
            return lambda bx, x, a: cho_solve(factor, bx)
        if v is None:
            v = n * np.eye(n) - 1.0
        if anchor_weight is not None:
            mu = np.zeros(n)
            mu[anchor_idx] = anchor_weight * self.degree[anchor_idx]
            factor = cho_factor(v + np.diag(mu))
            return lambda bx, x, a: cho_solve(factor, bx)
        free = np.setdiff1d(np.arange(n), anchor_idx)
        factor = cho_factor(v[np.ix_(free, free)])
        v_fa = v[np.ix_(free, anchor_idx)]

        def solve(bx, x, a):
            out = x.copy()
            out[free] = cho_solve(factor, bx[free] - v_fa @ a)
            out[anchor_idx] = a
            return out

        return solve


class _SparseProblem:
    def __init__(self, dissimilarities, weights, chunk_size):
        d = sparse.coo_matrix(dissimilarities)
        d.sum_duplicates()
        if not np.isfinite(d.data).all():
            raise ValueError("`dissimilarities` contains NaN or infinite values.")
        if (d.data < 0).any():
            raise ValueError("`dissimilarities` contains negative values.")
        self.n = d.shape[0]
        sym = sparse.triu(
            d + d.T, k=1
        ).tocoo()  # stored once per pair; δ doubled if given both ways
        both = sparse.triu((d != 0).astype(np.float64) + (d != 0).T, k=1).tocoo()
        self.i, self.j = sym.row, sym.col
        counts = np.asarray(both.tocsr()[self.i, self.j]).ravel()
        self.delta = sym.data / np.maximum(counts, 1)
        if weights is None:
            self.w = np.ones_like(self.delta)
        else:
            w = sparse.csr_matrix(weights)
            self.w = np.asarray(w[self.i, self.j]).ravel()
            if (self.w < 0).any():
                raise ValueError("`weights` contains negative values.")
        self.degree = np.bincount(self.i, self.w, self.n) + np.bincount(self.j, self.w, self.n)
        self.random_state = None

    def initial(self, p, random_state):
        """Landmark MDS (de Silva & Tenenbaum 2004) on graph shortest-path distances."""
        from scipy.sparse.csgraph import connected_components, dijkstra

        graph = sparse.coo_matrix((self.delta, (self.i, self.j)), shape=(self.n, self.n)).tocsr()
        n_parts, labels = connected_components(graph, directed=False)
        if n_parts > 1:
            sizes = np.bincount(labels)
            raise ValueError(
                f"`dissimilarities` is a graph of {n_parts} disconnected parts (sizes "
                f"{sorted(sizes.tolist(), reverse=True)[:5]}): the relative placement of the "
                "parts is not determined. Build the kNN graph with more neighbours (raise "
                "`n_neighbors`) or pass `init=`."
            )
        rng = np.random.default_rng(random_state)
        n_land = min(self.n, max(3 * p + 1, 200))
        land = rng.choice(self.n, n_land, replace=False)
        dl = dijkstra(graph, directed=False, indices=land)  # n_land × n
        emb_land = torgerson(dl[:, land], p)
        # Triangulation: x = −½ L⁺ (δ² − mean δ² over landmarks).
        pinv = np.linalg.pinv(emb_land)
        mean_sq = (dl[:, land] ** 2).mean(axis=1)
        return (-0.5 * pinv @ (dl**2 - mean_sq[:, None])).T

    def evaluate(self, x):
        """Stress, ``Σ d_ij²`` over the edges and ``B(X) X``."""
        stress, sum_sq = self.stress(x)
        return stress, sum_sq, self.guttman_rhs(x)

    def guttman_rhs(self, x):
        diff = x[self.i] - x[self.j]
        dist = np.sqrt((diff**2).sum(axis=1))
        ratio = np.where(dist > 0, self.w * self.delta / np.maximum(dist, 1e-300), 0.0)
        contrib = ratio[:, None] * diff
        out = np.zeros_like(x)
        np.add.at(out, self.i, contrib)
        np.add.at(out, self.j, -contrib)
        return out

    def stress(self, x):
        dist = np.sqrt(((x[self.i] - x[self.j]) ** 2).sum(axis=1))
        return float((self.w * (self.delta - dist) ** 2).sum()), float((dist**2).sum())

    def make_solver(self, anchor_idx, anchor_weight):
        from scipy.sparse.linalg import splu

        n = self.n
        w = sparse.coo_matrix((self.w, (self.i, self.j)), shape=(n, n))
        w = (w + w.T).tocsr()
        v = (sparse.diags(np.asarray(w.sum(axis=1)).ravel()) - w).tocsc()
        if len(anchor_idx) == 0:
            # V is singular along 1; B X is centred, so a tiny ridge solves on the centred subspace.
            lu = splu((v + sparse.identity(n) * 1e-9 * self.degree.mean()).tocsc())

            def solve(bx, x, a):
                out = lu.solve(bx)
                return out - out.mean(axis=0)

            return solve
        if anchor_weight is not None:
            mu = np.zeros(n)
            mu[anchor_idx] = anchor_weight * self.degree[anchor_idx]
            lu = splu((v + sparse.diags(mu)).tocsc())
            return lambda bx, x, a: lu.solve(bx)
        free = np.setdiff1d(np.arange(n), anchor_idx)
        v = v.tocsr()
        lu = splu(v[free][:, free].tocsc())
        v_fa = v[free][:, anchor_idx]

        def solve(bx, x, a):
            out = x.copy()
            out[free] = lu.solve(bx[free] - v_fa @ a)
            out[anchor_idx] = a
            return out

        return solve

"""Fused CPU kernel for one dense SMACOF pass (numba; numba is already a scanpy dependency).

Written by hand because no library offers a weighted Guttman transform: one pass over the
dissimilarity rows computes ``B(X)X``, the stress and ``Σ d²`` without materialising any
``n × n`` temporary. Specialised to two output dimensions with scalar accumulators so that
LLVM vectorises the inner loop; in float32 with the stress sums in float64.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, fastmath=True, cache=True)
def guttman_pass_2d(delta, weights, weighted, x0, x1, out0, out1):  # pragma: no cover - jitted
    """Fill ``out = B(X) X`` for ``X = [x0, x1]``; return (stress, Σ_{i<j} d_ij²)."""
    n = x0.shape[0]
    stress = np.zeros(n)
    sum_sq = np.zeros(n)
    for i in prange(n):
        a = x0[i]
        b = x1[i]
        acc_r = np.float32(0.0)
        acc0 = np.float32(0.0)
        acc1 = np.float32(0.0)
        s = 0.0
        q = 0.0
        row = delta[i]
        wrow = weights[i] if weighted else weights[0]
        for j in range(n):
            t0 = a - x0[j]
            t1 = b - x1[j]
            d2 = t0 * t0 + t1 * t1
            d = np.sqrt(d2)
            dl = row[j]
            wij = wrow[j] if weighted else np.float32(1.0)
            # B off-diagonal −w δ/d, zero where d = 0 (the diagonal, coincident points).
            r = wij * dl / d if d > 0 else np.float32(0.0)
            acc_r += r
            acc0 += r * x0[j]
            acc1 += r * x1[j]
            res = dl - d
            s += wij * res * res
            q += d2
        out0[i] = acc_r * a - acc0
        out1[i] = acc_r * b - acc1
        stress[i] = s
        sum_sq[i] = q
    return stress.sum() / 2, sum_sq.sum() / 2

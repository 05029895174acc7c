"""Disentanglement metrics on a latent code with known generative factors.

Every metric takes ``latents`` (``n × d`` posterior means) and ``factors`` (``n × K`` integer
codes, or a DataFrame whose columns are the factors) and returns scores in [0, 1]. Definitions
(see ``docs/disentanglement.md``):

- **MIG** (Chen et al. 2018): each code dimension discretised into equal-width bins; per factor
  the gap between the two largest mutual informations with a code dimension, over the factor's
  entropy; mean over factors.
- **DCI** (Eastwood & Williams 2018): an importance matrix ``R`` (code dims × factors) from the
  impurity importances of one gradient-boosted classifier per factor; disentanglement
  ``Σ_j ρ_j (1 − H_K(P_j))`` with ``P_j`` row ``j`` normalised and ``ρ_j`` its share of the
  total importance, completeness likewise over factors (entropy base ``d``), informativeness the
  mean held-out accuracy.
- **SAP** (Kumar et al. 2018): per factor the gap between the two best single-dimension
  predictors — R² of a linear fit (``mode='continuous'``) or held-out accuracy of a linear SVM
  on one dimension (``mode='discrete'``); mean over factors.
- **FactorVAE score** (Kim & Mnih 2018): dims with std < 0.05 pruned; each vote fixes one
  factor's value, draws ``batch_size`` observations with that value and votes for the dim of
  least variance (normalised by its global variance); a majority-vote classifier from dim to
  factor is fitted on training votes and scored on evaluation votes.
- **OMES** (Dapueto et al. 2024): from pairs that differ in a single factor, see :func:`omes`.

scikit-learn provides the estimators (gradient-boosted trees, linear SVM, mutual information);
only the scores' arithmetic is written here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

#: Latent dimensions whose standard deviation is below this are inactive (FactorVAE, OMES).
INACTIVE_STD = 0.05


def _check_latents(latents, name: str = "latents") -> np.ndarray:
    z = np.asarray(latents, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] == 0:
        raise ValueError(
            f"`{name}` must be a 2-D array (observations × dims), got shape {z.shape}."
        )
    if not np.isfinite(z).all():
        bad = int((~np.isfinite(z)).any(axis=1).sum())
        raise ValueError(
            f"`{name}` has {bad} rows with NaN or infinite values; encode every observation or "
            "drop those rows from both `latents` and `factors`."
        )
    return z


def _check_codes(
    latents, factors, min_samples: int = 2, drop_constant: bool = True
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validated ``(z, codes, names)``: codes re-encoded as 0..n_f − 1 per factor, factors with a
    single value dropped with a warning naming them."""
    z = _check_latents(latents)
    if isinstance(factors, pd.DataFrame):
        names = [str(c) for c in factors.columns]
        raw = factors.to_numpy()
    else:
        raw = np.asarray(factors)
        if raw.ndim == 1:
            raw = raw[:, None]
        names = [f"factor_{i}" for i in range(raw.shape[1])] if raw.ndim == 2 else []
    if raw.ndim != 2 or raw.shape[1] == 0:
        raise ValueError(
            f"`factors` must be a 2-D array (observations × factors) of integer codes, got shape "
            f"{raw.shape}."
        )
    if len(raw) != len(z):
        raise ValueError(
            f"`latents` has {len(z)} rows but `factors` has {len(raw)}; they must describe the "
            "same observations in the same order."
        )
    if len(z) < min_samples:
        raise ValueError(f"This metric needs at least {min_samples} observations, got {len(z)}.")
    if pd.isna(pd.DataFrame(raw)).to_numpy().any():
        raise ValueError("`factors` has missing values; every observation needs every factor.")
    codes = np.empty(raw.shape, dtype=np.int64)
    for j in range(raw.shape[1]):
        values = raw[:, j]
        if values.dtype.kind == "f" and not np.all(values == np.round(values)):
            raise ValueError(
                f"`factors` column {names[j]!r} is not integer codes; pass the factor's value "
                "index (e.g. pd.factorize), not a continuous value."
            )
        codes[:, j] = pd.factorize(values, sort=True)[0]
    n_values = codes.max(axis=0) + 1
    keep = n_values > 1
    if drop_constant and not keep.all():
        dropped = [names[j] for j in np.flatnonzero(~keep)]
        if not keep.any():
            raise ValueError(f"Every factor takes a single value ({dropped}); nothing to measure.")
        warnings.warn(
            f"Factors {dropped} take a single value in these observations and are left out.",
            UserWarning,
            stacklevel=3,
        )
        codes, names = codes[:, keep], [n for n, k in zip(names, keep, strict=True) if k]
    return z, codes, names


def _entropy(codes: np.ndarray) -> float:
    p = np.bincount(codes) / len(codes)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _discretise(z: np.ndarray, n_bins: int) -> np.ndarray:
    """Each column into ``n_bins`` equal-width bins over its range (constant columns: one bin)."""
    out = np.zeros(z.shape, dtype=np.int64)
    for j in range(z.shape[1]):
        lo, hi = z[:, j].min(), z[:, j].max()
        if hi > lo:
            edges = np.linspace(lo, hi, n_bins + 1)[1:-1]
            out[:, j] = np.digitize(z[:, j], edges)
    return out


def mutual_information_matrix(latents, factors, n_bins: int = 20) -> np.ndarray:
    """Mutual information (nats) between each binned code dim and each factor: ``d × K``."""
    from sklearn.metrics import mutual_info_score

    z, codes, _ = _check_codes(latents, factors)
    binned = _discretise(z, int(n_bins))
    return np.array(
        [
            [mutual_info_score(codes[:, k], binned[:, j]) for k in range(codes.shape[1])]
            for j in range(z.shape[1])
        ]
    )


def mig(latents, factors, n_bins: int = 20) -> float:
    """Mutual information gap (Chen et al. 2018) with ``n_bins`` equal-width bins per dim.

    Per factor: (largest − second largest mutual information with a code dimension) / the
    factor's entropy; the mean over factors. A code with a single dimension scores its mutual
    information over the entropy.
    """
    z, codes, _ = _check_codes(latents, factors)
    mi = mutual_information_matrix(z, codes, n_bins)
    top = np.sort(mi, axis=0)[::-1]
    second = top[1] if len(top) > 1 else np.zeros(top.shape[1])
    entropy = np.array([_entropy(codes[:, k]) for k in range(codes.shape[1])])
    return float(np.mean((top[0] - second) / entropy))


def _split(n: int, test_fraction: float, random_state) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` must be in (0, 1), got {test_fraction}.")
    order = np.random.default_rng(random_state).permutation(n)
    n_test = max(1, round(test_fraction * n))
    return order[n_test:], order[:n_test]


def _entropy_rows(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy (log base ``base``) of each row of a non-negative matrix, rows normalised."""
    total = p.sum(axis=1, keepdims=True)
    q = np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[1]), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, q * np.log(q), 0.0)
    return -terms.sum(axis=1) / np.log(base) if base > 1 else np.zeros(len(p))


def dci(
    latents,
    factors,
    test_fraction: float = 0.3,
    n_estimators: int = 50,
    max_depth: int = 3,
    random_state=0,
) -> dict[str, float]:
    """Disentanglement, completeness and informativeness (Eastwood & Williams 2018).

    One :class:`~sklearn.ensemble.GradientBoostingClassifier` (``n_estimators`` trees of depth
    ``max_depth``) per factor is trained on ``1 − test_fraction`` of the observations; its
    impurity importances form column ``k`` of the importance matrix ``R`` (d × K) and its
    accuracy on the held-out rest is factor ``k``'s informativeness. (Impurity importances:
    held-out permutation importances are near-uniform for pure noise only on average and score
    noise codes as highly disentangled.)

    Returns
    -------
    dict with ``disentanglement``, ``completeness``, ``informativeness`` (mean held-out accuracy)
    and ``importance`` (the ``d × K`` matrix).
    """
    from sklearn.ensemble import GradientBoostingClassifier

    z, codes, _ = _check_codes(latents, factors, min_samples=10)
    train, test = _split(len(z), test_fraction, random_state)
    d, n_factors = z.shape[1], codes.shape[1]
    importance = np.zeros((d, n_factors))
    accuracy = np.zeros(n_factors)
    for k in range(n_factors):
        if np.unique(codes[train, k]).size < 2:
            raise ValueError(
                f"Factor {k} takes a single value in the training split; use more observations "
                "or a larger `test_fraction`."
            )
        model = GradientBoostingClassifier(
            n_estimators=n_estimators, max_depth=max_depth, random_state=0
        )
        model.fit(z[train], codes[train, k])
        importance[:, k] = np.abs(model.feature_importances_)
        accuracy[k] = model.score(z[test], codes[test, k])
    total = importance.sum()
    code_weight = importance.sum(axis=1) / total if total > 0 else np.full(d, 1.0 / d)
    factor_weight = (
        importance.sum(axis=0) / total if total > 0 else np.full(n_factors, 1 / n_factors)
    )
    disentanglement = 1.0 - _entropy_rows(importance, n_factors)
    completeness = 1.0 - _entropy_rows(importance.T, d)
    return {
        "disentanglement": float((code_weight * disentanglement).sum()),
        "completeness": float((factor_weight * completeness).sum()),
        "informativeness": float(accuracy.mean()),
        "importance": importance,
    }


def sap(
    latents, factors, mode: str = "continuous", test_fraction: float = 0.3, random_state=0
) -> float:
    """Separated attribute predictability (Kumar et al. 2018).

    ``mode='continuous'``: the score of dim ``j`` for factor ``k`` is the R² of a linear fit
    of the factor code on the dim (the squared Pearson correlation; 0 for a constant dim).
    ``mode='discrete'``: the held-out accuracy of a :class:`~sklearn.svm.LinearSVC` on the dim
    alone. SAP is the mean over factors of the gap between the best and second-best dim.
    """
    z, codes, _ = _check_codes(latents, factors, min_samples=10)
    d, n_factors = z.shape[1], codes.shape[1]
    scores = np.zeros((d, n_factors))
    if mode == "continuous":
        zc = z - z.mean(axis=0)
        fc = codes - codes.mean(axis=0)
        cov = zc.T @ fc / len(z)
        var_z, var_f = (zc**2).mean(axis=0), (fc**2).mean(axis=0)
        denom = var_z[:, None] * var_f[None, :]
        scores = np.divide(cov**2, denom, out=np.zeros_like(cov), where=denom > 0)
    elif mode == "discrete":
        from sklearn.svm import LinearSVC

        train, test = _split(len(z), test_fraction, random_state)
        for j in range(d):
            x = z[:, j : j + 1]
            scale = x[train].std()
            if scale == 0:
                continue
            x = (x - x[train].mean()) / scale
            for k in range(n_factors):
                if np.unique(codes[train, k]).size < 2:
                    raise ValueError(
                        f"Factor {k} takes a single value in the training split; use more "
                        "observations."
                    )
                clf = LinearSVC(C=0.01).fit(x[train], codes[train, k])
                scores[j, k] = clf.score(x[test], codes[test, k])
    else:
        raise ValueError(f"`mode` must be 'continuous' or 'discrete', got {mode!r}.")
    if d < 2:
        return float(scores[0].mean())
    top = np.sort(scores, axis=0)[::-1]
    return float((top[0] - top[1]).mean())


def _factorvae_votes(
    z: np.ndarray,
    codes: np.ndarray,
    active: np.ndarray,
    scale: np.ndarray,
    n_votes: int,
    batch_size: int,
    rng,
) -> np.ndarray:
    """Votes ``(argmin dim, factor)`` of FactorVAE's procedure on a finite sample."""
    n_factors = codes.shape[1]
    groups = [
        [np.flatnonzero(codes[:, k] == v) for v in range(codes[:, k].max() + 1)]
        for k in range(n_factors)
    ]
    votes = np.empty((n_votes, 2), dtype=np.int64)
    active_idx = np.flatnonzero(active)
    for t in range(n_votes):
        k = rng.integers(n_factors)
        members = groups[k][rng.integers(len(groups[k]))]
        batch = rng.choice(members, size=batch_size, replace=len(members) < batch_size)
        var = z[batch][:, active].var(axis=0) / scale[active] ** 2
        votes[t] = active_idx[np.argmin(var)], k
    return votes


def factorvae_score(
    latents,
    factors,
    batch_size: int = 64,
    n_train: int = 10_000,
    n_eval: int = 5_000,
    prune_std: float = INACTIVE_STD,
    random_state=0,
) -> float:
    """FactorVAE disentanglement score (Kim & Mnih 2018) on a finite sample.

    Dims whose std is below ``prune_std`` are pruned. A vote fixes a random factor at a random
    value it takes in the data, draws ``batch_size`` observations with that value (with
    replacement when fewer have it) and votes for the active dim of least variance divided by
    its global variance. The majority-vote classifier (each dim → its most frequent factor among
    ``n_train`` votes) is scored on ``n_eval`` fresh votes. Chance is 1 / number of factors.
    """
    z, codes, _ = _check_codes(latents, factors, min_samples=2 * 2)
    counts = [np.bincount(codes[:, k]) for k in range(codes.shape[1])]
    if min(c.min() for c in counts) < 2:
        raise ValueError(
            "Every value of every factor needs at least 2 observations for the FactorVAE score "
            "(a variance); use more observations or fewer factor values."
        )
    scale = z.std(axis=0)
    active = scale >= prune_std
    if not active.any():
        raise ValueError(
            f"No latent dim has a std of at least `prune_std`={prune_std}; the code is collapsed."
        )
    rng = np.random.default_rng(random_state)
    train = _factorvae_votes(z, codes, active, scale, int(n_train), int(batch_size), rng)
    evaluation = _factorvae_votes(z, codes, active, scale, int(n_eval), int(batch_size), rng)
    table = np.zeros((z.shape[1], codes.shape[1]), dtype=np.int64)
    np.add.at(table, (train[:, 0], train[:, 1]), 1)
    classifier = table.argmax(axis=1)
    return float(np.mean(classifier[evaluation[:, 0]] == evaluation[:, 1]))


def _pairs_array(pairs, n: int) -> np.ndarray:
    """``pairs`` as an ``m × 2`` array of row indices: given as such, or as ``n`` pair ids."""
    p = np.asarray(pairs)
    if p.ndim == 1:
        if len(p) != n:
            raise ValueError(
                f"`pairs` as pair ids needs one id per observation ({n}), got {len(p)}."
            )
        ids, inverse = np.unique(p, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        sizes = np.bincount(inverse)
        if (sizes != 2).any():
            raise ValueError(
                "`pairs` as pair ids must give every id to exactly two observations; "
                f"{int((sizes != 2).sum())} ids do not."
            )
        return order.reshape(len(ids), 2)
    if p.ndim != 2 or p.shape[1] != 2 or not np.issubdtype(p.dtype, np.integer):
        raise ValueError(
            "`pairs` must be an m × 2 integer array of row indices or one pair id per "
            f"observation, got shape {p.shape}."
        )
    if p.min() < 0 or p.max() >= n:
        raise ValueError(f"`pairs` has row indices outside 0..{n - 1}.")
    return p


def omes_relation(latents, factors, pairs, inactive_std: float = INACTIVE_STD) -> pd.DataFrame:
    """OMES relation matrix ``R[d, f] = 1 − |ρ_{d,f}|`` (active dims × factors).

    ``ρ_{d,f}`` is the Pearson correlation of dim ``d`` between the two members over the pairs
    that differ in factor ``f`` only. Dims with std < ``inactive_std`` are dropped; a factor
    with no such pair (or fewer than 3) is an error. ``pairs``: ``m × 2`` row indices or one
    pair id per observation (e.g. ``obs['pair_id']`` of :func:`spatialvi.sim.texture_dsprites`).
    """
    z, codes, names = _check_codes(latents, factors, drop_constant=False)
    p = _pairs_array(pairs, len(z))
    active = z.std(axis=0) >= inactive_std
    if not active.any():
        raise ValueError(f"No latent dim has a std of at least {inactive_std}; nothing to relate.")
    differs = codes[p[:, 0]] != codes[p[:, 1]]
    single = differs.sum(axis=1) == 1
    relation = np.zeros((int(active.sum()), codes.shape[1]))
    za, zb = z[p[:, 0]][:, active], z[p[:, 1]][:, active]
    for f in range(codes.shape[1]):
        rows = single & differs[:, f]
        if rows.sum() < 3:
            raise ValueError(
                f"OMES needs at least 3 pairs that differ in factor {names[f]!r} only, found "
                f"{int(rows.sum())}; generate pairs with k=1 (e.g. sim.texture_dsprites)."
            )
        a, b = za[rows] - za[rows].mean(axis=0), zb[rows] - zb[rows].mean(axis=0)
        denom = np.sqrt((a**2).sum(axis=0) * (b**2).sum(axis=0))
        rho = np.divide((a * b).sum(axis=0), denom, out=np.ones(len(denom)), where=denom > 0)
        relation[:, f] = 1.0 - np.abs(rho)
    dims = np.flatnonzero(active)
    return pd.DataFrame(relation, index=[f"dim_{d}" for d in dims], columns=names)


def omes_from_relation(relation) -> float:
    """OMES of a relation matrix ``R`` (dims × factors, entries in [0, 1]).

    ``O(d, f) = 1 − mean_j |e_f(j) − R[d, j]|`` (row ``d`` against the one-hot of ``f``),
    ``M(d, f) = 1 − mean_i |e_d(i) − R[i, f]|``; ``OS_f = Σ_d R[d,f]² O(d, f) / Σ_d R[d,f]``,
    ``MES_f`` likewise with ``M``; OMES = mean over factors of ``½ OS_f + ½ MES_f`` (a factor
    no dim relates to scores 0). It is 1 exactly for ``R = I``.
    """
    r = np.asarray(relation, dtype=np.float64)
    if r.ndim != 2 or r.size == 0 or not np.isfinite(r).all() or r.min() < 0 or r.max() > 1:
        raise ValueError("`relation` must be a 2-D matrix (dims × factors) of values in [0, 1].")
    n_dims, n_factors = r.shape
    eye_f = np.eye(n_factors)
    eye_d = np.eye(n_dims)
    # O[d, f]: row d of R against one-hot e_f over factors.
    modularity = 1.0 - np.abs(r[:, None, :] - eye_f[None, :, :]).mean(axis=2)
    # M[d, f]: column f of R against one-hot e_d over dims.
    explicit = 1.0 - np.abs(r.T[:, None, :] - eye_d[None, :, :]).mean(axis=2).T
    weight = r.sum(axis=0)
    safe = np.where(weight > 0, weight, 1.0)
    os_f = np.where(weight > 0, (r**2 * modularity).sum(axis=0) / safe, 0.0)
    mes_f = np.where(weight > 0, (r**2 * explicit).sum(axis=0) / safe, 0.0)
    return float(np.mean(0.5 * os_f + 0.5 * mes_f))


def omes(latents, factors, pairs, inactive_std: float = INACTIVE_STD) -> float:
    """OMES (Dapueto et al. 2024): overlap and multiple-encoding scores of a code from pairs.

    Computed from :func:`omes_relation` by :func:`omes_from_relation`. Because a pair's
    differing factor is forced to change, a factor with ``n`` values has ``ρ = −1/(n − 1)``
    on a perfect code: such a code scores ``R[f, f] = 1 − 1/(n − 1)`` and OMES reaches 1 only
    for ``R = I`` (≈ 0.94 for 20-valued factors, 0 for a binary one).
    """
    return omes_from_relation(omes_relation(latents, factors, pairs, inactive_std).to_numpy())

"""Agreement of a clustering with annotated domains, leaving unannotated observations out,
and the renaming of clusters after the domains they overlap most."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _labelled(labels_true, labels_pred) -> tuple[np.ndarray, np.ndarray]:
    true = pd.Series(np.asarray(labels_true, dtype=object))
    pred = pd.Series(np.asarray(labels_pred, dtype=object))
    if len(true) != len(pred):
        raise ValueError(
            f"`labels_true` has {len(true)} entries but `labels_pred` has {len(pred)}; "
            "they must describe the same observations in the same order."
        )
    if pred.isna().any():
        raise ValueError(
            "`labels_pred` contains missing values; every observation needs a cluster."
        )
    keep = true.notna().to_numpy()
    if not keep.any():
        raise ValueError("`labels_true` has no annotated observations (all missing).")
    return true[keep].astype(str).to_numpy(), pred[keep].astype(str).to_numpy()


def ari(labels_true, labels_pred) -> float:
    """Adjusted Rand index on the observations with a (non-missing) true label."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(*_labelled(labels_true, labels_pred)))


def nmi(labels_true, labels_pred) -> float:
    """Normalised mutual information (arithmetic mean normalisation, scikit-learn's default)
    on the observations with a (non-missing) true label."""
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(*_labelled(labels_true, labels_pred)))


def clustering_scores(labels_true, labels_pred) -> dict[str, float]:
    """ARI and NMI together, plus how many observations were scored."""
    true, _ = _labelled(labels_true, labels_pred)
    return {
        "ari": ari(labels_true, labels_pred),
        "nmi": nmi(labels_true, labels_pred),
        "n_scored": len(true),
    }


#: Prefix of the predicted clusters :func:`match_labels` cannot pair with a true label.
UNMATCHED_PREFIX = "unmatched "


def match_labels(labels_true, labels_pred) -> np.ndarray:
    """Rename predicted clusters after the true labels they overlap most (Hungarian matching).

    The contingency table of the observations with a (non-missing) true label is built, and a
    one-to-one assignment of clusters to true labels maximising the total overlap is found
    (:func:`scipy.optimize.linear_sum_assignment`). Each assigned cluster is renamed to its
    true label; a cluster left without one (more clusters than true labels, a cluster only on
    unannotated observations, or an assignment with zero overlap) is named ``"unmatched "``
    followed by its name, prefixed again until it collides with no true label. Renaming is
    one-to-one, so ARI and NMI are unchanged; the point is that a plot of the clusters can
    use the colours of the true labels.

    Labels are compared by their string form, as in :func:`ari` and :func:`nmi`.

    Parameters
    ----------
    labels_true
        True label per observation; missing values (``None``, NaN) mark unannotated
        observations, which are left out of the matching.
    labels_pred
        Predicted cluster per observation, same length and order; no missing values.

    Returns
    -------
    An object array of the same length and order as ``labels_pred``: the matched true label
    (as it occurs in ``labels_true``) or the ``"unmatched ..."`` name of each observation's
    cluster, unannotated observations included.

    Examples
    --------
    >>> from spatialvi.metrics import match_labels
    >>> match_labels(["a", "a", "b", "b", "c"], [2, 2, 0, 0, 1]).tolist()
    ['a', 'a', 'b', 'b', 'c']
    >>> match_labels(["a", "a", "b", None], [0, 1, 2, 2]).tolist()
    ['a', 'unmatched 1', 'b', 'b']
    """
    from scipy.optimize import linear_sum_assignment

    true_kept, pred_kept = _labelled(labels_true, labels_pred)
    true_all = pd.Series(np.asarray(labels_true, dtype=object))
    pred_all = pd.Series(np.asarray(labels_pred, dtype=object)).astype(str).to_numpy()
    # First occurrence of each true label, so that matched clusters get the original value.
    annotated = true_all[true_all.notna()]
    original = dict(zip(annotated.astype(str), annotated, strict=True))

    true_names, true_codes = np.unique(true_kept, return_inverse=True)
    pred_names, pred_codes = np.unique(pred_kept, return_inverse=True)
    overlap = np.zeros((len(pred_names), len(true_names)), dtype=np.int64)
    np.add.at(overlap, (pred_codes, true_codes), 1)
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    mapping: dict[str, object] = {
        pred_names[r]: original[true_names[c]] for r, c in zip(rows, cols) if overlap[r, c] > 0
    }

    taken = set(true_names.tolist())
    for name in dict.fromkeys(pred_all):  # every cluster, in order of appearance
        if name in mapping:
            continue
        new = UNMATCHED_PREFIX + name
        while new in taken:
            new = UNMATCHED_PREFIX + new
        taken.add(new)
        mapping[name] = new
    return np.array([mapping[name] for name in pred_all], dtype=object)

"""Agreement of a clustering with annotated domains, leaving unannotated observations out."""

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

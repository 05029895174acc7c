"""What a latent representation is good for: downstream classification, correlation with
measured features, inactive dimensions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spatialvi.metrics._disentanglement import INACTIVE_STD, _check_latents, _split


def inactive_dims(latents, threshold: float = INACTIVE_STD) -> np.ndarray:
    """Indices of the latent dims whose standard deviation is below ``threshold`` (0.05)."""
    z = _check_latents(latents)
    return np.flatnonzero(z.std(axis=0) < threshold)


def downstream_accuracy(
    latents,
    labels,
    classifier: str = "gbt",
    test_fraction: float = 0.3,
    random_state=0,
    groups=None,
) -> float:
    """Balanced accuracy of a classifier of ``labels`` from the latent, on held-out observations.

    ``classifier='gbt'``: :class:`~sklearn.ensemble.HistGradientBoostingClassifier`;
    ``'mlp'``: :class:`~sklearn.neural_network.MLPClassifier` (one hidden layer of 100, inputs
    standardised on the training split). The split is stratified by label, or, with
    ``groups`` (one group per observation, e.g. the source image of a crop), by group
    (:class:`~sklearn.model_selection.GroupShuffleSplit`: no group on both sides).
    Observations with a missing label are left out.
    """
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import train_test_split

    z = _check_latents(latents)
    y = pd.Series(np.asarray(labels, dtype=object))
    if len(y) != len(z):
        raise ValueError(
            f"`latents` has {len(z)} rows but `labels` has {len(y)}; they must describe the same "
            "observations in the same order."
        )
    keep = y.notna().to_numpy()
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != len(keep):
            raise ValueError(f"`groups` has {len(groups)} entries; `labels` has {len(keep)}.")
        groups = groups[keep]
    z, y = z[keep], y[keep].astype(str).to_numpy()
    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2:
        raise ValueError("`labels` needs at least two classes.")
    if counts.min() < 2:
        raise ValueError(
            f"Label {classes[np.argmin(counts)]!r} has a single observation; a held-out split "
            "needs at least two per class."
        )
    _split(len(z), test_fraction, random_state)  # validates test_fraction
    if groups is None:
        z_train, z_test, y_train, y_test = train_test_split(
            z, y, test_size=test_fraction, stratify=y, random_state=random_state
        )
    else:
        from sklearn.model_selection import GroupShuffleSplit

        split = GroupShuffleSplit(1, test_size=test_fraction, random_state=random_state)
        train, test = next(split.split(z, y, groups))
        z_train, z_test, y_train, y_test = z[train], z[test], y[train], y[test]
    if classifier == "gbt":
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(random_state=0)
    elif classifier == "mlp":
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(StandardScaler(), MLPClassifier(max_iter=1000, random_state=0))
    else:
        raise ValueError(f"`classifier` must be 'gbt' or 'mlp', got {classifier!r}.")
    model.fit(z_train, y_train)
    return float(balanced_accuracy_score(y_test, model.predict(z_test)))


def latent_feature_correlation(latents, features) -> pd.DataFrame:
    """Pearson correlation of each latent dim with each measured feature (dims × features).

    ``features``: an ``n × F`` array or DataFrame (e.g. area, solidity, eccentricity, mean
    colour); constant dims or features give NaN.
    """
    z = _check_latents(latents)
    if isinstance(features, pd.DataFrame):
        names, f = [str(c) for c in features.columns], features.to_numpy(dtype=np.float64)
    else:
        f = np.asarray(features, dtype=np.float64)
        f = f[:, None] if f.ndim == 1 else f
        names = [f"feature_{i}" for i in range(f.shape[1])]
    if f.ndim != 2 or len(f) != len(z):
        raise ValueError(
            f"`features` must be n × F with n = {len(z)} rows like `latents`, got shape {f.shape}."
        )
    if not np.isfinite(f).all():
        raise ValueError("`features` has NaN or infinite values.")
    zc, fc = z - z.mean(axis=0), f - f.mean(axis=0)
    denom = np.sqrt((zc**2).sum(axis=0))[:, None] * np.sqrt((fc**2).sum(axis=0))[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(denom > 0, zc.T @ fc / denom, np.nan)
    return pd.DataFrame(corr, index=[f"dim_{j}" for j in range(z.shape[1])], columns=names)

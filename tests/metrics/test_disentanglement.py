"""Disentanglement metrics on codes whose answer is known: the factors themselves, a rotation
of them, pure noise; OMES on relation matrices and on pairs; and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ortho_group

from spatialvi.metrics import (
    dci,
    downstream_accuracy,
    factorvae_score,
    inactive_dims,
    latent_feature_correlation,
    mig,
    mutual_information_matrix,
    omes,
    omes_from_relation,
    omes_relation,
    sap,
)

SIZES = (3, 6, 10, 20, 20)
SEEDS = (0, 1, 2)
#: Few trees keep DCI fast in the suite (the default is 50).
FAST_DCI = {"n_estimators": 10}


def _factors(seed: int, n: int = 2000, sizes=SIZES) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(s, size=n) for s in sizes], axis=1)


def _codes(seed: int, factors: np.ndarray):
    """Ideal code (factors + noise 0.01), a random rotation of it (standardised), pure noise."""
    rng = np.random.default_rng(100 + seed)
    ideal = factors + 0.01 * rng.standard_normal(factors.shape)
    standard = (ideal - ideal.mean(axis=0)) / ideal.std(axis=0)
    rotation = standard @ ortho_group.rvs(factors.shape[1], random_state=seed)
    noise = rng.standard_normal((len(factors), 10))
    return ideal, rotation, noise


@pytest.mark.parametrize("seed", SEEDS)
def test_the_factors_themselves_score_high(seed):
    factors = _factors(seed)
    ideal, _, _ = _codes(seed, factors)
    assert mig(ideal, factors) >= 0.9
    scores = dci(ideal, factors, random_state=seed, **FAST_DCI)
    assert scores["disentanglement"] >= 0.9
    assert scores["completeness"] >= 0.9
    assert scores["informativeness"] >= 0.95
    np.testing.assert_array_equal(scores["importance"].argmax(axis=0), np.arange(len(SIZES)))
    assert sap(ideal, factors) >= 0.8
    assert factorvae_score(ideal, factors, n_train=2000, n_eval=1000, random_state=seed) >= 0.9


@pytest.mark.parametrize("seed", SEEDS)
def test_a_rotation_mixes_the_factors(seed):
    factors = _factors(seed)
    ideal, rotation, _ = _codes(seed, factors)
    assert mig(rotation, factors) <= 0.5
    assert mig(rotation, factors) < mig(ideal, factors) - 0.4
    assert sap(rotation, factors) < sap(ideal, factors) - 0.4
    assert dci(rotation, factors, **FAST_DCI)["disentanglement"] <= 0.5
    # entangled but still informative: far above chance (≈ 0.15)
    assert dci(rotation, factors, **FAST_DCI)["informativeness"] >= 0.3


@pytest.mark.parametrize("seed", SEEDS)
def test_pure_noise_scores_near_zero_and_chance(seed):
    factors = _factors(seed)
    _, _, noise = _codes(seed, factors)
    assert mig(noise, factors) <= 0.1
    scores = dci(noise, factors, random_state=seed, **FAST_DCI)
    assert scores["disentanglement"] <= 0.1
    chance = np.mean([1 / s for s in SIZES])
    assert scores["informativeness"] < chance + 0.1
    assert sap(noise, factors) <= 0.05
    score = factorvae_score(noise, factors, n_train=2000, n_eval=1000, random_state=seed)
    assert abs(score - 1 / len(SIZES)) <= 0.1


def test_mig_is_mutual_information_over_entropy_on_a_known_answer():
    # one dim copies a balanced binary factor, the other is constant: MI = H = log 2
    factor = np.tile([0, 1], 500)
    z = np.stack([factor.astype(float), np.zeros(1000)], axis=1)
    mi = mutual_information_matrix(z, factor[:, None])
    np.testing.assert_allclose(mi[:, 0], [np.log(2), 0.0], atol=1e-12)
    assert mig(z, factor[:, None]) == pytest.approx(1.0)
    # half the observations' code swapped at random: MI of a binary symmetric channel
    rng = np.random.default_rng(0)
    flip = rng.random(1000) < 0.1
    noisy = np.where(flip, 1 - factor, factor).astype(float)
    p = flip.mean()
    expected = (np.log(2) + p * np.log(p) + (1 - p) * np.log(1 - p)) / np.log(2)
    assert mig(noisy[:, None], factor[:, None]) == pytest.approx(expected, abs=0.01)


def test_sap_continuous_is_the_squared_correlation_gap():
    rng = np.random.default_rng(0)
    f = rng.integers(10, size=3000)
    a = f + rng.normal(0, 2.0, 3000)
    b = rng.standard_normal(3000)
    r2 = np.corrcoef(a, f)[0, 1] ** 2 - np.corrcoef(b, f)[0, 1] ** 2
    assert sap(np.stack([a, b], 1), f[:, None]) == pytest.approx(r2, abs=1e-10)
    # the discrete form: a perfect dim of a binary factor is perfectly predictable
    g = rng.integers(2, size=3000)
    z = np.stack([g + 0.01 * rng.standard_normal(3000), rng.standard_normal(3000)], 1)
    assert sap(z, g[:, None], mode="discrete") >= 0.4


def test_factorvae_prunes_collapsed_dims():
    factors = _factors(0, sizes=(5, 5))
    ideal = factors + 0.01 * np.random.default_rng(0).standard_normal(factors.shape)
    # a collapsed dim (std 0.001) has the least variance of all but must not win votes
    z = np.column_stack([ideal, 0.001 * np.random.default_rng(1).standard_normal(len(ideal))])
    assert factorvae_score(z, factors, n_train=1000, n_eval=500) >= 0.95
    assert inactive_dims(z).tolist() == [2]


def _pairs(seed: int, n_pairs: int, sizes) -> tuple[np.ndarray, np.ndarray]:
    """Pairs differing in one factor, forced to change (as sim.texture_dsprites with k=1)."""
    rng = np.random.default_rng(seed)
    first = np.stack([rng.integers(s, size=n_pairs) for s in sizes], axis=1)
    second = first.copy()
    for p in range(n_pairs):
        f = rng.integers(len(sizes))
        second[p, f] = rng.choice([v for v in range(sizes[f]) if v != first[p, f]])
    codes = np.empty((2 * n_pairs, len(sizes)), dtype=np.int64)
    codes[0::2], codes[1::2] = first, second
    return codes, np.repeat(np.arange(n_pairs), 2)


def test_omes_of_relation_matrices():
    assert omes_from_relation(np.eye(5)) == pytest.approx(1.0)
    # a dim shared by two factors, or two dims for one factor, costs
    assert omes_from_relation([[1, 1], [0, 0]]) < 0.9
    assert omes_from_relation([[1, 0], [1, 0], [0, 1]]) < 0.95
    assert omes_from_relation(np.zeros((3, 3))) == 0.0
    with pytest.raises(ValueError, match="relation"):
        omes_from_relation([[1.5, 0], [0, 1]])


@pytest.mark.parametrize("seed", SEEDS)
def test_omes_on_pairs_identity_rotation_noise(seed):
    sizes = (20,) * 5
    codes, pair_id = _pairs(seed, 1000, sizes)
    rng = np.random.default_rng(seed)
    ideal = codes + 0.01 * rng.standard_normal(codes.shape)
    ideal = (ideal - ideal.mean(0)) / ideal.std(0)
    rotation = ideal @ ortho_group.rvs(5, random_state=seed)
    relation = omes_relation(ideal, codes, pair_id)
    # the forced change: ρ = −1/(n − 1) on the changed factor's own dim, 1 on the others
    np.testing.assert_allclose(np.diag(relation.to_numpy()), 1 - 1 / 19, atol=0.25)
    assert np.abs(relation.to_numpy() - np.diag(np.diag(relation.to_numpy()))).max() < 0.01
    score = omes(ideal, codes, pair_id)
    assert score >= 0.85
    assert omes(rotation, codes, pair_id) < score - 0.3
    # pairs as an m × 2 index array give the same score
    rows = np.arange(len(codes)).reshape(-1, 2)
    assert omes(ideal, codes, rows) == pytest.approx(score)


def test_omes_binary_factor_caps_at_zero_relation():
    codes, pair_id = _pairs(0, 600, (2, 20))
    z = codes + 0.01 * np.random.default_rng(0).standard_normal(codes.shape)
    relation = omes_relation(z, codes, pair_id).to_numpy()
    assert relation[0, 0] < 0.05  # a binary factor forced to flip: ρ = −1, R = 0


@pytest.mark.parametrize("seed", SEEDS)
def test_downstream_accuracy_and_correlation(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(3, size=900)
    z = np.column_stack([labels + 0.2 * rng.standard_normal(900), rng.standard_normal(900)])
    for classifier in ("gbt", "mlp"):
        assert downstream_accuracy(z, labels, classifier=classifier) >= 0.95
        assert downstream_accuracy(z[:, 1:], labels, classifier=classifier) < 0.5
    # a grouped split keeps every group on one side (and still learns the labels)
    groups = np.repeat(np.arange(90), 10)
    assert downstream_accuracy(z, labels, groups=groups, random_state=seed) >= 0.95
    features = pd.DataFrame({"area": 2 * z[:, 0] + 1, "noise": rng.standard_normal(900)})
    corr = latent_feature_correlation(z, features)
    assert list(corr.columns) == ["area", "noise"] and list(corr.index) == ["dim_0", "dim_1"]
    assert corr.loc["dim_0", "area"] == pytest.approx(1.0)
    assert abs(corr.loc["dim_1", "area"]) < 0.1
    np.testing.assert_allclose(
        corr.loc["dim_1", "noise"], np.corrcoef(z[:, 1], features["noise"])[0, 1]
    )


def test_bad_input_is_named():
    factors = _factors(0, n=200, sizes=(4, 5))
    z = np.random.default_rng(0).standard_normal((200, 3))
    bad = z.copy()
    bad[3, 1] = np.nan
    for metric in (mig, dci, sap, factorvae_score):
        with pytest.raises(ValueError, match="NaN"):
            metric(bad, factors)
        with pytest.raises(ValueError, match="200 rows but `factors` has 199"):
            metric(z, factors[:-1])
    with pytest.raises(ValueError, match="integer codes"):
        mig(z, factors + 0.5)
    # a factor with a single value is dropped with a warning naming it
    frame = pd.DataFrame({"shape": factors[:, 0], "colour": 0})
    with pytest.warns(UserWarning, match="colour"):
        single = mig(z, frame)
    assert single == pytest.approx(mig(z, frame[["shape"]]))
    with pytest.raises(ValueError, match="single value"):
        mig(z, np.zeros((200, 2), dtype=int))
    # too few samples for the estimators
    with pytest.raises(ValueError, match="at least 10"):
        dci(z[:5], factors[:5])
    with pytest.raises(ValueError, match="at least 2 observations"):
        factorvae_score(z[:6], factors[:6])
    with pytest.raises(ValueError, match="factor 'factor_1' only"):
        codes, ids = _pairs(0, 50, (4, 5))
        codes[:, 1] = np.repeat(np.arange(50) % 5, 2)  # no pair differs in factor 1
        omes(np.random.default_rng(0).standard_normal((100, 2)), codes, ids)
    with pytest.raises(ValueError, match="exactly two"):
        omes(z, factors, np.arange(200) // 3)
    with pytest.raises(ValueError, match="`mode`"):
        sap(z, factors, mode="svm")
    with pytest.raises(ValueError, match="classifier"):
        downstream_accuracy(z, factors[:, 0], classifier="svm")

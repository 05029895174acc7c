"""Spatially variable genes from a trained SpaLDVAE, with permutation p-values."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from spatialvi._keys import svg_keys


def spatially_variable_genes(
    model,
    adata: AnnData | None = None,
    null: Literal["refit", "retrain"] = "refit",
    score: Literal["log_fold_change", "expression_share"] = "log_fold_change",
    n_permutations: int = 100,
    pooled: bool | None = None,
    random_state: int = 0,
    refit_steps: int = 300,
    refit_lr: float = 0.05,
    train_kwargs: dict | None = None,
    progress_bar: bool = True,
    key_added: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Rank genes by their SpaLDVAE spatial score and test them against a permutation null.

    Writes, aligned with ``adata.var_names``:

    - ``var['spatial_score']``: the trained model's
      :meth:`~spatialvi.model.SpaLDVAE.spatial_scores` (``score``);
    - ``var['svg_rank']``: rank of that score, ``1`` = most spatial (ties: gene order);
    - ``var['svg_pval']``: permutation p-value ``(1 + #{null ≥ observed}) / (1 + n_null)``;

    and the run parameters in ``uns['svg']``. P-values are not adjusted for multiple testing
    (use e.g. :func:`scipy.stats.false_discovery_control`).

    **Nulls.** Both break the link between expression and location by permuting the spots'
    positions within each section; they differ in what is fitted again.

    ``"refit"`` (default; cheap). The trained encoder and GP stay fixed: the posterior-mean
    latent ``z`` of every spot is computed once. For each permutation the GP dims of ``z`` are
    shuffled among spots (the Gaussian dims and library sizes stay with their spot) and the
    linear decoder ``W`` (and the section offsets) is refitted to the counts by maximum NB
    likelihood — ``refit_steps`` full-batch Adam steps from a start that does not depend on
    the arrangement (equal loadings on ``exp(z_k)`` rescaled to a maximum of 1, matching each
    gene's mean), with each gene's dispersion fixed at its method-of-moments value. The gene's statistic is its spatial score under the refitted
    decoder. The observed statistic comes from the same refit on the unshuffled latent (not
    from the jointly trained decoder, which was fitted differently), so observed and null
    statistics come from one procedure whose inputs other than the arrangement are identical.
    It asks, per gene: do the counts follow the model's spatial factors more closely than a
    random re-assignment of those factors to spots? The p-values are valid per gene (default
    ``pooled=False``) insofar as the latent does not depend on the tested gene (the encoder
    reads all genes; small with many genes) and the Gaussian dims carry no spatial pattern
    (with β ≥ 4 they mostly collapse). Measured on synthetic tissue (300 spots, 80 genes, 49
    permutations): uniform genes mean p 0.50 with 7 % below 0.05, spatially variable genes
    mean p 0.02; on two tissues without any spatial gene (99 permutations) 9 % and 5 % of the
    genes fell below 0.05. Cost: one latent pass plus ``n_permutations + 1`` decoder fits of
    ``n_spots × n_genes`` (batched over permutations).

    ``"retrain"`` (retraining on shuffled coordinates; expensive). For each permutation a new
    model with the trained model's parameters is trained from scratch on the same counts with
    the coordinates shuffled, and its spatial scores are the null statistics; the observed
    statistics are the trained model's scores. Under the *global* null (no gene depends on
    location) the observed and permuted fits are exchangeable if the original model was
    trained by the same procedure (``train_kwargs``; the default repeats its recorded
    settings and epochs). Under a *partial* null it is not valid per gene: the permuted models
    find no spatial structure at all, the trained one does, and non-spatial genes inherit
    some of it. Measured (300 spots, 80 genes, 4 retrainings): with ``"log_fold_change"``
    every gene, uniform or not, got the smallest possible p-value (null scores ≤ 0.023,
    uniform genes' observed scores 0.058 on average); with ``"expression_share"`` uniform
    genes had mean p 0.50 (3 % below 0.05) but spatial genes only 0.19. With few
    permutations the null is pooled across genes (default), which assumes the genes share
    one null distribution.

    Parameters
    ----------
    model
        A trained :class:`~spatialvi.model.SpaLDVAE`.
    adata
        AnnData to write into, with the model's genes in the same order (default: the model's
        training AnnData). Scores always come from the model's training data.
    null
        ``"refit"`` (default) or ``"retrain"``, see above.
    score
        Spatial score written to ``var['spatial_score']`` and used as test statistic:
        ``"log_fold_change"`` (default) or ``"expression_share"`` (see
        :meth:`~spatialvi.model.SpaLDVAE.spatial_scores`).
    n_permutations
        Number of permutations (≥ 1). ``"retrain"`` trains this many models.
    pooled
        Pool the null statistics of all genes (``True``) or compare each gene with its own
        null statistics (``False``). Default: ``True`` for ``"retrain"``, ``False`` for
        ``"refit"``. The smallest possible p-value is ``1 / (1 + n_permutations)`` per gene
        and ``1 / (1 + n_permutations · n_genes)`` pooled.
    random_state
        Seed of the permutations (and of each retraining's torch random state).
    refit_steps, refit_lr
        Adam steps and learning rate of each ``"refit"`` decoder fit.
    train_kwargs
        ``"retrain"`` only: arguments of :meth:`~spatialvi.model.SpaVAE.train` for each
        permuted model. Default: ``max_epochs`` = the epochs the model was trained for,
        ``early_stopping=False``, and the model's recorded ``beta``, ``lr``,
        ``weight_decay``, ``batch_size`` and ``train_size``; Lightning's progress bar and model
        summary are switched off unless given.
    progress_bar
        Show a progress bar over the permutations.
    key_added
        ``None`` (default): write the keys above. A string ``k``: write ``var['k_score']``,
        ``var['k_rank']``, ``var['k_pval']`` and ``uns['k']`` instead (e.g. to keep the
        results of both nulls side by side).
    copy
        Return a copy of ``adata`` with the results instead of writing into ``adata``.

    Returns
    -------
    The AnnData copy if ``copy=True``, else ``None``.

    Raises
    ------
    TypeError
        If ``model`` is not a SpaLDVAE.
    ValueError
        If ``model`` is untrained, an argument is out of range, or ``adata``'s genes differ
        from the model's.
    """
    from spatialvi.model import SpaLDVAE

    if not isinstance(model, SpaLDVAE):
        raise TypeError(
            f"`model` must be a trained spatialvi.model.SpaLDVAE, got {type(model).__name__}; "
            "spatial scores need the linear decoder's loadings."
        )
    if not model.is_trained_ or not model.module.has_posterior:
        raise ValueError("`model` is not trained: call `model.train()` first.")
    if null not in ("refit", "retrain"):
        raise ValueError(f"`null` must be 'refit' or 'retrain', got {null!r}.")
    if isinstance(n_permutations, bool) or int(n_permutations) != n_permutations:
        raise ValueError(f"`n_permutations` must be a positive integer, got {n_permutations!r}.")
    if n_permutations < 1:
        raise ValueError(
            f"`n_permutations` must be at least 1, got {n_permutations}; p-values need a null."
        )
    n_permutations = int(n_permutations)
    if int(refit_steps) != refit_steps or refit_steps < 1:
        raise ValueError(f"`refit_steps` must be a positive integer, got {refit_steps!r}.")
    if not refit_lr > 0:
        raise ValueError(f"`refit_lr` must be positive, got {refit_lr!r}.")
    if train_kwargs is not None and null != "retrain":
        raise ValueError("`train_kwargs` is only used with null='retrain'; drop it or set null.")
    if adata is None:
        adata = model.adata
    elif not adata.var_names.equals(model.adata.var_names):
        raise ValueError(
            "`adata` must have the model's genes in the same order (adata.var_names differ from "
            "model.adata.var_names); pass the training AnnData or a copy of it."
        )
    keys = svg_keys(key_added)
    if pooled is None:
        pooled = null == "retrain"
    if copy:
        adata = adata.copy()

    if score not in ("log_fold_change", "expression_share"):
        raise ValueError(f"`score` must be 'log_fold_change' or 'expression_share', got {score!r}.")
    observed_score = model.spatial_scores(score)
    perms = model.spatial_permutations(n_permutations, random_state)
    if null == "refit":
        observed, null_stats = model.refit_null_scores(
            perms, score, refit_steps, refit_lr, progress_bar
        )
    else:
        observed = observed_score.to_numpy()
        null_stats = model.retrain_null_scores(
            perms, score, random_state, train_kwargs, progress_bar
        )
    pval = permutation_pvalues(observed, null_stats, pooled=pooled)

    ranks = pd.Series(observed_score.to_numpy()).rank(ascending=False, method="first")
    adata.var[keys.score] = observed_score.to_numpy()
    adata.var[keys.rank] = ranks.astype(int).to_numpy()
    adata.var[keys.pval] = pval
    adata.uns[keys.uns] = {
        "model": type(model).__name__,
        "null": null,
        "n_permutations": n_permutations,
        "pooled": bool(pooled),
        "random_state": random_state,
        "score": score,
        **(
            {"refit_steps": int(refit_steps), "refit_lr": float(refit_lr)}
            if null == "refit"
            else {}
        ),
    }
    return adata if copy else None


def permutation_pvalues(observed: np.ndarray, null: np.ndarray, pooled: bool = False) -> np.ndarray:
    """Permutation p-values ``(1 + #{null ≥ observed}) / (1 + n_null)`` per gene.

    Parameters
    ----------
    observed
        Length-``G`` observed statistics.
    null
        ``P × G`` null statistics (one row per permutation).
    pooled
        ``False``: gene ``g`` is compared with column ``g`` (``n_null = P``); ``True``: with
        all ``P · G`` null values.

    Returns
    -------
    Length-``G`` array of p-values in ``(0, 1]``.
    """
    observed = np.asarray(observed, dtype=np.float64)
    null = np.atleast_2d(np.asarray(null, dtype=np.float64))
    if null.shape[1] != observed.shape[0]:
        raise ValueError(
            f"`null` has {null.shape[1]} columns but there are {observed.shape[0]} observed "
            "statistics; pass one column per gene."
        )
    if pooled:
        flat = np.sort(null.ravel())
        n_ge = flat.size - np.searchsorted(flat, observed, side="left")
        return (1.0 + n_ge) / (1.0 + flat.size)
    n_ge = (null >= observed[None, :]).sum(0)
    return (1.0 + n_ge) / (1.0 + null.shape[0])


__all__ = ["permutation_pvalues", "spatially_variable_genes"]

"""SpaLDVAE's spatial scores and their permutation nulls (decoder refits and retrainings).

The null engines behind :func:`spatialvi.tl.spatially_variable_genes`; both permute the spots'
positions within each section and recompute :func:`spatial_scores_from_latent`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scipy import sparse
from tqdm.auto import tqdm

from spatialvi._keys import OBSM, REGISTRY_KEYS
from spatialvi.nn import nb_log_likelihood

#: Elements (permutations × spots × genes) processed at once by the ``"refit"`` null.
_REFIT_CHUNK_ELEMENTS = 2**23


def spatial_scores_from_latent(
    z: torch.Tensor,
    log_weight: torch.Tensor,
    n_gp: int,
    sections: np.ndarray | None = None,
    score: Literal["log_fold_change", "expression_share"] = "log_fold_change",
    batch_size: int = 256,
) -> torch.Tensor:
    """Per-gene spatial scores from a latent and linear-decoder log-weights.

    The formulas are those of :meth:`SpaLDVAE.spatial_scores`; section offsets cancel in both.

    Parameters
    ----------
    z
        ``n × D`` latent (GP dims first).
    log_weight
        ``D × G`` decoder log-weights ``W``.
    n_gp
        Number of GP dims.
    sections
        Integer section of every spot (``None``: one section).
    score
        ``"log_fold_change"`` or ``"expression_share"``.
    batch_size
        Spots per chunk (memory ``batch_size × D × G``).

    Returns
    -------
    Length-``G`` tensor of scores (dtype of ``z``).
    """
    if score not in _SCORES:
        raise ValueError(f"`score` must be one of {_SCORES}, got {score!r}.")
    n, d = z.shape
    if log_weight.shape[0] != d:
        raise ValueError(
            f"`log_weight` has {log_weight.shape[0]} rows but the latent has {d} dims; pass the "
            "decoder weights of the model the latent comes from."
        )
    log_weight = log_weight.to(z.dtype)
    sections = np.zeros(n, dtype=np.int64) if sections is None else np.asarray(sections)
    log_gp, log_rest = [], []
    for start in range(0, n, batch_size):
        t = z[start : start + batch_size].unsqueeze(-1) + log_weight  # b × D × G
        log_gp.append(torch.logsumexp(t[:, :n_gp], dim=1))
        if d > n_gp:
            log_rest.append(torch.logsumexp(t[:, n_gp:], dim=1))
    log_gp = torch.cat(log_gp)
    log_rest = torch.cat(log_rest) if log_rest else torch.full_like(log_gp, -torch.inf)
    log_rate = torch.logaddexp(log_gp, log_rest)
    total = torch.zeros(log_gp.shape[1], dtype=z.dtype)
    for s in np.unique(sections):
        idx = torch.as_tensor(np.flatnonzero(sections == s))
        if score == "expression_share":
            # Share within the section, weighted by the section's number of spots.
            share = torch.exp(torch.logsumexp(log_gp[idx], 0) - torch.logsumexp(log_rate[idx], 0))
            total += share * len(idx)
            continue
        log_gp_mean = torch.logsumexp(log_gp[idx], dim=0) - np.log(len(idx))
        dev = log_rate[idx] - torch.logaddexp(log_rest[idx], log_gp_mean)
        total += ((dev - dev.mean(0)) ** 2).sum(0)
    return total / n if score == "expression_share" else torch.sqrt(total / n)


_SCORES = ("log_fold_change", "expression_share")


def permutation_within(sections: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of spot indices that keeps every spot in its section."""
    perm = np.arange(len(sections))
    for s in np.unique(sections):
        idx = np.flatnonzero(sections == s)
        perm[idx] = rng.permutation(idx)
    return perm


# -- the "refit" null ---------------------------------------------------------------------------
def _registered_counts_and_size_factors(model) -> tuple[np.ndarray, np.ndarray]:
    x = model.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
    x = x.toarray() if sparse.issparse(x) else np.asarray(x)
    return x.astype(np.float64), model.registered_size_factors()


def _moment_dispersion(x: np.ndarray, sf: np.ndarray) -> np.ndarray:
    """Per-gene NB inverse dispersion θ by moments of ``x / sf``, clipped to ``[1e-2, 1e4]``.

    ``Var = m + m²/θ`` on normalised counts (the Poisson part taken as ``m · mean(1/sf)``);
    it ignores all structure, so it is the same for every arrangement of the spots.
    """
    y = x / sf[:, None]
    m = y.mean(0)
    excess = y.var(0) - m * np.mean(1.0 / sf)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.where(excess > 0, m**2 / excess, 1e4)
    return np.clip(np.nan_to_num(theta, nan=1e4), 1e-2, 1e4)


def refit_null(model, perms, score: str, steps: int, lr: float, progress_bar: bool):
    """Observed (identity) and permuted refit statistics, ``G`` and ``P × G``.

    The GP dims of the posterior-mean latent are shuffled among spots by each permutation and
    SpaLDVAE's linear decoder is refitted (:func:`_fit_linear_decoder`); see
    :func:`spatialvi.tl.spatially_variable_genes` for what the null asks.
    """
    z = torch.as_tensor(model.get_latent_representation(), dtype=torch.float64)
    x, sf = _registered_counts_and_size_factors(model)
    sections = model._section_codes()
    n_gp = model.module.n_gp
    theta = _moment_dispersion(x, sf)
    n, g = x.shape
    arrangements = [np.arange(n), *perms]
    per_chunk = max(1, _REFIT_CHUNK_ELEMENTS // (n * g))
    stats = []
    with tqdm(total=len(perms), desc="SVG permutations (refit)", disable=not progress_bar) as bar:
        for start in range(0, len(arrangements), per_chunk):
            chunk = arrangements[start : start + per_chunk]
            zs = torch.stack([torch.cat([z[p, :n_gp], z[:, n_gp:]], dim=1) for p in chunk])
            w = _fit_linear_decoder(zs, x, sf, sections, theta, steps, lr)
            for zk, wk in zip(zs, w, strict=True):
                stats.append(spatial_scores_from_latent(zk, wk, n_gp, sections, score).numpy())
            bar.update(len(chunk) - (1 if start == 0 else 0))
    stats = np.stack(stats)
    return stats[0], stats[1:]


def _fit_linear_decoder(
    zs: torch.Tensor,
    x: np.ndarray,
    sf: np.ndarray,
    sections: np.ndarray,
    theta: np.ndarray,
    steps: int,
    lr: float,
) -> torch.Tensor:
    """Fit ``W`` (``P × D × G``) of ``μ_ig = s_i e^{o_{S(i)g}} Σ_k e^{z_ik + W_kg}`` to counts.

    Maximum NB likelihood with fixed dispersions ``theta``, by full-batch Adam from a start
    that does not depend on the order of the spots: equal loadings on every ``exp(z_k)``
    rescaled to a maximum of 1, so that the mean rate is the gene's mean normalised count;
    offsets 0.
    """
    with torch.enable_grad():
        dtype = torch.float32
        x_t = torch.as_tensor(x, dtype=dtype)
        log_sf = torch.log(torch.as_tensor(sf, dtype=dtype)).reshape(1, -1, 1)
        log_theta = torch.log(torch.as_tensor(theta, dtype=dtype))
        sec = torch.as_tensor(sections, dtype=torch.long)
        n_sec = int(sec.max()) + 1
        # exp(z) with each dim shifted to max 1 (the shift is absorbed into W), then the rate
        # is evaluated as a matmul with a per-gene shift: no overflow, no P × n × D × G tensor.
        shift = zs.amax(dim=1, keepdim=True)  # P × 1 × D
        feats = torch.exp(zs - shift).to(dtype)  # P × n × D, in (0, 1]
        gene_mean = np.maximum((x / sf[:, None]).mean(0), 1e-8)
        start = torch.log(torch.as_tensor(gene_mean, dtype=dtype)) - torch.log(
            feats.mean(1).sum(-1, keepdim=True)
        )  # P × G
        w = start.unsqueeze(1).expand(-1, zs.shape[-1], -1).clone().requires_grad_(True)
        params = [w]
        offset = None
        if n_sec > 1:
            offset = torch.zeros(zs.shape[0], n_sec, x.shape[1], dtype=dtype, requires_grad=True)
            params.append(offset)
        opt = torch.optim.Adam(params, lr=lr)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            top = w.detach().amax(dim=1, keepdim=True)  # P × 1 × G
            log_mu = torch.log((feats @ torch.exp(w - top)).clamp_min(1e-30)) + top + log_sf
            if offset is not None:
                log_mu = log_mu + offset[:, sec]
            mu = torch.exp(log_mu)
            # Fixed θ: the terms constant in μ are left out.
            ll = nb_log_likelihood(x_t, log_mu, log_theta, mu, include_constant=False)
            loss = -ll.sum() / x.shape[0]
            loss.backward()
            opt.step()
        # Undo the feature shift: z + W must give the same rates as (z − shift) + W_fit.
        return (w.detach() - shift.transpose(1, 2).to(dtype)).to(zs.dtype)


# -- the "retrain" null -------------------------------------------------------------------------
def retrain_null(
    model, perms, score: str, random_state: int, train_kwargs: dict | None, progress_bar: bool
):
    """Spatial scores of models retrained on shuffled coordinates, ``P × G``."""
    setup = model.setup_args()
    kwargs = _default_retrain_kwargs(model)
    kwargs.update(train_kwargs or {})
    base = _minimal_copy(model.adata, setup)
    spatial_key = setup.get("spatial_key", OBSM.SPATIAL)
    coords = np.asarray(base.obsm[spatial_key])
    null = []
    for j, perm in enumerate(
        tqdm(perms, desc="SVG permutations (retrain)", disable=not progress_bar)
    ):
        shuffled = base.copy()
        shuffled.obsm[spatial_key] = coords[perm]
        with torch.random.fork_rng():
            torch.manual_seed(random_state + 1 + j)
            permuted = model.clone(shuffled)
            permuted.train(**kwargs)
        null.append(permuted.spatial_scores(score).to_numpy())
    return np.stack(null)


def _default_retrain_kwargs(model) -> dict:
    run = model.run_params_
    kwargs = {
        "max_epochs": max(int(model.n_epochs_trained), 1),
        "early_stopping": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    if "beta" in run:
        kwargs["beta"] = None if run["beta"] == "pi" else float(run["beta"])
    for key in ("lr", "weight_decay", "batch_size", "train_size"):
        if key in run:
            kwargs[key] = run[key]
    return kwargs


def _minimal_copy(adata: AnnData, setup: dict) -> AnnData:
    """The registered fields of ``adata`` only (counts, coordinates, section, size factor)."""
    layer = setup.get("layer")
    x = adata.layers[layer] if layer is not None else adata.X
    obs_cols = [setup[k] for k in ("batch_key", "size_factor_key") if setup.get(k) is not None]
    out = AnnData(
        X=x.copy(),
        obs=adata.obs[obs_cols].copy(),
        var=pd.DataFrame(index=adata.var_names.copy()),
    )
    if layer is not None:
        out.layers[layer] = out.X
    spatial_key = setup.get("spatial_key", OBSM.SPATIAL)
    out.obsm[spatial_key] = np.asarray(adata.obsm[spatial_key]).copy()
    return out


__all__ = ["permutation_within", "refit_null", "retrain_null", "spatial_scores_from_latent"]

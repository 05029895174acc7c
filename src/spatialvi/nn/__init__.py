"""Shared building blocks (pure torch, no AnnData): likelihood, MLP, size factors, GP prior,
conv encoder/decoder, Gibbs point-process head and pseudo-likelihood, Ada-GVAE pair averaging."""

from spatialvi.nn._adagvae import (
    AGGREGATIONS,
    aggregate_posteriors,
    pair_kl,
    shared_dims,
)
from spatialvi.nn._conv import ConvDecoder, ConvEncoder
from spatialvi.nn._gibbs import (
    GibbsHead,
    Quadrature,
    eroded_window,
    in_domain,
    log_pseudo_likelihood,
    quadrature_grid,
)
from spatialvi.nn._likelihood import nb_log_likelihood
from spatialvi.nn._mlp import MLP
from spatialvi.nn._scaling import MinMaxScaling, apply_minmax, fit_minmax
from spatialvi.nn._size_factor import library_size, median_library, size_factor
from spatialvi.nn._sparse_gp import (
    CauchyKernel,
    EQKernel,
    GPPosterior,
    SparseGPPrior,
    make_kernel,
)
from spatialvi.nn._vit import (
    VisionTransformer,
    dino_state_dict,
    load_dino_checkpoint,
    vit_base_16,
    vit_small_16,
)

__all__ = [
    "AGGREGATIONS",
    "MLP",
    "CauchyKernel",
    "ConvDecoder",
    "ConvEncoder",
    "EQKernel",
    "GPPosterior",
    "GibbsHead",
    "MinMaxScaling",
    "Quadrature",
    "SparseGPPrior",
    "VisionTransformer",
    "aggregate_posteriors",
    "apply_minmax",
    "dino_state_dict",
    "eroded_window",
    "fit_minmax",
    "in_domain",
    "library_size",
    "load_dino_checkpoint",
    "log_pseudo_likelihood",
    "make_kernel",
    "median_library",
    "nb_log_likelihood",
    "pair_kl",
    "quadrature_grid",
    "shared_dims",
    "size_factor",
    "vit_base_16",
    "vit_small_16",
]

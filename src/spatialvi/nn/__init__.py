"""Shared building blocks (pure torch, no AnnData): likelihood, MLP, size factors, GP prior,
conv encoder/decoder, Gibbs point-process head and pseudo-likelihood."""

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
from spatialvi.nn._size_factor import library_size, median_library, size_factor
from spatialvi.nn._sparse_gp import (
    CauchyKernel,
    EQKernel,
    GPPosterior,
    SparseGPPrior,
    make_kernel,
)

__all__ = [
    "MLP",
    "CauchyKernel",
    "ConvDecoder",
    "ConvEncoder",
    "EQKernel",
    "GPPosterior",
    "GibbsHead",
    "Quadrature",
    "SparseGPPrior",
    "eroded_window",
    "in_domain",
    "library_size",
    "log_pseudo_likelihood",
    "make_kernel",
    "median_library",
    "nb_log_likelihood",
    "quadrature_grid",
    "size_factor",
]

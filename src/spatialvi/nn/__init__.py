"""Shared building blocks (pure torch, no AnnData): likelihood, MLP, size factors, GP prior,
Gibbs point-process pseudo-likelihood."""

from spatialvi.nn._gibbs import (
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
    "EQKernel",
    "GPPosterior",
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

"""spatialvi.nn."""

from spatialvi.nn._sparse_gp import (
    CauchyKernel,
    EQKernel,
    GPPosterior,
    SparseGPPrior,
    make_kernel,
)

__all__ = ["CauchyKernel", "EQKernel", "GPPosterior", "SparseGPPrior", "make_kernel"]

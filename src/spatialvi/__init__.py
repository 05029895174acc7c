"""spatialvi: spatially informed and interpretable variational autoencoders.

Submodules are imported lazily (``spatialvi.model``, ``spatialvi.tl``, ...), so that
``import spatialvi`` stays fast and does not import torch, scvi-tools, scanpy or squidpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from spatialvi._version import __version__

_SUBMODULES = (
    "data",
    "datasets",
    "geometry",
    "metrics",
    "model",
    "module",
    "nn",
    "pl",
    "pp",
    "sim",
    "tl",
    "train",
)

if TYPE_CHECKING:  # pragma: no cover
    from spatialvi import (  # noqa: F401
        data,
        datasets,
        geometry,
        metrics,
        model,
        module,
        nn,
        pl,
        pp,
        sim,
        tl,
        train,
    )

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"spatialvi.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'spatialvi' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)

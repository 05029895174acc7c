"""Plots (matplotlib), returning Axes, accepting ``ax=`` and ``save=``."""

from spatialvi.pl._spatial import spatial_scatter

__all__ = ["spatial_scatter"]

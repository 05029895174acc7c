"""Plots (matplotlib), returning Axes or Figures, accepting ``save=``."""

from spatialvi.pl._points import (
    point_images,
    potentials,
    simulation_envelope,
    summary_function,
)
from spatialvi.pl._spatial import spatial_scatter

__all__ = [
    "point_images",
    "potentials",
    "simulation_envelope",
    "spatial_scatter",
    "summary_function",
]

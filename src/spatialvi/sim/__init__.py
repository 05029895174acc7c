"""Simulators: synthetic tissue sections (the embedded default data)."""

from spatialvi.geometry import hex_grid
from spatialvi.sim._tissue import synthetic_tissue

__all__ = ["hex_grid", "synthetic_tissue"]

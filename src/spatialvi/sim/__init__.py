"""Simulators: synthetic tissue sections (the embedded default data)."""

from spatialvi.sim._tissue import hex_grid, synthetic_tissue

__all__ = ["hex_grid", "synthetic_tissue"]

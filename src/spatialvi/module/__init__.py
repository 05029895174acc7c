"""spatialvi.module."""

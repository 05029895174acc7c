"""spatialvi.model."""

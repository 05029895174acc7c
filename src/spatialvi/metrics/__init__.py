"""spatialvi.metrics."""

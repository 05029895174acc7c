"""spatialvi.datasets."""

"""spatialvi.train."""

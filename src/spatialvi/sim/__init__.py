"""spatialvi.sim."""

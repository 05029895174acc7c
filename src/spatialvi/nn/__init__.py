"""spatialvi.nn."""

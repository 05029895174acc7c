"""spatialvi.pp."""

"""spatialvi.tl."""

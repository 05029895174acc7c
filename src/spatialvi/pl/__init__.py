"""spatialvi.pl."""

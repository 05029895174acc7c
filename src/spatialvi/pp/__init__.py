"""Preprocessing into AnnData: image tiling and pixel/point coordinate conventions."""

from spatialvi.pp._images import (
    image_scale,
    image_window,
    pixels_to_points,
    points_to_pixels,
    tile_image,
)

__all__ = ["image_scale", "image_window", "pixels_to_points", "points_to_pixels", "tile_image"]

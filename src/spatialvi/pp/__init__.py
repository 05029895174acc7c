"""Preprocessing into AnnData: image tiling, pixel/point coordinate conventions, spot detection."""

from spatialvi.pp._detect import detect_points, detect_spots
from spatialvi.pp._images import (
    image_scale,
    image_window,
    pixels_to_points,
    points_to_pixels,
    tile_image,
)

__all__ = [
    "detect_points",
    "detect_spots",
    "image_scale",
    "image_window",
    "pixels_to_points",
    "points_to_pixels",
    "tile_image",
]

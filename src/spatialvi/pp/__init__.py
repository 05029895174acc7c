"""Preprocessing into AnnData: image tiling, spot detection, image features; the pixel/point
coordinate conventions of :mod:`spatialvi.geometry` are re-exported here, where users import
them."""

from spatialvi.geometry import image_scale, image_window, pixels_to_points, points_to_pixels
from spatialvi.pp._detect import detect_points, detect_spots
from spatialvi.pp._features import extract_features, handcrafted_features
from spatialvi.pp._images import tile_image

__all__ = [
    "detect_points",
    "detect_spots",
    "extract_features",
    "handcrafted_features",
    "image_scale",
    "image_window",
    "pixels_to_points",
    "points_to_pixels",
    "tile_image",
]

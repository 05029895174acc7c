"""Geometry below the models: SMACOF, Procrustes, spot layouts, coordinate and image frames,
image noise levels.

Models and verbs both use these functions; this package imports neither (nor AnnData).
"""

from spatialvi.geometry._frames import (
    coordinate_rescaling,
    grid_inducing_points,
    kmeans_inducing_points,
)
from spatialvi.geometry._image_frames import (
    image_scale,
    image_window,
    pixels_to_points,
    points_to_pixels,
)
from spatialvi.geometry._image_noise import image_noise_sd, robust_sd
from spatialvi.geometry._procrustes import similarity_fit
from spatialvi.geometry._smacof import SmacofResult, smacof, torgerson
from spatialvi.geometry._spots import hex_grid, spot_distance, subspot_coordinates, subspot_offsets

__all__ = [
    "SmacofResult",
    "coordinate_rescaling",
    "grid_inducing_points",
    "hex_grid",
    "image_noise_sd",
    "image_scale",
    "image_window",
    "kmeans_inducing_points",
    "pixels_to_points",
    "points_to_pixels",
    "robust_sd",
    "similarity_fit",
    "smacof",
    "spot_distance",
    "subspot_coordinates",
    "subspot_offsets",
    "torgerson",
]

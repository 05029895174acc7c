"""Image coordinate frames: pixel ↔ point coordinates (SPEC convention).

An image of ``H × W`` pixels has scale ``s = max(H, W)``; a position at 0-based pixel
``(col, row)`` maps to ``x = (col + 0.5)/s`` (to the right) and ``y = (row + 0.5)/s`` (down), so
pixel centres sit at half-integers and the observation window is ``[0, W/s] × [0, H/s]`` (the
unit square for a square image). Below the models: models (SIVAE's window) and verbs (tiling,
spot detection) both use it.
"""

from __future__ import annotations

import numpy as np


def image_scale(height: int, width: int) -> int:
    """Scale ``s = max(H, W)`` that maps pixels to point units."""
    return int(max(height, width))


def image_window(height: int, width: int) -> tuple[float, float, float, float]:
    """Observation window ``(x_min, x_max, y_min, y_max) = (0, W/s, 0, H/s)`` in point units."""
    s = image_scale(height, width)
    return (0.0, width / s, 0.0, height / s)


def pixels_to_points(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Convert 0-based pixel positions ``(col, row)`` to point units ``(x, y)`` (float32)."""
    pixels = _as_positions(pixels, "pixels")
    return ((pixels + 0.5) / image_scale(height, width)).astype(np.float32)


def points_to_pixels(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Convert points ``(x, y)`` in image units back to 0-based pixel positions ``(col, row)``."""
    points = _as_positions(points, "points")
    return points * image_scale(height, width) - 0.5


def _as_positions(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != 2:
        raise ValueError(
            f"`{name}` must be an n × 2 array of (col, row) / (x, y); got shape {values.shape}."
        )
    return values

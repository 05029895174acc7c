"""Simulators: synthetic tissue sections (the embedded default data) and point processes.

Point processes on a rectangle (Poisson, Thomas, Strauss; homogeneous or with a trend), an
image renderer and the six-class point-pattern benchmark of SIVAE.
"""

from spatialvi.geometry import hex_grid
from spatialvi.sim._point_images import (
    PATTERN_CLASSES,
    dataset_parameters,
    linear_log_trend,
    point_pattern_dataset,
    render_points,
    simulate_pattern,
)
from spatialvi.sim._point_processes import (
    poisson_process,
    strauss_beta,
    strauss_process,
    thomas_process,
    trend_grid,
)
from spatialvi.sim._tissue import synthetic_tissue

__all__ = [
    "PATTERN_CLASSES",
    "dataset_parameters",
    "hex_grid",
    "linear_log_trend",
    "point_pattern_dataset",
    "poisson_process",
    "render_points",
    "simulate_pattern",
    "strauss_beta",
    "strauss_process",
    "synthetic_tissue",
    "thomas_process",
    "trend_grid",
]

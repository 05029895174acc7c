"""Simulators: synthetic tissue sections (the embedded default data) and point processes.

Point processes on a rectangle (Poisson, Thomas, Strauss; homogeneous or with a trend), an
image renderer and the six-class point-pattern benchmark of SIVAE; Texture-dSprites pairs
with known factors for AdaGVAE and the disentanglement metrics.
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
from spatialvi.sim._texture_dsprites import (
    COLOURS,
    FACTORS,
    ORIENTATIONS,
    SCALES,
    SHAPES,
    TEXTURES,
    factor_sizes,
    render_sprite,
    texture_dsprites,
    texture_dsprites_factors,
)
from spatialvi.sim._tissue import held_out_section, synthetic_tissue

__all__ = [
    "COLOURS",
    "FACTORS",
    "ORIENTATIONS",
    "PATTERN_CLASSES",
    "SCALES",
    "SHAPES",
    "TEXTURES",
    "dataset_parameters",
    "factor_sizes",
    "held_out_section",
    "hex_grid",
    "linear_log_trend",
    "point_pattern_dataset",
    "poisson_process",
    "render_points",
    "render_sprite",
    "simulate_pattern",
    "strauss_beta",
    "strauss_process",
    "synthetic_tissue",
    "texture_dsprites",
    "texture_dsprites_factors",
    "thomas_process",
    "trend_grid",
]

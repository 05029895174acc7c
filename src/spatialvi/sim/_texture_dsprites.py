"""Texture-dSprites: procedural sprites with known factors, rendered as weak-supervision pairs.

The source dataset of AdaGVAE (Dapueto et al., after dSprites, Matthey et al. 2017): a shape
(square, ellipse, heart) at one of 6 scales, 40 orientations and 32 × 32 positions, filled with
one of 8 colours modulated by one of 6 textures (3 procedural, 3 photographic ones shipped with
scikit-image). Every image is rendered on demand — the full grid of 35 million images would
take about 1.7 PB — so the generator draws pairs directly: the first member's factors uniformly,
then ``k`` factors that are *forced to change* to another value (uniformly among the others);
the second member is rendered from those factors. A random subset of the grid almost never
holds such a partner, which is why pairs are generated rather than searched for.

Forcing the change matters for OMES (see :func:`spatialvi.metrics.omes`): across pairs that
differ in a factor with ``n`` values the factor's two values have correlation ``−1/(n − 1)``.

Symmetries: a square looks the same every 90° (10 of the 40 orientations) and an ellipse every
180° (20 orientations), so their orientation codes are not identifiable from the image; the
heart has no symmetry.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from spatialvi._keys import OBS, OBSM, UNS
from spatialvi._validation import check_int

#: The factors in their canonical order (the order of the ``obs`` columns).
FACTORS = ("shape", "scale", "orientation", "pos_x", "pos_y", "colour", "texture")
SHAPES = ("square", "ellipse", "heart")
SCALES = tuple(np.linspace(0.5, 1.0, 6).round(3).tolist())
ORIENTATIONS = tuple(np.linspace(0.0, 2.0 * np.pi, 40, endpoint=False).tolist())
N_POSITIONS = 32
#: RGB fill colours: white and seven saturated hues.
COLOURS = (
    (1.0, 1.0, 1.0),
    (0.95, 0.25, 0.25),
    (0.95, 0.6, 0.2),
    (0.9, 0.9, 0.25),
    (0.3, 0.85, 0.3),
    (0.25, 0.85, 0.9),
    (0.3, 0.4, 0.95),
    (0.8, 0.35, 0.9),
)
TEXTURES = ("flat", "stripes", "checker", "brick", "grass", "gravel")
#: Half-size of a scale-1 sprite as a fraction of the image side.
HALF_SIZE = 0.14
#: Every shape lies within this radius of its centre in sprite units (keeps sprites inside).
_EXTENT = 1.2
#: Darkest texture value: fill = colour · (floor + (1 − floor) · texture).
_TEXTURE_FLOOR = 0.35
_SUPERSAMPLE = 2


def factor_sizes() -> dict[str, int]:
    """Number of values of each Texture-dSprites factor."""
    sizes = (len(SHAPES), len(SCALES), len(ORIENTATIONS), N_POSITIONS, N_POSITIONS)
    return dict(zip(FACTORS, (*sizes, len(COLOURS), len(TEXTURES)), strict=True))


def _allowed_values(factors) -> dict[str, np.ndarray]:
    sizes = factor_sizes()
    spec = {} if factors is None else factors
    if not isinstance(spec, dict):
        raise TypeError(
            "`factors` must be a dict mapping factor names to a code, a list of codes or None, "
            f"e.g. {{'colour': 0, 'texture': 0}}; got {type(factors).__name__}."
        )
    unknown = sorted(set(spec) - set(FACTORS))
    if unknown:
        raise ValueError(f"`factors` has unknown names {unknown}; valid names: {list(FACTORS)}.")
    allowed = {}
    for name in FACTORS:
        value = spec.get(name)
        n = sizes[name]
        codes = np.arange(n) if value is None else np.unique(np.atleast_1d(value))
        if codes.size == 0 or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(
                f"`factors[{name!r}]` must be an integer code or a non-empty list of codes in "
                f"0..{n - 1}, got {value!r}."
            )
        if codes.min() < 0 or codes.max() >= n:
            raise ValueError(
                f"`factors[{name!r}]` has codes outside 0..{n - 1} ({name} has {n} values): "
                f"{value!r}."
            )
        allowed[name] = codes.astype(np.int64)
    return allowed


def _draw_pairs(n_pairs: int, k: int, allowed: dict[str, np.ndarray], rng) -> np.ndarray:
    """Factor codes of ``n_pairs`` pairs: ``(n_pairs, 2, n_factors)``; exactly ``k`` differ."""
    varying = [i for i, name in enumerate(FACTORS) if allowed[name].size > 1]
    codes = np.empty((n_pairs, 2, len(FACTORS)), dtype=np.int64)
    for i, name in enumerate(FACTORS):
        codes[:, 0, i] = rng.choice(allowed[name], size=n_pairs)
    codes[:, 1] = codes[:, 0]
    for p in range(n_pairs):
        for i in rng.choice(varying, size=k, replace=False):
            others = allowed[FACTORS[i]][allowed[FACTORS[i]] != codes[p, 0, i]]
            codes[p, 1, i] = rng.choice(others)
    return codes


@lru_cache(maxsize=1)
def _photo_textures() -> dict[str, np.ndarray]:
    """scikit-image's bundled grey textures (shipped with the wheel; nothing is downloaded),
    scaled to [0, 1] between their 1st and 99th percentiles."""
    from skimage import data

    out = {}
    for name in ("brick", "grass", "gravel"):
        img = getattr(data, name)().astype(np.float64)
        lo, hi = np.percentile(img, [1, 99])
        out[name] = np.clip((img - lo) / (hi - lo), 0.0, 1.0)
    return out


def _texture(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Texture value in [0, 1] at sprite coordinates ``(u, v)`` (the texture moves, turns and
    scales with the sprite)."""
    if name == "flat":
        return np.ones_like(u)
    if name == "stripes":
        return 0.5 + 0.5 * np.cos(2.0 * np.pi * 2.5 * u)
    if name == "checker":
        return ((np.floor(2.5 * (u + 2.0)) + np.floor(2.5 * (v + 2.0))) % 2).astype(np.float64)
    img = _photo_textures()[name]
    # 80 texture pixels per sprite unit, nearest-neighbour lookup with wrap-around.
    rows = np.floor(v * 80.0 + img.shape[0] / 2).astype(np.int64) % img.shape[0]
    cols = np.floor(u * 80.0 + img.shape[1] / 2).astype(np.int64) % img.shape[1]
    return img[rows, cols]


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Indicator of the shape at sprite coordinates (all shapes fit in the radius ``_EXTENT``)."""
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if shape == "ellipse":
        return u**2 + (v / 0.5) ** 2 <= 1.0
    # The heart curve (x² + y² − 1)³ ≤ x² y³, point up, shifted so that its box is centred.
    x, y = u / 0.95, -(v / 0.95) - 0.1
    return (x**2 + y**2 - 1.0) ** 3 - x**2 * y**3 <= 0.0


def render_sprite(codes, image_size: int = 64) -> np.ndarray:
    """Render one sprite from its factor codes (in :data:`FACTORS` order): ``3 × H × W`` float32.

    The shape's coverage of each pixel is estimated on a 2 × 2 sub-pixel grid (anti-aliased
    edges); the fill is ``colour · (0.35 + 0.65 · texture)`` on a black background.
    """
    shape, scale, orient, px, py, colour, texture = (int(c) for c in codes)
    s = int(image_size)
    half = HALF_SIZE * s * SCALES[scale]
    margin = _EXTENT * HALF_SIZE * s
    positions = np.linspace(margin, s - margin, N_POSITIONS)
    cx, cy = positions[px], positions[py]
    cos, sin = np.cos(ORIENTATIONS[orient]), np.sin(ORIENTATIONS[orient])

    def local(n: int):
        centres = (np.arange(s * n) + 0.5) / n
        x, y = np.meshgrid(centres - cx, centres - cy)
        return (cos * x + sin * y) / half, (-sin * x + cos * y) / half

    u, v = local(_SUPERSAMPLE)
    cover = _inside(SHAPES[shape], u, v).reshape(s, _SUPERSAMPLE, s, _SUPERSAMPLE).mean((1, 3))
    u, v = local(1)
    fill = _TEXTURE_FLOOR + (1.0 - _TEXTURE_FLOOR) * _texture(TEXTURES[texture], u, v)
    rgb = np.asarray(COLOURS[colour], dtype=np.float64)[:, None, None]
    return (rgb * (cover * fill)[None]).astype(np.float32)


def texture_dsprites_factors(
    n_pairs: int = 2000, k: int = 1, factors: dict | None = None, random_state=0
) -> pd.DataFrame:
    """The factor codes of :func:`texture_dsprites` without the images.

    Same arguments and the same draws (the same ``random_state`` gives the codes of the images
    :func:`texture_dsprites` renders); returns its ``obs``: one integer column per varying
    factor, ``pair_id`` and ``pair_member``. Useful to calibrate metrics on codes alone.
    """
    return _factor_table(n_pairs, k, factors, random_state)[0]


def _factor_table(n_pairs, k, factors, random_state):
    n_pairs = check_int("n_pairs", n_pairs)
    allowed = _allowed_values(factors)
    varying = [name for name in FACTORS if allowed[name].size > 1]
    if not isinstance(k, int | np.integer) or not 1 <= k <= len(varying):
        raise ValueError(
            f"`k` must be an integer between 1 and the number of varying factors "
            f"({len(varying)}: {varying}), got {k!r}."
        )
    rng = np.random.default_rng(random_state)
    codes = _draw_pairs(n_pairs, int(k), allowed, rng).reshape(2 * n_pairs, len(FACTORS))
    obs = pd.DataFrame(
        {name: codes[:, FACTORS.index(name)] for name in varying},
        index=[f"pair{p}_{m}" for p in range(n_pairs) for m in (0, 1)],
    )
    obs[OBS.PAIR_ID] = np.repeat(np.arange(n_pairs), 2)
    obs[OBS.PAIR_MEMBER] = np.tile([0, 1], n_pairs)
    return obs, codes, allowed, varying


def texture_dsprites(
    n_pairs: int = 2000,
    k: int = 1,
    image_size: int = 64,
    factors: dict | None = None,
    random_state=0,
):
    """Texture-dSprites image pairs whose members differ in exactly ``k`` factors.

    Parameters
    ----------
    n_pairs
        Number of pairs; the AnnData has ``2 · n_pairs`` observations, the two members of pair
        ``i`` in rows ``2i`` and ``2i + 1``. The default (4000 images, ~200 MB at 64 px) is a
        finite sample of a grid of 35 million images.
    k
        Number of factors that differ between the members of each pair; each of them is forced
        to take a different value. Between 1 and the number of varying factors.
    image_size
        Side of the square RGB images in pixels (at least 16).
    factors
        Restricts or fixes factors: a dict mapping a name of :data:`FACTORS` to a code (fixed),
        a list of codes (restricted to those) or ``None`` (all values, the default for names not
        given). E.g. ``{'colour': 0, 'texture': 0}`` gives white, untextured dSprites. Codes
        index :data:`SHAPES`, :data:`SCALES`, :data:`ORIENTATIONS` (radians), the 32 positions,
        :data:`COLOURS` and :data:`TEXTURES`.
    random_state
        Seed or :class:`numpy.random.Generator`; the same seed gives the same images.

    Returns
    -------
    :class:`~anndata.AnnData` with ``obsm['image']`` (``n × 3 × H × W`` float32 in [0, 1]);
    ``obs`` holds one integer column per varying factor (codes, :data:`FACTORS` order),
    ``obs['pair_id']`` and ``obs['pair_member']`` (0 or 1), and nothing else;
    ``uns['texture_dsprites']`` holds ``factors`` (the varying factor names), ``n_values``
    (values per varying factor), ``fixed`` (code of each fixed factor), ``k``, ``image_size``
    and the value tables (``shapes``, ``scales``, ``orientations``, ``colours``, ``textures``).
    """
    import anndata as ad

    check_int("image_size", image_size, minimum=16)
    obs, codes, allowed, varying = _factor_table(n_pairs, k, factors, random_state)
    images = np.empty((len(codes), 3, image_size, image_size), dtype=np.float32)
    for i, row in enumerate(codes):
        images[i] = render_sprite(row, image_size)
    adata = ad.AnnData(X=np.zeros((len(codes), 0), dtype=np.float32), obs=obs)
    adata.obsm[OBSM.IMAGE] = images
    sizes = factor_sizes()
    adata.uns[UNS.TEXTURE_DSPRITES] = {
        "factors": varying,
        "n_values": {name: int(allowed[name].size) for name in varying},
        "fixed": {name: int(allowed[name][0]) for name in FACTORS if name not in varying},
        "k": int(k),
        "image_size": int(image_size),
        "grid_sizes": sizes,
        "shapes": list(SHAPES),
        "scales": list(SCALES),
        "orientations": list(ORIENTATIONS),
        "colours": np.asarray(COLOURS),
        "textures": list(TEXTURES),
    }
    return adata

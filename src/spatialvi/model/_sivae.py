"""SIVAE: an image VAE whose latent encodes how point-like objects are arranged (SI-VAE)."""

from __future__ import annotations

import numpy as np
import torch
from anndata import AnnData
from scvi.data.fields import ObsmField

from spatialvi._keys import MODEL, OBSM, REGISTRY_KEYS, points_count_key
from spatialvi._validation import check_images, check_points, check_setup_anndata
from spatialvi.data import PointSetsObsmField, SpatialviAnnDataManager
from spatialvi.geometry import image_window
from spatialvi.model.base import SpatialviModel, train_docstring
from spatialvi.module._sivae import SIVAEModule
from spatialvi.nn import eroded_window, in_domain


class SIVAE(SpatialviModel):
    """Spatially informed VAE (ICLR 2026): images → latent that explains their point patterns.

    A convolutional VAE on ``obsm['image']`` whose latent also drives a pairwise Gibbs
    point-process head (:class:`~spatialvi.nn.GibbsHead`); training maximises the image
    likelihood plus ``pl_weight`` × the (scaled) log pseudo-likelihood of the images' point sets
    minus ``beta`` × KL (see :mod:`spatialvi.module._sivae` for the scaling). Point sets are
    needed only for training: :meth:`get_latent_representation` encodes images alone.

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    n_latent
        Latent dimension.
    pl_weight
        Weight of the pseudo-likelihood; ``0`` is the plain VAE of the same architecture.
        With the scaling, 1 gives the points as much weight as the image.
    interaction_range
        Range ``L`` of the pair potential (window units; the unit square for square images).
    erosion
        Border of the eroded window of the pseudo-likelihood; by default ``interaction_range``
        (the paper's ``D = W ⊖ R``). Smaller values keep more points in the data term.
    beta
        KL weight (the paper: 0.1).
    n_grid
        Quadrature points per side of the eroded window.
    noise_sd
        Standard deviation of the Gaussian image likelihood, per channel: ``"estimate"`` fixes
        it at the training images' noise level (:func:`spatialvi.geometry.image_noise_sd`,
        floored at 1 % of the images' sd); a number (or one per channel) fixes it there;
        ``None`` learns it. Fixed, the image keeps its weight against the points during
        training (see :class:`~spatialvi.module.SIVAEModule`).
    **module_kwargs
        Passed to :class:`~spatialvi.module.SIVAEModule` (``channels``, ``n_hidden``,
        ``head_hidden``, ``n_basis``, ``psi_penalty``, ``trend_knots``).

    Examples
    --------
    >>> adata = spatialvi.sim.point_pattern_dataset(500)
    >>> SIVAE.setup_anndata(adata)
    >>> model = SIVAE(adata)
    >>> model.train(max_epochs=50)
    >>> model.write_outputs()  # obsm['X_sivae'], uns['sivae']
    """

    _model_name = MODEL.SIVAE
    _module_cls = SIVAEModule

    def __init__(
        self,
        adata: AnnData,
        n_latent: int = 10,
        pl_weight: float = 1.0,
        interaction_range: float = 0.25,
        erosion: float | None = None,
        beta: float = 0.1,
        n_grid: int = 24,
        noise_sd: float | tuple[float, ...] | str | None = "estimate",
        **module_kwargs,
    ):
        super().__init__(adata)
        manager = self.adata_manager
        images = np.asarray(manager.get_from_registry(REGISTRY_KEYS.IMAGE_KEY))
        c, h, w = images.shape[1:]
        window = image_window(h, w)
        side = min(window[1], window[3])
        if not 0 < interaction_range < side:
            raise ValueError(
                f"`interaction_range` = {interaction_range!r} must lie in (0, {side:g}) (window "
                "units: the unit square for square images; the paper uses 0.25)."
            )
        erosion = float(interaction_range if erosion is None else erosion)
        if not 0 <= erosion < side / 2:
            raise ValueError(
                f"`erosion` = {erosion!r} must lie in [0, {side / 2:g}) so that the eroded window "
                "is not empty."
            )
        if pl_weight < 0 or beta < 0:
            raise ValueError(f"`pl_weight` and `beta` must be ≥ 0, got {pl_weight}, {beta}.")
        points = np.asarray(manager.get_from_registry(REGISTRY_KEYS.POINTS_KEY))
        present = ~np.isnan(points[..., 0])
        # NaN padding compares False: only present points count
        in_d = in_domain(points, eroded_window(window, erosion))
        mean_in_domain = float(in_d.sum(1).mean())
        if pl_weight > 0 and mean_in_domain == 0:
            raise ValueError(
                "No training image has a point in the eroded window: the pseudo-likelihood has "
                "no data. Check the point sets (obsm key given to `setup_anndata`), detect them "
                "with `spatialvi.pp.detect_points`, or lower `erosion`."
            )
        sigma = self._noise_sd(images, noise_sd)
        area = window[1] * window[3]
        mean_count = float(present.sum(1).mean())
        self.module = self._module_cls(
            image_shape=(c, h, w),
            window=window,
            n_latent=n_latent,
            pl_weight=pl_weight,
            interaction_range=interaction_range,
            erosion=erosion,
            mean_points_in_domain=max(mean_in_domain, 1.0),
            image_mean=float(images.mean()),
            image_sd=float(images.std()) or 1.0,
            n_grid=n_grid,
            noise_sd=sigma,
            initial_log_intensity=float(np.log(max(mean_count, 1.0) / area)),
            **module_kwargs,
        )
        self.max_training_points_ = int(present.sum(1).max(initial=0))
        self._model_summary_string = (
            f"SIVAE: n_latent={n_latent}, pl_weight={pl_weight}, interaction_range="
            f"{interaction_range}, erosion={erosion}, beta={beta}, images {c}×{h}×{w}"
        )
        self.init_params_ = self._get_init_params(locals())
        self.run_params_ = {
            "n_latent": n_latent,
            "pl_weight": float(pl_weight),
            "interaction_range": float(interaction_range),
            "erosion": erosion,
            "beta": float(beta),
            "n_grid": int(n_grid),
            "noise_sd": None if sigma is None else list(sigma),
            "mean_points_in_domain": mean_in_domain,
            "pl_scale": float(self.module.pl_scale),
        }

    @staticmethod
    def _noise_sd(images: np.ndarray, noise_sd) -> tuple[float, ...] | None:
        """The fixed per-channel σ of the image likelihood (``None``: learned)."""
        from spatialvi.geometry import image_noise_sd

        c = images.shape[1]
        if noise_sd is None:
            return None
        if isinstance(noise_sd, str):
            if noise_sd != "estimate":
                raise ValueError(
                    f"`noise_sd` = {noise_sd!r}: pass 'estimate', a positive number (one or "
                    "one per channel) or None (learned)."
                )
            spread = images.std(axis=(0, 2, 3))
            floor = np.maximum(0.01 * spread, 1e-6)
            estimate = np.nan_to_num(image_noise_sd(images), nan=0.0)
            return tuple(float(v) for v in np.maximum(estimate, floor))
        values = np.atleast_1d(np.asarray(noise_sd, dtype=float))
        if values.ndim != 1 or values.size not in (1, c) or not np.all(values > 0):
            raise ValueError(
                f"`noise_sd` = {noise_sd!r} must be 'estimate', None, or positive: one number "
                f"or one per channel ({c} channels)."
            )
        return tuple(float(v) for v in np.broadcast_to(values, (c,)))

    @property
    def window(self) -> tuple[float, float, float, float]:
        """The images' observation window (SPEC image units)."""
        h, w = self.module.decoder.height, self.module.decoder.width
        return image_window(h, w)

    @classmethod
    def setup_anndata(
        cls,
        adata: AnnData,
        image_key: str = OBSM.IMAGE,
        points_key: str = OBSM.POINTS,
        **kwargs,
    ):
        """Register images and (training-only) point sets.

        Parameters
        ----------
        adata
            AnnData with images in ``obsm[image_key]`` (``n × C × H × W`` float32) and point
            sets in ``obsm[points_key]`` (``n × K_max × 2`` float32, NaN-padded, SPEC image
            units; e.g. from :func:`spatialvi.pp.detect_points` or
            :func:`spatialvi.sim.point_pattern_dataset`). A query AnnData encoded later needs
            the images only.
        image_key, points_key
            ``obsm`` keys.
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        check_setup_anndata(
            adata, cls.__name__, query="source_registry" in kwargs, needs_vars=False
        )
        check_images(adata, image_key)
        check_points(adata, points_key, image_key, points_count_key(points_key))
        fields = [
            ObsmField(REGISTRY_KEYS.IMAGE_KEY, image_key),
            PointSetsObsmField(REGISTRY_KEYS.POINTS_KEY, points_key),
        ]
        manager = SpatialviAnnDataManager(fields=fields, setup_method_args=setup_method_args)
        manager.register_fields(adata, **kwargs)
        cls.register_manager(manager)

    @train_docstring
    def train(
        self,
        max_epochs: int | None = 100,
        batch_size: int = 64,
        train_size: float = 0.9,
        early_stopping: bool = False,
        early_stopping_patience: int = 20,
        early_stopping_rel_delta: float = 0.0,
        restore_best: bool = False,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        accelerator: str = "auto",
        devices="auto",
        plan_kwargs: dict | None = None,
        **trainer_kwargs,
    ):
        """Train with Adam at a fixed KL weight ``beta``; records images per second.

        Parameters
        ----------
        max_epochs
            Epochs (``None``: scvi-tools' heuristic).
        batch_size
            Minibatch size.
        train_size
            Fraction of images for training; the rest validate.
        early_stopping, early_stopping_patience, early_stopping_rel_delta, restore_best
            Stop on the validation ELBO (:class:`~spatialvi.train.RelativeEarlyStopping`).
        lr, weight_decay
            Adam learning rate and weight decay.
        {train_common}
        """
        result = self._train_recipe(
            {**locals(), "trainer_kwargs": trainer_kwargs},
            beta_controller=float(self.run_params_["beta"]),
            optimizer="Adam",
            throughput_param="images_per_second",
        )
        return result

    def _validate_images(self, adata: AnnData | None) -> None:
        if adata is None:
            return
        key = self.adata_manager.data_registry[REGISTRY_KEYS.IMAGE_KEY].attr_key
        images = check_images(adata, key)
        expected = tuple(self.module.image_shape)
        if tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"adata.obsm[{key!r}] holds images of shape {tuple(images.shape[1:])}; the model "
                f"was trained on {expected} (C × H × W). Resize or tile them to that shape."
            )

    def get_latent_representation(self, adata: AnnData | None = None, **kwargs) -> np.ndarray:
        """Posterior-mean latent of each image (``n_obs × n_latent``); needs images only."""
        self._validate_images(adata)
        return super().get_latent_representation(adata, **kwargs)

    @torch.inference_mode()
    def get_potentials(
        self,
        adata: AnnData | None = None,
        radii=None,
        grid_size: int = 32,
        batch_size: int = 256,
    ) -> dict[str, np.ndarray]:
        """The learned Gibbs potentials of each image, at its posterior-mean latent.

        Parameters
        ----------
        adata
            AnnData with images (default: the training data).
        radii
            Distances for ψ; by default 50 up to the interaction range.
        grid_size
            Cells per side of the grid over the window for φ.
        batch_size
            Images per forward pass.

        Returns
        -------
        A dict with ``radii`` (``R``), ``psi`` (``n × R``: ψ(r); positive is repulsion),
        ``decay`` (``R``: the weight w(r) multiplying ψ), ``x``, ``y`` (grid cell centres) and
        ``phi`` (``n × grid_size × grid_size``: φ(u), rows along y; outside the eroded window
        φ keeps its boundary values).
        """
        self._check_if_trained(warn=False)
        head = self.module.head
        radii = (
            np.linspace(0.0, head.interaction_range, 50)
            if radii is None
            else np.asarray(radii, dtype=np.float64)
        )
        x_min, x_max, y_min, y_max = self.window
        xs = x_min + (np.arange(grid_size) + 0.5) * (x_max - x_min) / grid_size
        ys = y_min + (np.arange(grid_size) + 0.5) * (y_max - y_min) / grid_size
        gx, gy = np.meshgrid(xs, ys)
        device = self.module.device
        grid = torch.as_tensor(
            np.column_stack([gx.ravel(), gy.ravel()]), dtype=torch.float32, device=device
        )
        r = torch.as_tensor(radii, dtype=torch.float32, device=device)
        z_all = self.get_latent_representation(adata, batch_size=batch_size)
        self.module.eval()
        psi, phi = [], []
        for start in range(0, len(z_all), batch_size):
            z = torch.as_tensor(z_all[start : start + batch_size], device=device)
            psi.append(head.psi(z, r).cpu().numpy())
            phi.append(head.phi(z, grid).cpu().numpy().reshape(len(z), grid_size, grid_size))
        return {
            "radii": radii,
            "psi": np.concatenate(psi).astype(np.float64),
            "decay": head.decay(r).cpu().numpy().astype(np.float64),
            "x": xs,
            "y": ys,
            "phi": np.concatenate(phi).astype(np.float64),
        }

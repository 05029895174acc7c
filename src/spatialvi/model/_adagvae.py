"""AdaGVAE: weakly supervised disentangled representations of image features (DRL framework)."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
import torch
from anndata import AnnData
from scvi.data.fields import ObsmField

from spatialvi._keys import MODEL, OBS, OBSM, REGISTRY_KEYS
from spatialvi._validation import check_features, check_obs_column, check_setup_anndata
from spatialvi.data import (
    PairDataSplitter,
    SpatialviAnnDataManager,
    TrainingOnlyNumericalObsField,
    pair_members,
)
from spatialvi.model.base import SpatialviModel, train_docstring
from spatialvi.module._adagvae import AdaGVAEModule


def _pair_members(adata: AnnData, pair_key: str) -> np.ndarray:
    """The ``n_pairs × 2`` member rows of the pairs in ``adata.obs[pair_key]``."""
    if pair_key not in adata.obs:
        raise KeyError(
            f"Pair ids not found: adata.obs[{pair_key!r}] is missing. Give each pair's two "
            "members the same id (e.g. `spatialvi.sim.texture_dsprites` writes 'pair_id'), or "
            "pass `pair_key=None` for unsupervised (β-VAE) training."
        )
    return pair_members(adata.obs[pair_key])  # a missing partner or a third member is an error


class AdaGVAE(SpatialviModel):
    """Ada-GVAE (Locatello et al. 2020) on image features, with transfer to new data.

    An MLP VAE on ``obsm[features_key]`` (e.g. DINO ViT features from
    :func:`spatialvi.pp.extract_features`) trained on pairs of observations that differ in a few
    factors: per pair, the latent dims whose posteriors differ least are averaged between the
    two members (:func:`spatialvi.nn.aggregate_posteriors`), which aligns dims with factors.
    See :mod:`spatialvi.module._adagvae` for the loss. :meth:`transfer` carries the weights to
    another AnnData (e.g. real cells) for unsupervised fine-tuning as a β-VAE.

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    n_latent
        Latent dimension (the paper: 10).
    beta
        KL weight.
    aggregation
        ``'gvae'`` (mean of the posteriors), ``'mlvae'`` (their product) or ``None``: the
        β-VAE of the same architecture (pairs ignored).
    hidden
        Encoder widths (decoder mirrored); the paper's MLP ``(512, 1024, 1536)``.
    feature_sd
        Standard deviation of the Gaussian likelihood on min–max scaled features (default
        0.1: a tenth of each feature's source range); ``None`` learns one per feature.

    Examples
    --------
    >>> adata = spatialvi.sim.texture_dsprites(2000)
    >>> spatialvi.pp.extract_features(adata, backbone="raw")
    >>> AdaGVAE.setup_anndata(adata, features_key="X_raw", factor_keys=adata.uns["texture_dsprites"]["factors"])
    >>> model = AdaGVAE(adata)
    >>> model.train(max_epochs=50)
    >>> model.write_outputs()  # obsm['X_adagvae']
    >>> target = model.transfer(cells)  # cells.obsm['X_raw'] of the same width
    >>> target.train(max_epochs=20)  # unsupervised fine-tuning
    """

    _model_name = MODEL.ADAGVAE
    _module_cls = AdaGVAEModule

    def __init__(
        self,
        adata: AnnData,
        n_latent: int = 10,
        beta: float = 1.0,
        aggregation: str | None = "gvae",
        hidden: tuple[int, ...] = (512, 1024, 1536),
        feature_sd: float | None = 0.1,
    ):
        super().__init__(adata)
        if beta < 0:
            raise ValueError(f"`beta` must be ≥ 0, got {beta}.")
        features = np.asarray(
            self.adata_manager.get_from_registry(REGISTRY_KEYS.FEATURES_KEY), dtype=np.float64
        )
        self.module = self._module_cls(
            n_input=features.shape[1],
            n_latent=n_latent,
            hidden=tuple(hidden),
            aggregation=aggregation,
            feature_min=features.min(axis=0),
            feature_max=features.max(axis=0),
            feature_sd=feature_sd,
        )
        paired = self.adata_manager.has_field_data(REGISTRY_KEYS.PAIR_KEY)
        self._model_summary_string = (
            f"AdaGVAE: n_latent={n_latent}, beta={beta}, aggregation={aggregation}, "
            f"{features.shape[1]} features, {'paired' if paired else 'unpaired'} training data"
        )
        self.init_params_ = self._get_init_params(locals())
        self.run_params_ = {
            "n_latent": int(n_latent),
            "beta": float(beta),
            "aggregation": aggregation,
            "n_features": int(features.shape[1]),
            "paired": bool(paired),
        }

    @classmethod
    def setup_anndata(
        cls,
        adata: AnnData,
        features_key: str = OBSM.X_DINO,
        factor_keys: str | list[str] | None = None,
        pair_key: str | None = OBS.PAIR_ID,
        k: int | None = None,
        **kwargs,
    ):
        """Register features and (training-only) pair ids.

        Parameters
        ----------
        adata
            AnnData with features in ``obsm[features_key]`` (``n × F``, finite).
        features_key
            ``obsm`` key of the features.
        factor_keys
            ``obs`` columns of known factors (for checks against ``k`` and for metrics; not
            used in training).
        pair_key
            ``obs`` column whose ids give each pair's two members; ``None``: no pairs
            (unsupervised β-VAE training, e.g. fine-tuning on real data). A query AnnData
            encoded later needs the features only.
        k
            With ``factor_keys``: the number of factors a pair may differ in; a pair that
            differs in more is an error (a pair that differs in none, a warning).
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        check_setup_anndata(
            adata, cls.__name__, query="source_registry" in kwargs, needs_vars=False
        )
        check_features(adata, features_key)
        fields = [ObsmField(REGISTRY_KEYS.FEATURES_KEY, features_key)]
        # loading a saved model onto a query AnnData (`source_registry`) needs no pairs/factors
        query = "source_registry" in kwargs
        keys = None
        if factor_keys is not None:
            keys = [factor_keys] if isinstance(factor_keys, str) else list(factor_keys)
            if query and not set(keys) <= set(adata.obs):
                keys = None
            for key in keys or ():
                check_obs_column(adata, key, "factor_keys")
        if pair_key is not None:
            members = None
            if not (query and pair_key not in adata.obs):
                members = _pair_members(adata, pair_key)
            if keys is not None and members is not None:
                codes = adata.obs[keys].to_numpy()
                n_diff = (codes[members[:, 0]] != codes[members[:, 1]]).sum(axis=1)
                if k is not None and (n_diff > k).any():
                    raise ValueError(
                        f"{int((n_diff > k).sum())} pairs differ in more than k={k} of the factors "
                        f"{keys} (up to {int(n_diff.max())}); pass the right `k` or fix the pairs."
                    )
                if (n_diff == 0).any():
                    warnings.warn(
                        f"{int((n_diff == 0).sum())} pairs do not differ in any of {keys}; they "
                        "average every latent dim.",
                        UserWarning,
                        stacklevel=2,
                    )
            # the ids are registered as codes (any hashable ids in obs)
            fields.append(TrainingOnlyNumericalObsField(REGISTRY_KEYS.PAIR_KEY, pair_key))
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
        """Train with Adam at a fixed KL weight ``beta``, on pairs when the data has them.

        With pairs, minibatches hold ``batch_size / 2`` whole pairs and ``train_size`` is the
        fraction of *pairs* used for training; without, it is a β-VAE on single observations.

        Parameters
        ----------
        max_epochs
            Epochs (``None``: scvi-tools' heuristic).
        batch_size
            Observations per minibatch (two per pair).
        train_size
            Fraction of pairs (or observations) for training; the rest validate.
        early_stopping, early_stopping_patience, early_stopping_rel_delta, restore_best
            Stop on the validation ELBO (:class:`~spatialvi.train.RelativeEarlyStopping`).
        lr, weight_decay
            Adam learning rate and weight decay.
        {train_common}
        """
        if self.adata_manager.has_field_data(REGISTRY_KEYS.PAIR_KEY):
            self._data_splitter_cls = functools.partial(
                PairDataSplitter, pair_registry_key=REGISTRY_KEYS.PAIR_KEY
            )
        else:
            self._data_splitter_cls = type(self)._data_splitter_cls
        result = self._train_recipe(
            {**locals(), "trainer_kwargs": trainer_kwargs},
            beta_controller=float(self.run_params_["beta"]),
            optimizer="Adam",
            throughput_param="observations_per_second",
        )
        return result

    # -- transfer --------------------------------------------------------------------------------
    def transfer(self, adata: AnnData, features_key: str | None = None, **overrides):
        """A new model on ``adata`` initialised with this model's weights (for fine-tuning).

        ``adata`` is set up without pairs (unsupervised) with ``features_key`` (default: this
        model's); its features must have this model's width. The min–max ranges of the source
        features are kept unchanged. ``overrides`` replace constructor arguments that do not
        change the architecture (``beta``; ``aggregation`` is ignored without pairs). Call
        ``.train()`` on the result to fine-tune it as a β-VAE.
        """
        key = features_key or self.setup_args()["features_key"]
        features = check_features(adata, key)
        width = self.module.n_input
        if features.shape[1] != width:
            raise ValueError(
                f"adata.obsm[{key!r}] has {features.shape[1]} features; the model was trained on "
                f"{width}. Extract the target features with the same backbone and settings."
            )
        forbidden = {"n_latent", "hidden", "feature_sd"} & set(overrides)
        if forbidden:
            raise ValueError(
                f"{sorted(forbidden)} change the architecture; they cannot be overridden."
            )
        cls = type(self)
        cls.setup_anndata(adata, features_key=key, pair_key=None)
        model = cls(adata, **{**self.init_kwargs(), **overrides})
        model.module.load_state_dict(self.module.state_dict())
        model.module.eval()  # as after training: batch norm uses its running statistics
        model.is_trained_ = self.is_trained_  # the weights are the trained source's
        model.run_params_["transferred"] = True
        return model

    @classmethod
    def load_pretrained(cls, dir_path: str | Path, adata: AnnData, features_key: str | None = None):
        """Load a model saved with :meth:`save` and :meth:`transfer` it to ``adata``."""
        path = Path(dir_path)
        if not path.is_dir():
            raise FileNotFoundError(
                f"No saved model at {str(path)!r} (a folder from `model.save`)."
            )
        source = cls.load(str(path), adata=adata)
        return source.transfer(adata, features_key=features_key)

    @torch.inference_mode()
    def decode(self, latent, batch_size: int = 256) -> np.ndarray:
        """Mean features of p(x | z) at the given latent points, in the features' own units.

        ``latent`` is ``m × n_latent`` (e.g. a traversal: one observation's posterior mean with
        one dim swept); the decoder's scaled output is mapped back through the source min–max
        ranges. For raw-pixel features reshape the result to images.
        """
        self._check_if_trained(warn=False)
        z_all = np.asarray(latent, dtype=np.float32)
        if z_all.ndim != 2 or z_all.shape[1] != self.module.n_latent:
            raise ValueError(
                f"`latent` must be m × {self.module.n_latent} (the model's n_latent), got shape "
                f"{z_all.shape}."
            )
        self.module.eval()
        out = []
        for start in range(0, len(z_all), batch_size):
            z = torch.as_tensor(z_all[start : start + batch_size], device=self.module.device)
            mean = self.module.generative(z)["mean"]
            out.append(self.module.scaling.inverse(mean).cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    def traverse(self, adata: AnnData | None = None, index: int = 0, values=None) -> np.ndarray:
        """Latent traversal: observation ``index``'s posterior mean with each dim swept.

        Returns decoded features ``n_latent × len(values) × F`` (``values`` default: 7 points
        from −2 to 2, replacing the dim's value).
        """
        values = np.linspace(-2.0, 2.0, 7) if values is None else np.asarray(values, float)
        z0 = self.get_latent_representation(adata)[int(index)]
        d = self.module.n_latent
        grid = np.repeat(z0[None, None, :], d, axis=0).repeat(len(values), axis=1)
        for j in range(d):
            grid[j, :, j] = values
        return self.decode(grid.reshape(-1, d)).reshape(d, len(values), -1)

    def _validate_features(self, adata: AnnData | None) -> None:
        if adata is None:
            return
        key = self.adata_manager.data_registry[REGISTRY_KEYS.FEATURES_KEY].attr_key
        features = check_features(adata, key)
        if features.shape[1] != self.module.n_input:
            raise ValueError(
                f"adata.obsm[{key!r}] has {features.shape[1]} features; the model was trained on "
                f"{self.module.n_input}."
            )

    def get_latent_representation(self, adata: AnnData | None = None, **kwargs) -> np.ndarray:
        """Posterior-mean latent of each observation (``n_obs × n_latent``); needs features only."""
        self._validate_features(adata)
        return super().get_latent_representation(adata, **kwargs)

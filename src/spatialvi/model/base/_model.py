"""The base of every spatialvi model: training recipe, outputs, cloning, size factors.

A model subclasses :class:`SpatialviModel`, sets ``_model_name`` (which names its default keys,
``obsm['X_<model_name>']`` …) and ``_module_cls``, declares its fields in ``setup_anndata`` and
exposes a documented ``train`` with its own defaults that calls :meth:`_train_recipe`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from anndata import AnnData
from scvi.dataloaders._data_splitting import validate_data_split
from scvi.model.base import BaseModelClass, UnsupervisedTrainingMixin, VAEMixin

from spatialvi._keys import REGISTRY_KEYS, ModelKeys, model_keys
from spatialvi.data import InMemoryDataSplitter
from spatialvi.nn import library_size, median_library, size_factor
from spatialvi.train import (
    RelativeEarlyStopping,
    SpatialviTrainingPlan,
    Throughput,
    fit_batch_size,
)

#: Arguments of a model's public ``train`` that the recipe takes as they are.
_RECIPE_ARGS = (
    "max_epochs",
    "batch_size",
    "train_size",
    "early_stopping",
    "early_stopping_patience",
    "early_stopping_rel_delta",
    "restore_best",
    "lr",
    "weight_decay",
    "accelerator",
    "devices",
    "plan_kwargs",
)

#: Docstring fragment of the ``train`` arguments every model shares (``{train_common}``).
_TRAIN_COMMON_DOC = """accelerator, devices
            Lightning device arguments (``"auto"`` uses CUDA when present).
        plan_kwargs
            Extra arguments for :class:`~spatialvi.train.SpatialviTrainingPlan`.
        **trainer_kwargs
            Passed to :class:`scvi.train.Trainer`."""


def train_docstring(func: Callable) -> Callable:
    """Fill ``{train_common}`` in a model's ``train`` docstring with the shared arguments."""
    func.__doc__ = (func.__doc__ or "").replace("{train_common}", _TRAIN_COMMON_DOC)
    return func


class SpatialviModel(VAEMixin, UnsupervisedTrainingMixin, BaseModelClass):
    """Shared base of the spatialvi models (an scvi-tools ``BaseModelClass``).

    Provides

    - the training recipe (:meth:`_train_recipe`): batch-size cap and batch-norm-safe remainder,
      train/validation split, early stopping on a validation quantity with a relative margin
      and restore-best (:class:`~spatialvi.train.RelativeEarlyStopping`), the β controller of
      :class:`~spatialvi.train.SpatialviTrainingPlan`, ``run_params_`` and
      :attr:`n_epochs_trained`;
    - one output verb, :meth:`write_outputs`, of the same shape for every model;
    - :meth:`clone` (a fresh, untrained model with the same parameters on another AnnData, for
      refits and permutation nulls);
    - registered size factors (:meth:`registered_size_factors`).
    """

    #: Names the default output keys (``obsm['X_<name>']``, ``layers['<name>_denoised']``, …).
    _model_name: str = ""
    _training_plan_cls = SpatialviTrainingPlan
    # Minibatches cut from tensors held once on the training device (the fast path).
    _data_splitter_cls = InMemoryDataSplitter
    #: Validation quantity the early stopping watches (lower is better, does not move with β).
    _early_stopping_monitor = "elbo_validation"

    def __init__(self, adata: AnnData | None = None):
        super().__init__(adata)
        self.run_params_: dict = {}

    # -- training ---------------------------------------------------------------------------------
    def _before_training(self, n_train: int) -> None:
        """Hook run after the split is known and before fitting (e.g. set the GP's ``N``)."""

    def _after_training(self) -> None:
        """Hook run after fitting (e.g. condition the GP on all observations)."""

    def _train_recipe(
        self,
        train_args: Mapping,
        *,
        beta_controller,
        optimizer: str,
        run_params: dict | None = None,
        throughput_param: str | None = None,
        plan_defaults: Mapping | None = None,
    ):
        """Fit the module with the shared recipe; records ``run_params_``.

        Parameters
        ----------
        train_args
            The arguments of the model's public ``train`` (its ``locals()``): the names in
            ``_RECIPE_ARGS`` and ``trainer_kwargs``. ``max_epochs=None`` uses scvi-tools'
            heuristic. The minibatch size is capped at the training-set size; a 1–2
            observation remainder is dropped each epoch (batch norm). Early stopping is
            switched off when there is no validation set.
        beta_controller
            KL weight: a number or a controller of :class:`~spatialvi.train.SpatialviTrainingPlan`.
        optimizer
            ``"Adam"`` or ``"AdamW"``.
        run_params
            Model-specific entries for ``run_params_``.
        throughput_param
            If given, a :class:`~spatialvi.train.Throughput` callback measures the training
            observations per second and ``run_params_[throughput_param]`` records it.
        plan_defaults
            Model-specific arguments of :class:`~spatialvi.train.SpatialviTrainingPlan` (such as
            a learning-rate warm-up); the user's ``plan_kwargs`` override them.
        """
        missing = [k for k in _RECIPE_ARGS if k not in train_args]
        if missing:
            raise TypeError(f"`train` of {type(self).__name__} must define {missing}.")
        args = {k: train_args[k] for k in _RECIPE_ARGS}
        train_size, lr, weight_decay = args["train_size"], args["lr"], args["weight_decay"]
        trainer_kwargs = dict(train_args.get("trainer_kwargs", {}))
        throughput = Throughput() if throughput_param is not None else None
        if throughput is not None:
            trainer_kwargs["callbacks"] = [*trainer_kwargs.get("callbacks", []), throughput]
        if isinstance(train_size, bool) or not isinstance(train_size, int | float):
            raise ValueError(f"`train_size` must be a fraction in (0, 1], got {train_size!r}.")
        if "validation_size" in trainer_kwargs:
            raise ValueError(
                "`validation_size` is not used: the spots not in `train_size` are the validation "
                "set; pass `train_size=` instead."
            )
        n_train, n_val = validate_data_split(self.adata.n_obs, train_size, None, None)
        batch_size, drop_last = fit_batch_size(args["batch_size"], n_train)
        splitter = {"drop_last": drop_last, **trainer_kwargs.pop("datasplitter_kwargs", {})}
        derive = getattr(self.module, "derived_tensors", None)
        if derive is not None and issubclass(self._data_splitter_cls, InMemoryDataSplitter):
            splitter.setdefault("derive", derive)
        plan = {
            "optimizer": optimizer,
            "lr": lr,
            "weight_decay": weight_decay,
            "beta_controller": beta_controller,
            **(plan_defaults or {}),
        }
        plan.update(args["plan_kwargs"] or {})
        stopper = None
        if args["early_stopping"] and n_val > 0:
            stopper = RelativeEarlyStopping(
                self._early_stopping_monitor,
                args["early_stopping_patience"],
                args["early_stopping_rel_delta"],
                restore_best=args["restore_best"],
            )
            trainer_kwargs["callbacks"] = [*trainer_kwargs.get("callbacks", []), stopper]
            trainer_kwargs.setdefault("check_val_every_n_epoch", 1)
        self._before_training(n_train)
        # Lightning keeps the mode it finds: after an inference call (eval mode) a second
        # `train()` would otherwise run with batch norm frozen and the loss in evaluation mode.
        self.module.train()
        result = UnsupervisedTrainingMixin.train(
            self,
            max_epochs=args["max_epochs"],
            accelerator=args["accelerator"],
            devices=args["devices"],
            train_size=train_size,
            batch_size=batch_size,
            early_stopping=False,
            datasplitter_kwargs=splitter,
            plan_kwargs=plan,
            **trainer_kwargs,
        )
        trainer = getattr(self, "trainer", None)
        self._n_epochs_trained = int(trainer.current_epoch) if trainer is not None else None
        self._after_training()
        self.run_params_.update(
            {
                "batch_size": batch_size,
                "train_size": train_size,
                "optimizer": optimizer,
                "lr": lr,
                "lr_warmup_steps": int(plan.get("lr_warmup_steps", 0)),
                "weight_decay": weight_decay,
                "final_beta": float(getattr(beta_controller, "beta", beta_controller)),
                "n_epochs": self.n_epochs_trained,
                "early_stopped": stopper is not None and stopper.stopped_epoch is not None,
                # Epochs trained when the restored weights were reached (1-based).
                "best_epoch": (
                    None
                    if stopper is None or stopper.restored_epoch is None
                    else stopper.restored_epoch + 1
                ),
                **(run_params or {}),
            }
        )
        if throughput is not None:
            self.run_params_[throughput_param] = round(throughput.per_second, 1)
        return result

    @property
    def n_epochs_trained(self) -> int:
        """Number of epochs run in the last training (0 before training)."""
        n = getattr(self, "_n_epochs_trained", None)
        if n is not None:
            return n
        history = getattr(self, "history_", None) or {}
        for key in ("elbo_train", "train_loss"):
            if key in history:
                return len(history[key])
        return 0

    # -- outputs ----------------------------------------------------------------------------------
    def output_keys(self, key_added: str | None = None) -> ModelKeys:
        """Keys :meth:`write_outputs` writes for ``key_added`` (``spatialvi._keys.model_keys``)."""
        return model_keys(self._model_name, key_added)

    def _can_denoise(self, adata: AnnData) -> bool:
        """Whether the model decodes denoised values for ``adata`` (its genes suffice)."""
        return hasattr(self, "get_denoised_expression")

    def _output_params(self) -> dict:
        """Run parameters written to ``uns``; models add their own."""
        return {k: v for k, v in self.run_params_.items() if v is not None}

    def write_outputs(
        self,
        adata: AnnData | None = None,
        key_added: str | None = None,
        copy: bool = False,
        denoised: bool | None = None,
        batch_size: int | None = None,
    ) -> AnnData | None:
        """Write the latent, the denoised values and the run parameters into ``adata``.

        Writes, aligned 1:1 with ``adata.obs_names`` (and ``var_names``):

        - ``obsm['X_<model>']`` (or ``obsm[key_added]``): the latent representation
          (:meth:`get_latent_representation`);
        - ``layers['<stem>_denoised']``: the denoised values, for models that decode them
          (:meth:`get_denoised_expression`) for ``adata`` (DPVAE: when ``adata`` has the
          model's genes) unless ``denoised=False``;
        - ``uns['<stem>']``: the run parameters, the keys written and the model's class name;

        with ``stem`` = ``key_added`` without a leading ``X_`` (``<model>`` by default).

        Parameters
        ----------
        adata
            AnnData set up like the training data (default: the training AnnData).
        key_added
            ``obsm`` key of the latent; the other keys derive from it (see above).
        copy
            Write into a copy of ``adata`` and return it; ``adata`` is left untouched.
        denoised
            ``None`` (default): write the denoised layer where the model can decode it for
            ``adata``; ``True``: require it (an error if it cannot); ``False``: skip it.
        batch_size
            Minibatch size for inference.

        Returns
        -------
        The modified copy if ``copy=True``, else ``None``. Everything is computed before
        anything is written, so an error leaves ``adata`` as it was.
        """
        keys = self.output_keys(key_added)
        target = self.adata if adata is None else adata
        if copy:
            target = target.copy()
        if denoised is None:
            denoised = self._can_denoise(target)
        latent = self.get_latent_representation(target, batch_size=batch_size)
        values = self.get_denoised_expression(target, batch_size=batch_size) if denoised else None
        params = self._output_params()
        params["latent_key"] = keys.latent
        target.obsm[keys.latent] = latent
        if values is not None:
            target.layers[keys.denoised] = values
            params["denoised_key"] = keys.denoised
        params["model"] = type(self).__name__
        target.uns[keys.uns] = params
        return target if copy else None

    # -- cloning ----------------------------------------------------------------------------------
    def init_kwargs(self) -> dict:
        """The arguments this model was constructed with (besides ``adata``)."""
        params = dict(self.init_params_.get("non_kwargs", {}))
        # scvi-tools files a constructor's ``**name`` arguments under ``kwargs[name]``.
        for extra in self.init_params_.get("kwargs", {}).values():
            params.update(extra)
        return params

    def clone(self, adata: AnnData, **overrides):
        """A new, untrained model of this class and these parameters on ``adata``.

        ``adata`` is set up with this model's ``setup_anndata`` arguments (which registers it,
        as ``setup_anndata`` does); ``overrides`` replace constructor arguments.
        """
        cls = type(self)
        cls.setup_anndata(adata, **self.setup_args())
        return cls(adata, **{**self.init_kwargs(), **overrides})

    def setup_args(self) -> dict:
        """The ``setup_anndata`` arguments of the training AnnData."""
        return dict(self.adata_manager.registry["setup_args"])

    # -- size factors -----------------------------------------------------------------------------
    def registered_size_factors(self, adata: AnnData | None = None) -> np.ndarray:
        """Size factor of every observation: the registered column, or library / median.

        The median is the module's ``median_library`` (the training spots') where the module
        stores one, else the median of ``adata``'s libraries.

        Parameters
        ----------
        adata
            AnnData set up like the training data (default: the training AnnData).
        """
        adata = self.adata if adata is None else self._validate_anndata(adata)
        manager = self.get_anndata_manager(adata, required=True)
        if REGISTRY_KEYS.SIZE_FACTOR_KEY in manager.data_registry:
            sf = manager.get_from_registry(REGISTRY_KEYS.SIZE_FACTOR_KEY)
            return np.asarray(sf, dtype=np.float64).reshape(-1)
        library = library_size(manager.get_from_registry(REGISTRY_KEYS.X_KEY))
        stored = getattr(self.module, "median_library", None)
        median = median_library(library) if stored is None else float(stored)
        return size_factor(library, median)

    def _section_codes(self, adata: AnnData | None = None) -> np.ndarray:
        """Integer batch (section) code of every observation (zeros without a ``batch_key``)."""
        adata = self._validate_anndata(adata) if adata is not None else self.adata
        manager = self.get_anndata_manager(adata, required=True)
        if REGISTRY_KEYS.BATCH_KEY not in manager.data_registry:
            return np.zeros(adata.n_obs, dtype=np.int64)
        return np.asarray(manager.get_from_registry(REGISTRY_KEYS.BATCH_KEY)).reshape(-1)


__all__ = ["SpatialviModel"]

"""The package's training plan: scvi-tools' :class:`~scvi.train.TrainingPlan` with a β controller.

The KL weight β is owned by a controller object that the plan calls after every training
minibatch (and at the start of every epoch); :class:`PIBetaController` is the "dynamic VAE" PI
controller used by SpaVAE (Tian et al. 2024), :class:`FixedBeta` keeps β constant and
:class:`KLWarmup` raises it linearly over the first epochs (DPVAE).
"""

from __future__ import annotations

import math
from collections import deque

import torch
from scvi.train import TrainingPlan


class FixedBeta:
    """A constant KL weight.

    Parameters
    ----------
    beta
        The KL weight.
    """

    def __init__(self, beta: float = 1.0):
        self.beta = float(beta)

    def update(self, kl_per_obs: float) -> float:
        """Return the (unchanged) β; ``kl_per_obs`` is ignored."""
        return self.beta

    def state_dict(self) -> dict:
        """Controller state (for checkpoints)."""
        return {"beta": self.beta}


class KLWarmup(FixedBeta):
    """A KL weight rising linearly from ``beta_start`` to ``beta`` over ``n_epochs`` epochs.

    In epoch ``e`` (0-based) β is ``beta_start + (beta − beta_start)·min(1, e / n_epochs)``,
    for every minibatch of that epoch and for its validation, as scvi-tools'
    ``n_epochs_kl_warmup``.

    Parameters
    ----------
    n_epochs
        Length of the warm-up (``0``: β is ``beta`` from the start).
    beta
        KL weight at the end of the warm-up.
    beta_start
        KL weight of the first epoch.
    """

    def __init__(self, n_epochs: int, beta: float = 1.0, beta_start: float = 0.0):
        if int(n_epochs) != n_epochs or n_epochs < 0:
            raise ValueError(f"`n_epochs` of the KL warm-up must be ≥ 0, got {n_epochs!r}.")
        super().__init__(beta)
        self.n_epochs = int(n_epochs)
        self.beta_end, self.beta_start = float(beta), float(beta_start)
        self.start_epoch(0)

    def start_epoch(self, epoch: int) -> float:
        """Set β for epoch ``epoch`` and return it."""
        frac = 1.0 if self.n_epochs == 0 else min(1.0, epoch / self.n_epochs)
        self.beta = self.beta_start + (self.beta_end - self.beta_start) * frac
        return self.beta

    def state_dict(self) -> dict:
        """Controller state (for checkpoints)."""
        return {"beta": self.beta, "n_epochs": self.n_epochs}


class PIBetaController:
    """PI controller steering the per-observation KL towards a target by adapting β.

    After each minibatch: ``e_k = gain · (target − mean of the last ≤ window KL values)``,
    ``ΔP = Kp·(σ(−e_k) − σ(−e_{k−1}))``, ``ΔI = Ki·e_k``, ``β ← clip(β + ΔP + ΔI, β_min, β_max)``.
    β is stored clipped, so the integral state cannot wind up past the bounds.

    Parameters
    ----------
    target
        Target KL per observation (SpaVAE: ``0.025 × (n_gp + n_gauss)`` nats per spot).
    kp, ki
        Proportional and integral gains (SpaVAE: 0.01 and −0.005).
    beta_init, beta_min, beta_max
        Initial β and its bounds (SpaVAE: 10, 4, 25).
    window
        Number of recent KL values averaged for the error.
    gain
        Factor applied to the error (SpaVAE: 5).
    """

    def __init__(
        self,
        target: float,
        kp: float = 0.01,
        ki: float = -0.005,
        beta_init: float = 10.0,
        beta_min: float = 4.0,
        beta_max: float = 25.0,
        window: int = 10,
        gain: float = 5.0,
    ):
        if not beta_min <= beta_init <= beta_max:
            raise ValueError(
                f"`beta_init`={beta_init} must lie in [beta_min, beta_max]=[{beta_min}, {beta_max}]."
            )
        self.target = float(target)
        self.kp, self.ki = float(kp), float(ki)
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)
        self.beta = float(beta_init)
        self.gain = float(gain)
        self._history: deque[float] = deque(maxlen=int(window))
        self._prev_sigmoid: float | None = None

    @staticmethod
    def _sigmoid(x: float) -> float:
        return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))

    def update(self, kl_per_obs: float) -> float:
        """Feed the latest minibatch KL per observation and return the new β."""
        self._history.append(float(kl_per_obs))
        error = self.gain * (self.target - sum(self._history) / len(self._history))
        sig = self._sigmoid(-error)
        delta_p = 0.0 if self._prev_sigmoid is None else self.kp * (sig - self._prev_sigmoid)
        self._prev_sigmoid = sig
        delta_i = self.ki * error
        self.beta = min(self.beta_max, max(self.beta_min, self.beta + delta_p + delta_i))
        return self.beta

    def state_dict(self) -> dict:
        """Controller state (for checkpoints)."""
        return {"beta": self.beta, "history": list(self._history)}


class EpochMetrics:
    """Sums of a training plan's per-minibatch quantities over one epoch, kept on the device.

    scvi-tools' :class:`~scvi.train.TrainingPlan` logs seven to ten values through Lightning's
    ``self.log`` in every step (the ELBO components as torchmetrics objects, the loss, the extra
    metrics); each call walks Lightning's whole result collection, which with the small networks
    of the spatialvi models costs about a third of a step. This accumulator adds the same
    quantities as tensors (no host synchronisation) and :meth:`values` gives the epoch values
    scvi-tools would log: per-observation means of the reconstruction loss and the local KL,
    the per-minibatch mean of the global KL, ``elbo = rec + kl_local + kl_global / n_total``,
    minibatch-size-weighted means of the loss, the extra metrics and β.

    Parameters
    ----------
    mode
        ``"train"`` or ``"validation"`` (the suffix of the logged names).
    n_total
        Number of observations of the set (divides the global KL in the ELBO, as scvi-tools).
    """

    def __init__(self, mode: str, n_total: int | None):
        self.mode = mode
        self.n_total = 1 if n_total is None or n_total < 1 else int(n_total)
        self.n_obs, self.n_batches = 0, 0
        self.sums: dict[str, torch.Tensor | float] = {}

    def _add(self, key: str, value) -> None:
        if isinstance(value, torch.Tensor):
            value = value.detach()
        self.sums[key] = self.sums[key] + value if key in self.sums else value

    def add(self, loss_output, beta: float | None = None) -> None:
        """Add one minibatch's :class:`~scvi.module.base.LossOutput` (and the β it used)."""
        b = int(loss_output.n_obs_minibatch)
        self.n_obs += b
        self.n_batches += 1
        self._add("reconstruction_loss", loss_output.reconstruction_loss_sum)
        self._add("kl_local", loss_output.kl_local_sum)
        self._add("kl_global", loss_output.kl_global_sum)
        self._add("loss", loss_output.loss * b)
        if beta is not None:
            self._add("beta", float(beta) * b)
        for key in loss_output.extra_metrics_keys:
            met = loss_output.extra_metrics[key]
            # scvi-tools logs only 0-d tensors and numbers among the extra metrics.
            if isinstance(met, torch.Tensor) and met.ndim != 0:
                continue
            self._add(f"extra:{key}", met * b)

    def values(self) -> dict[str, float]:
        """The epoch's values under the names scvi-tools logs (one host transfer)."""
        if self.n_obs == 0:
            return {}
        tensors = [k for k, v in self.sums.items() if isinstance(v, torch.Tensor)]
        total = {k: float(v) for k, v in self.sums.items() if k not in tensors}
        if tensors:
            stacked = torch.stack([self.sums[k].double().reshape(()) for k in tensors])
            total.update(zip(tensors, stacked.cpu().tolist(), strict=True))
        m = self.mode
        rec = total["reconstruction_loss"] / self.n_obs
        kl_local = total["kl_local"] / self.n_obs
        kl_global = total["kl_global"] / self.n_batches
        out = {
            f"elbo_{m}": rec + kl_local + kl_global / self.n_total,
            f"reconstruction_loss_{m}": rec,
            f"kl_local_{m}": kl_local,
            f"kl_global_{m}": kl_global,
            "train_loss" if m == "train" else "validation_loss": total["loss"] / self.n_obs,
        }
        if "beta" in total:
            out["beta"] = total["beta"] / self.n_obs
        for key, value in total.items():
            if key.startswith("extra:"):
                out[f"{key[len('extra:') :]}_{m}"] = value / self.n_obs
        return out


class SpatialviTrainingPlan(TrainingPlan):
    """Training plan whose KL weight comes from a β controller updated every minibatch.

    The module's ``loss`` must accept ``kl_weight`` and return a
    :class:`~scvi.module.base.LossOutput` whose ``extra_metrics`` hold ``"kl_per_obs"`` (the
    minibatch KL per observation the controller steers). β is logged as ``"beta"``.

    The logged values are scvi-tools' (``elbo_train``, ``reconstruction_loss_validation``, …,
    ``train_loss``, the extra metrics), accumulated over the epoch by :class:`EpochMetrics` and
    logged once at its end instead of through Lightning in every step (the per-step logging
    was about a third of a DPVAE step).

    Parameters
    ----------
    module
        A :class:`~scvi.module.base.BaseModuleClass`.
    beta_controller
        ``None`` (default): a :class:`FixedBeta` of 1; a float: a fixed β; or an object with
        ``update(kl_per_obs) -> float`` and a ``beta`` attribute (e.g. :class:`PIBetaController`);
        if it also has ``start_epoch(epoch)`` (e.g. :class:`KLWarmup`), that is called at the
        start of every training epoch.
    lr_warmup_steps
        Raise the learning rate linearly from ``lr_warmup_start × lr`` to ``lr`` over this many
        optimizer steps (``0``, the default: ``lr`` from the first step). It runs before any
        plateau schedule, which takes over from ``lr`` afterwards.
    lr_warmup_start
        Fraction of ``lr`` at the first step of the warm-up, in ``[0, 1]``.
    **kwargs
        Passed to :class:`~scvi.train.TrainingPlan` (``optimizer``, ``lr``, ``weight_decay``...).
    """

    def __init__(
        self,
        module,
        *,
        beta_controller=None,
        lr_warmup_steps: int = 0,
        lr_warmup_start: float = 0.0,
        **kwargs,
    ):
        bad_steps = isinstance(lr_warmup_steps, bool) or int(lr_warmup_steps) != lr_warmup_steps
        if bad_steps or lr_warmup_steps < 0:
            raise ValueError(f"`lr_warmup_steps` must be an integer ≥ 0, got {lr_warmup_steps!r}.")
        if not 0.0 <= float(lr_warmup_start) <= 1.0:
            raise ValueError(f"`lr_warmup_start` must be in [0, 1], got {lr_warmup_start!r}.")
        kwargs.setdefault("n_epochs_kl_warmup", None)
        super().__init__(module, **kwargs)
        self.lr_warmup_steps = int(lr_warmup_steps)
        self.lr_warmup_start = float(lr_warmup_start)
        if beta_controller is None:
            beta_controller = FixedBeta(1.0)
        elif isinstance(beta_controller, int | float):
            beta_controller = FixedBeta(beta_controller)
        if not hasattr(beta_controller, "update") or not hasattr(beta_controller, "beta"):
            raise TypeError(
                "`beta_controller` must be a float, None, or an object with `update(kl)` and "
                f"`beta`; got {type(beta_controller).__name__}."
            )
        self.beta_controller = beta_controller
        self._epoch_metrics: dict[str, EpochMetrics] = {}

    @property
    def kl_weight(self):
        """The current β from the controller."""
        # TrainingPlan.__init__ reads this before the controller is attached.
        controller = self.__dict__.get("beta_controller")
        beta = 1.0 if controller is None else controller.beta
        return torch.tensor(float(beta), device=self.device)

    def _optimizer_creator_fn(self, optimizer_cls):
        """Adam / AdamW as scvi-tools makes them, with torch's fused (one-kernel) update.

        The fused update gives the same step up to floating-point rounding; it replaces a
        Python loop over the parameters (a few percent of a step with small networks).
        """

        def create(params):
            params = list(params)
            devices = {p.device.type for p in params}
            fused = devices in ({"cpu"}, {"cuda"}) and all(p.is_floating_point() for p in params)
            return optimizer_cls(
                params,
                lr=self.lr,
                eps=self.eps,
                weight_decay=self.weight_decay,
                **({"fused": True} if fused else {}),
            )

        return create

    def _metrics(self, mode: str) -> EpochMetrics:
        if mode not in self._epoch_metrics:
            n = self.n_obs_training if mode == "train" else self.n_obs_validation
            self._epoch_metrics[mode] = EpochMetrics(mode, n)
        return self._epoch_metrics[mode]

    def _log_epoch(self, mode: str) -> dict[str, float]:
        metrics = self._epoch_metrics.pop(mode, None)
        values = {} if metrics is None else metrics.values()
        for key, value in values.items():
            self.log(key, value, on_step=False, on_epoch=True, prog_bar=key == "train_loss")
        return values

    def on_train_epoch_start(self) -> None:
        """Let an epoch-scheduled controller set this epoch's β."""
        self._epoch_metrics.pop("train", None)
        start_epoch = getattr(self.beta_controller, "start_epoch", None)
        if start_epoch is not None:
            start_epoch(self.current_epoch)

    def warmup_lr(self, step: int) -> float:
        """Learning rate of optimizer step ``step`` (0-based) under the linear warm-up."""
        if step >= self.lr_warmup_steps:
            return float(self.lr)
        start = self.lr_warmup_start
        return float(self.lr) * (start + (1.0 - start) * step / self.lr_warmup_steps)

    def on_train_batch_start(self, batch, batch_idx) -> None:
        """Set this step's learning rate while the warm-up lasts (and ``lr`` when it ends)."""
        step = self.global_step
        if self.lr_warmup_steps == 0 or step > self.lr_warmup_steps:
            return
        lr = self.warmup_lr(step)
        optimizers = self.optimizers(use_pl_optimizer=False)
        for optimizer in optimizers if isinstance(optimizers, list) else [optimizers]:
            for group in optimizer.param_groups:
                group["lr"] = lr

    def training_step(self, batch, batch_idx):
        """Optimise on one minibatch, then let the controller update β from its KL."""
        beta = float(self.beta_controller.beta)
        self.loss_kwargs.update({"kl_weight": self.kl_weight})
        _, _, loss_output = self.forward(batch, loss_kwargs=self.loss_kwargs)
        self._metrics("train").add(loss_output, beta=beta)
        kl = loss_output.extra_metrics.get("kl_per_obs")
        if kl is not None:
            self.beta_controller.update(float(kl))
        return loss_output.loss

    def validation_step(self, batch, batch_idx):
        """Evaluate one validation minibatch (accumulated, logged at the epoch's end)."""
        _, _, loss_output = self.forward(batch, loss_kwargs=self.loss_kwargs)
        self._metrics("validation").add(loss_output)

    def on_validation_epoch_start(self) -> None:
        self._epoch_metrics.pop("validation", None)

    def on_train_epoch_end(self) -> None:
        """Log the epoch's training values (and step a training-metric LR scheduler)."""
        values = self._log_epoch("train")
        self._step_scheduler(values, validation=False)

    def on_validation_epoch_end(self) -> None:
        """Log the epoch's validation values (and step a validation-metric LR scheduler)."""
        values = self._log_epoch("validation")
        self._step_scheduler(values, validation=True)

    def _step_scheduler(self, values: dict, validation: bool) -> None:
        # scvi-tools' ReduceLROnPlateau option, fed from the values just computed.
        if not self.reduce_lr_on_plateau:
            return
        if ("validation" in self.lr_scheduler_metric) != validation:
            return
        if self.lr_scheduler_metric in values:
            self.lr_schedulers().step(values[self.lr_scheduler_metric])

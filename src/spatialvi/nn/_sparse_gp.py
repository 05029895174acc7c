"""Amortised sparse Gaussian-process prior (SVGP-VAE, Jazbec et al. 2021) used by SpaVAE.

The encoder's means ``y`` and variances ``V`` act as heteroscedastic Gaussian
pseudo-observations of ``L`` independent GP latent dimensions over spot coordinates. The
posterior over inducing values is computed in closed form from a minibatch (Tian et al. 2024,
eqs. 5–8), not learned as free parameters.

Numerics (the ``"whitened"`` formulation, stable in float32)::

    L_m = chol(K_mm + εI),  A = L_m⁻¹ K_mb,
    B   = I + (N/b) · A V⁻¹ Aᵀ   (eigenvalues ≥ 1),  L_B = chol(B),
    m_w = (N/b) · B⁻¹ A V⁻¹ y,
    mean_i = a_iᵀ m_w,  var_i = k_ii − ‖a_i‖² + ‖L_B⁻¹ a_i‖²,
    KL(q(w) ‖ N(0, I)) = ½ (tr B⁻¹ + ‖m_w‖² − M + log|B|).

Only triangular solves and Cholesky factors are used: no explicit inverse, no ``b × b`` or
``b × M × M`` tensor; memory is ``O(L·M·(M + b))``. The ``"direct"`` formulation evaluates the
textbook (non-whitened) equations with explicit ``Σ = K_mm + (N/b) K_mb V⁻¹ K_bm`` and is kept as a
float64 reference and benchmark baseline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal, NamedTuple

import gpytorch
import torch
from torch import nn

_LOG_2PI = math.log(2 * math.pi)


class CauchyKernel(gpytorch.kernels.Kernel):
    """Cauchy kernel ``k(x, x') = 1 / (1 + ‖x − x'‖² / s)`` with a learnable positive scale ``s``.

    Parameters
    ----------
    scale
        Initial scale ``s`` (in squared coordinate units; SpaVAE's default is 20 on coordinates
        rescaled to ``[0, 20]``).
    **kwargs
        Passed to :class:`gpytorch.kernels.Kernel`.
    """

    has_lengthscale = False

    def __init__(self, scale: float = 20.0, **kwargs):
        super().__init__(**kwargs)
        self.register_parameter("raw_scale", nn.Parameter(torch.zeros(*self.batch_shape, 1, 1)))
        self.register_constraint("raw_scale", gpytorch.constraints.Positive())
        self.scale = scale

    @property
    def scale(self) -> torch.Tensor:
        """The positive kernel scale ``s``."""
        return self.raw_scale_constraint.transform(self.raw_scale)

    @scale.setter
    def scale(self, value) -> None:
        value = torch.as_tensor(value, dtype=self.raw_scale.dtype).expand_as(self.raw_scale)
        self.initialize(raw_scale=self.raw_scale_constraint.inverse_transform(value))

    def _profile(self, sq_dist: torch.Tensor) -> torch.Tensor:
        return 1.0 / (1.0 + sq_dist)

    def forward(self, x1, x2, diag: bool = False, last_dim_is_batch: bool = False, **params):
        """Evaluate the kernel (``diag=True``: only the diagonal)."""
        scale = self.scale
        sq = self.covar_dist(x1, x2, diag=diag, square_dist=True, **params)
        return self._profile(sq / (scale[..., 0] if diag else scale))


class EQKernel(CauchyKernel):
    """Exponentiated-quadratic kernel ``k(x, x') = exp(−‖x − x'‖² / s)`` (SpaVAE's ``"eq"``)."""

    def _profile(self, sq_dist: torch.Tensor) -> torch.Tensor:
        return torch.exp(-sq_dist)


def make_kernel(kernel: str | gpytorch.kernels.Kernel, scale: float = 20.0):
    """Build a kernel by name (``"cauchy"``, ``"eq"``, ``"matern"``) or pass a GPyTorch kernel.

    Parameters
    ----------
    kernel
        Kernel name or any :class:`gpytorch.kernels.Kernel` instance (used as is).
    scale
        Initial scale ``s``; for Matérn (ν = 3/2) the lengthscale is initialised to ``√(s/2)``
        so that its curvature at 0 matches the EQ kernel ``exp(−d²/s)``.
    """
    if isinstance(kernel, gpytorch.kernels.Kernel):
        return kernel
    if kernel == "cauchy":
        return CauchyKernel(scale=scale)
    if kernel == "eq":
        return EQKernel(scale=scale)
    if kernel == "matern":
        k = gpytorch.kernels.MaternKernel(nu=1.5)
        k.lengthscale = math.sqrt(scale / 2)
        return k
    raise ValueError(
        f"`kernel` must be 'cauchy', 'eq', 'matern' or a gpytorch.kernels.Kernel, got {kernel!r}."
    )


class GPPosterior(NamedTuple):
    """Minibatch output of :class:`SparseGPPrior` (all ``b × L``, except the scalars).

    Attributes
    ----------
    mean, var
        GP posterior mean ``m_i`` and variance ``s_i²`` at the batch points (eq. 8).
    log_marginal
        ``L_H`` summed over latent dims: the minibatch lower bound of eq. 5.
    cross_entropy
        ``Σ_i E_q[log N(y_i | z_i, V_i)]`` summed over dims (eq. 9, a negative cross-entropy).
    gp_term
        ``cross_entropy − log_marginal``: the estimate of ``KL(q(z_gp) ‖ p(z_gp))`` (eq. 4)
        for this minibatch.
    """

    mean: torch.Tensor
    var: torch.Tensor
    log_marginal: torch.Tensor
    cross_entropy: torch.Tensor
    gp_term: torch.Tensor


class SparseGPPrior(nn.Module):
    """Sparse GP prior over ``n_latent`` dims with closed-form amortised inducing posterior.

    Parameters
    ----------
    inducing_points
        ``M × d`` inducing locations (in the same coordinate units as the inputs).
    n_latent
        Number of GP latent dimensions ``L``; they share the kernel and are independent.
    kernel
        ``"cauchy"`` (default), ``"eq"``, ``"matern"`` or any :class:`gpytorch.kernels.Kernel`.
    kernel_scale
        Initial kernel scale ``s`` for named kernels.
    learn_inducing
        Whether inducing locations are trainable.
    jitter
        ``ε`` added to ``K_mm`` before its Cholesky factorisation.
    formulation
        ``"whitened"`` (default, float32-stable) or ``"direct"`` (textbook non-whitened
        equations with explicit inverses, always computed in float64; a reference and
        benchmark baseline).
    """

    def __init__(
        self,
        inducing_points: torch.Tensor,
        n_latent: int,
        kernel: str | gpytorch.kernels.Kernel = "cauchy",
        kernel_scale: float = 20.0,
        learn_inducing: bool = False,
        jitter: float = 1e-4,
        formulation: Literal["whitened", "direct"] = "whitened",
    ):
        super().__init__()
        if formulation not in ("whitened", "direct"):
            raise ValueError(f"`formulation` must be 'whitened' or 'direct', got {formulation!r}.")
        inducing_points = torch.as_tensor(inducing_points, dtype=torch.get_default_dtype())
        if inducing_points.ndim != 2:
            raise ValueError(
                f"`inducing_points` must be an M × d array, got shape {tuple(inducing_points.shape)}."
            )
        self.n_latent = int(n_latent)
        self.jitter = float(jitter)
        self.formulation = formulation
        self.kernel = make_kernel(kernel, kernel_scale)
        if learn_inducing:
            self.inducing_points = nn.Parameter(inducing_points.clone())
        else:
            self.register_buffer("inducing_points", inducing_points.clone())
        m = inducing_points.shape[0]
        # Full-data inducing posterior (filled by `fit_posterior`), saved with the state dict.
        self.register_buffer("posterior_chol", torch.zeros(self.n_latent, m, m))
        self.register_buffer("posterior_mean", torch.zeros(self.n_latent, m))
        self.register_buffer("has_posterior", torch.zeros((), dtype=torch.bool))

    @property
    def n_inducing(self) -> int:
        """Number of inducing points ``M``."""
        return self.inducing_points.shape[0]

    # -- kernel pieces ---------------------------------------------------------------------------
    def _k(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return self.kernel(x1, x2).to_dense()

    def _kdiag(self, x: torch.Tensor) -> torch.Tensor:
        return self.kernel(x, diag=True)

    def _chol_mm(self) -> torch.Tensor:
        z = self.inducing_points
        k_mm = self._k(z, z)
        eye = torch.eye(k_mm.shape[-1], dtype=k_mm.dtype, device=k_mm.device)
        return torch.linalg.cholesky(k_mm + self.jitter * eye)

    def _whiten(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``A = L_m⁻¹ K_mb`` (``M × b``) and ``k_ii`` (``b``)."""
        l_m = self._chol_mm()
        k_mb = self._k(self.inducing_points, x)
        a = torch.linalg.solve_triangular(l_m, k_mb, upper=False)
        return a, self._kdiag(x)

    # -- minibatch posterior and bound -------------------------------------------------------------
    def forward(
        self, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor, n_total: float | None = None
    ) -> GPPosterior:
        """Minibatch GP posterior and terms of the loss (Tian et al. 2024, eqs. 4–9).

        Parameters
        ----------
        x
            ``b × d`` coordinates of the batch.
        y, v
            ``b × L`` pseudo-observation means and variances (encoder outputs).
        n_total
            ``N``, the number of training spots; minibatch sums are scaled by ``N/b``.
            ``None`` means ``N = b`` (the batch is the whole data set).
        """
        b = x.shape[0]
        scale = 1.0 if n_total is None else float(n_total) / b
        if self.formulation == "whitened":
            mean, var, kl = self._whitened(x, y, v, scale)
        else:
            mean, var, kl = self._direct(x, y, v, scale)
        log_lik = -0.5 * (_LOG_2PI + torch.log(v) + (y - mean) ** 2 / v)
        # Eq. 5: trace terms k̃_ii + tr(S Λ_i) are exactly `var` (eq. 8), divided by 2 V_i.
        log_marginal = (log_lik - var / (2 * v)).sum() - kl.sum() / scale
        # Eq. 9: E_q[log N(y | z, V)] with q(z) = N(mean, var).
        cross_entropy = (-0.5 * (_LOG_2PI + torch.log(v) + (var + (mean - y) ** 2) / v)).sum()
        return GPPosterior(mean, var, log_marginal, cross_entropy, cross_entropy - log_marginal)

    def _whitened(self, x, y, v, scale):
        a, k_diag = self._whiten(x)  # M × b, b
        m = a.shape[0]
        eye = torch.eye(m, dtype=a.dtype, device=a.device)
        a_v = a.unsqueeze(0) / v.T.unsqueeze(1)  # L × M × b: A V_l⁻¹
        b_mat = eye + scale * a_v @ a.T  # L × M × M
        l_b = torch.linalg.cholesky(b_mat)
        rhs = scale * (a_v @ y.T.unsqueeze(-1))  # L × M × 1
        m_w = torch.cholesky_solve(rhs, l_b)  # L × M × 1
        mean = (a.T @ m_w).squeeze(-1).T  # b × L
        c = torch.linalg.solve_triangular(
            l_b, a.unsqueeze(0).expand(self.n_latent, -1, -1), upper=False
        )
        var = k_diag.unsqueeze(-1) - (a * a).sum(0).unsqueeze(-1) + (c * c).sum(1).T
        # tr B⁻¹ = ‖L_B⁻¹‖_F²; log|B| = 2 Σ log diag L_B.
        l_b_inv = torch.linalg.solve_triangular(l_b, eye.expand_as(l_b), upper=False)
        kl = 0.5 * (
            (l_b_inv * l_b_inv).sum((-1, -2))
            + (m_w.squeeze(-1) ** 2).sum(-1)
            - m
            + 2 * torch.log(torch.diagonal(l_b, dim1=-2, dim2=-1)).sum(-1)
        )
        return mean, var.clamp_min(1e-10), kl

    def _direct(self, x, y, v, scale):
        # The textbook form needs float64 (its Σ-Cholesky fails in float32 even with jitter).
        out_dtype = x.dtype
        x, y, v = x.double(), y.double(), v.double()
        z = self.inducing_points.double()
        k_mm = self._k(z, z)
        m = k_mm.shape[0]
        k_mm = k_mm + self.jitter * torch.eye(m, dtype=k_mm.dtype, device=k_mm.device)
        k_mb = self._k(z, x)
        k_diag = self._kdiag(x)
        k_mm_inv = torch.linalg.inv(k_mm)
        k_mb_v = k_mb.unsqueeze(0) / v.T.unsqueeze(1)  # L × M × b
        sigma = k_mm + scale * k_mb_v @ k_mb.T  # eq. 6
        sigma_inv = torch.linalg.inv(sigma)
        mu = scale * k_mm @ sigma_inv @ (k_mb_v @ y.T.unsqueeze(-1))  # L × M × 1
        a_u = k_mm @ sigma_inv @ k_mm  # L × M × M
        proj = k_mm_inv @ k_mb  # M × b
        mean = (proj.T @ mu).squeeze(-1).T
        q_diag = (k_mb * proj).sum(0)
        s_diag = torch.einsum("mb,lmn,nb->lb", proj, a_u, proj)
        var = k_diag.unsqueeze(-1) - q_diag.unsqueeze(-1) + s_diag.T
        kl = 0.5 * (
            torch.diagonal(k_mm_inv @ a_u, dim1=-2, dim2=-1).sum(-1)
            + (mu.mT @ k_mm_inv @ mu).reshape(-1)
            - m
            + torch.logdet(k_mm)
            - torch.logdet(a_u)
        )
        return mean.to(out_dtype), var.clamp_min(1e-10).to(out_dtype), kl.to(out_dtype)

    # -- full-data posterior ----------------------------------------------------------------------
    @torch.no_grad()
    def fit_posterior(
        self, batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    ) -> None:
        """Condition the inducing posterior on all spots, accumulated chunk by chunk.

        With all ``N`` spots, ``N/b = 1``: ``B = I + Σ_chunks A V⁻¹ Aᵀ`` and
        ``m_w = B⁻¹ Σ_chunks A V⁻¹ y``. The result (``L_B`` and ``m_w``) is stored in buffers,
        so :meth:`predict` and a saved model use it. The sums are order-independent up to
        floating-point rounding.

        Parameters
        ----------
        batches
            Iterable of ``(x, y, v)`` chunks: ``b × d`` coordinates, ``b × L`` means and variances.
        """
        l_m = self._chol_mm()
        m = l_m.shape[0]
        # Accumulate in float64: the sum runs over all N spots.
        gram = torch.zeros(self.n_latent, m, m, dtype=torch.float64, device=l_m.device)
        rhs = torch.zeros(self.n_latent, m, 1, dtype=torch.float64, device=l_m.device)
        for x, y, v in batches:
            a = torch.linalg.solve_triangular(l_m, self._k(self.inducing_points, x), upper=False)
            a_v = a.unsqueeze(0) / v.T.unsqueeze(1)
            gram += (a_v @ a.T).double()
            rhs += (a_v @ y.T.unsqueeze(-1)).double()
        gram += torch.eye(m, dtype=torch.float64, device=l_m.device)
        l_b = torch.linalg.cholesky(gram)
        m_w = torch.cholesky_solve(rhs, l_b).squeeze(-1)
        self.posterior_chol.copy_(l_b.to(self.posterior_chol.dtype))
        self.posterior_mean.copy_(m_w.to(self.posterior_mean.dtype))
        self.has_posterior.fill_(True)

    def clear_posterior(self) -> None:
        """Forget the stored full-data posterior (e.g. before training again)."""
        self.has_posterior.fill_(False)

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and variance (``b × L``) at coordinates ``x`` under the stored posterior.

        Raises
        ------
        RuntimeError
            If :meth:`fit_posterior` has not been called.
        """
        if not bool(self.has_posterior):
            raise RuntimeError(
                "No full-data GP posterior stored; call `fit_posterior` (SpaVAE.train does) first."
            )
        a, k_diag = self._whiten(x)
        mean = (self.posterior_mean @ a).T
        c = torch.linalg.solve_triangular(
            self.posterior_chol, a.unsqueeze(0).expand(self.n_latent, -1, -1), upper=False
        )
        var = k_diag.unsqueeze(-1) - (a * a).sum(0).unsqueeze(-1) + (c * c).sum(1).T
        return mean, var.clamp_min(1e-10)

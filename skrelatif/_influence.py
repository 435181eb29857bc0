"""The core: influence of every training example of one fitted model.

Everything that is not model-specific lives here, over what an adapter
(:mod:`skrelatif._adapters`) declares. With ``ĝ_i = d_i ⊗ df_i/dtheta`` the
training gradient's direction (``d_i`` the unit direction of ``dl/df``, so
``g_i = ν_i ĝ_i`` with ``ν_i = ||dl/df||``), ``c`` the objective's constant
and ``s_i`` the example's weight, every score factorises as ::

    score[t, i] = cross(t, i) * train_scale[i],   cross(t, i) = g_t^T H^-1 ĝ_i

    "if"             train_scale[i] = c s_i ν_i          (c s_i g_t^T H^-1 g_i)
    "theta-relatif"  train_scale[i] = 1 / ||H^-1 ĝ_i||   (g_t^T H^-1 g_i / ||H^-1 g_i||)
    "l-relatif"      train_scale[i] = 1 / sqrt(ĝ_i^T H^-1 ĝ_i)

``"newton"`` is not linear in the test gradient: its score is the test loss
after one Newton step of the leave-one-out objective minus the loss before
(:mod:`skrelatif._removal`), and ``train_scale`` is 1.

so RelatIF depends on ``g_i`` only through its direction and stays finite for
examples fitted with near certainty (``ν_i`` underflowing); an example whose
direction is zero scores 0. ``self_influence[i] = c s_i ν_i^2 ĝ_i^T H^-1 ĝ_i``.
For ``"if"`` neither the normalisers nor the self-influence are needed: they
are computed on first access of ``self_influence_``.

Kernel machines (``adapter.kernel_space``) have ``H = I`` in the kernel's
feature space: ``cross`` is the adapter's kernel product ``g_t^T g_i`` and
RelatIF divides it by ``sqrt(|g_i^T g_i|)`` (absolute value: a kernel that is
not positive semi-definite can make it negative).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from ._removal import newton as _newton
from ._solvers import SOLVERS
from ._utils import blas_threads, chunk_slices, log, parallel_chunks

#: Relative size of the training objective's gradient above which the model is
#: reported as not being at a minimum (see :meth:`Influence.optimality_gap_`).
OPTIMALITY_TOLERANCE = 1e-2


def check_options(
    adapter_class, method: str, hessian: str, damping: float, options, name: str
) -> None:
    """Raise ``ValueError`` when ``method``, ``hessian``, ``damping`` or
    ``hessian_options`` do not apply to the adapter's family (before any work
    is done); ``name`` is the estimator's class name."""
    if method == "newton" and hessian == "identity":
        raise ValueError(
            "method='newton' needs the model's curvature: with hessian='identity' "
            "its leave-one-out step is meaningless. Use hessian='exact' (or "
            "'block-diagonal' for many classes); 'cg' works but needs one solve "
            "per training example and output."
        )
    if method == "newton" and adapter_class.kernel_space:
        raise ValueError(
            f"method='newton' needs the curvature of the model's loss; {name} has "
            "a hinge loss (no curvature). Use 'if', 'theta-relatif' or "
            "'l-relatif'."
        )
    if hessian not in adapter_class.hessians:
        raise ValueError(
            f"hessian={hessian!r} does not apply to {name}; use one of "
            f"{list(adapter_class.hessians)}. {adapter_class.hessian_note}".rstrip()
        )
    if damping != 0 and not adapter_class.accepts_damping:
        raise ValueError(
            f"damping={damping!r} does not apply to {name}. "
            f"{adapter_class.hessian_note} Leave damping=0.".replace("  ", " ")
        )
    SOLVERS[hessian].check_options(options, hessian)


def _direction_zero(divisor: np.ndarray) -> np.ndarray:
    """``1 / divisor``, and 0 where the divisor is 0 (a zero gradient direction)."""
    return np.divide(1.0, divisor, out=np.zeros_like(divisor), where=divisor > 0)


def _quad_norms_chunk(X, direction, adapter, solver, norms):
    X = X.astype(solver.compute_dtype, copy=False)
    G = adapter.gradients(X, direction.astype(X.dtype, copy=False))
    return solver.quad_norms(G, norms=norms)


class Influence:
    """Influence state of one fitted model on its training data.

    Parameters
    ----------
    adapter : ModelAdapter
        The model's mathematics.
    method, hessian, damping, hessian_options, n_jobs, random_state, verbose
        As in :class:`~skrelatif.InfluenceExplainer` (already validated).
    """

    def __init__(
        self,
        adapter,
        *,
        method: str,
        hessian: str,
        damping: float,
        hessian_options: dict | None,
        n_jobs: int | None,
        random_state: Any = None,
        verbose: int = 0,
    ) -> None:
        self.adapter = adapter
        self.method = method
        self.hessian = hessian
        self.damping = damping
        self.hessian_options = hessian_options
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # -- training side -----------------------------------------------------------------
    def fit(self, X: Any, y_encoded: np.ndarray, sample_weight) -> Influence:
        adapter = self.adapter
        adapter.check_training_data(X, y_encoded)
        self.X_, self.y_ = X, y_encoded
        self.n_train_ = X.shape[0]
        self.sample_weight_ = adapter.sample_weights(y_encoded, sample_weight)
        self.weights_ = adapter.loss_scale * self.sample_weight_  # c s_i
        self.candidates_ = adapter.candidates(X, y_encoded, sample_weight)
        shares = adapter.penalty_shares(y_encoded, sample_weight)
        self.penalty_share_ = np.zeros(self.n_train_) if shares is None else shares
        self._self_influence = None
        if adapter.kernel_space:
            return self._fit_kernel()
        with self._blas_threads():
            return self._fit_parametric(X, y_encoded)

    def _blas_threads(self):
        """The BLAS thread limit of the training-side work (``n P^2`` flops)."""
        return blas_threads(self.n_train_ * self.adapter.n_params**2)

    def _fit_parametric(self, X, y_encoded):
        adapter = self.adapter
        self.direction_, self.grad_norm_ = adapter.loss_gradients(X, y_encoded)
        self._check_optimality()
        start = time.perf_counter()
        self.solver_ = SOLVERS[self.hessian](
            self.damping,
            options=self.hessian_options,
            random_state=self.random_state,
            verbose=self.verbose,
        ).fit(
            adapter.hessian_operator(
                X,
                y_encoded,
                self.weights_,
                self.n_jobs,
                curvature="gauss-newton" if self.hessian == "gauss-newton" else "exact",
            )
        )
        log(
            self.verbose,
            1,
            f"{self.hessian} Hessian ready ({adapter.n_params} parameters, "
            f"{self.solver_.compute_dtype}) in {time.perf_counter() - start:.1f} s",
        )
        if self.method == "newton":
            self._newton_rows()
            self.train_scale_ = np.ones(self.n_train_)
        elif self.method == "if":
            self.train_scale_ = self.weights_ * self.grad_norm_
        else:
            quad, norm = self._normalisers(need_norms=self.method == "theta-relatif")
            self.train_scale_ = _direction_zero(
                np.sqrt(quad) if self.method == "l-relatif" else norm
            )
        return self

    def _fit_kernel(self):
        adapter, rows = self.adapter, self.candidates_
        sq_norms = adapter.kernel_norms(self.X_, rows)  # g_i^T g_i
        self._self_influence = np.zeros(self.n_train_)
        self._self_influence[rows] = sq_norms
        self.train_scale_ = np.zeros(self.n_train_)
        self.train_scale_[rows] = (
            1.0 if self.method == "if" else _direction_zero(np.sqrt(np.abs(sq_norms)))
        )
        return self

    def _normalisers(self, need_norms: bool):
        """``q_i = ĝ_i^T H^-1 ĝ_i`` (and ``||H^-1 ĝ_i||`` if ``need_norms``) of
        every training example; sets the self-influence ``c s_i ν_i^2 q_i``."""
        start = time.perf_counter()
        dtype = self.solver_.compute_dtype
        n_params = self.adapter.n_params
        # An iterative solver runs here, on as many examples at once as its
        # workspace allows: each of its iterations is one pass over the
        # training set, itself dispatched in about n_jobs tasks.
        iterative = self.solver_.iterative
        row_bytes = 8 * self.solver_.workspace if iterative else dtype.itemsize * 2
        chunks = chunk_slices(self.n_train_, row_bytes * n_params)
        results = parallel_chunks(
            _quad_norms_chunk,
            (self.X_, self.direction_),
            (self.adapter, self.solver_, need_norms),
            chunks,
            n_jobs=1 if iterative else self.n_jobs,
        )
        quad = np.concatenate([q for q, _ in results])
        norm = np.concatenate([n for _, n in results]) if need_norms else None
        log(
            self.verbose,
            1,
            f"normalisers of {self.n_train_} examples in "
            f"{time.perf_counter() - start:.1f} s ({len(chunks)} chunks)",
        )
        self._self_influence = self.weights_ * self.grad_norm_**2 * quad
        return quad, norm

    @property
    def self_influence_(self) -> np.ndarray:
        """``c s_i g_i^T H^-1 g_i`` (``"newton"``: the Newton leave-one-out change
        of each example's own loss); computed on first use for ``"if"``."""
        if self.method == "newton":
            return self.loo_loss_ - self.adapter.losses(self.X_, self.y_)
        if self._self_influence is None:
            with self._blas_threads():
                self._normalisers(need_norms=False)
        return self._self_influence

    def _newton_rows(self) -> None:
        """``u_i`` of the Newton leave-one-out step and the loss of each example
        after it (see :mod:`skrelatif._removal`)."""
        start = time.perf_counter()
        adapter = self.adapter
        row_bytes = 8 * 3 * adapter.n_outputs * adapter.n_params
        self.newton_u_, self._loo_loss = _newton.newton_rows(
            adapter,
            self.solver_,
            self.X_,
            self.y_,
            self.weights_,
            self.penalty_share_,
            self.penalty_z_,
            row_bytes,
        )
        log(
            self.verbose,
            1,
            f"Newton leave-one-out steps of {self.n_train_} examples in "
            f"{time.perf_counter() - start:.1f} s",
        )

    @property
    def exact_solver_(self):
        """The exact ``H^-1`` of the model's objective at the fitted parameters
        when the explainer already has it (``hessian="exact"``, no damping,
        float64), else None."""
        solver = getattr(self, "solver_", None)
        exact = self.hessian == "exact" and self.damping == 0
        if exact and solver is not None and solver.compute_dtype == np.float64:
            return solver
        return None

    @property
    def penalty_z_(self) -> np.ndarray:
        """``H^-1 p theta*`` (see :mod:`skrelatif._removal`), zeros when no
        example's removal renormalises the penalty."""
        if getattr(self, "_penalty_z", None) is None:
            if np.any(self.penalty_share_):
                self._penalty_z = _newton.penalty_direction(self.adapter, self.solver_)
            else:
                self._penalty_z = np.zeros(self.adapter.n_params)
        return self._penalty_z

    @property
    def loo_loss_(self) -> np.ndarray:
        """Each example's loss under the model refit without it (Newton step)."""
        if self.adapter.kernel_space:
            raise AttributeError(
                "loo_loss_ needs the curvature of the model's loss; kernel SVMs "
                "have a hinge loss."
            )
        if getattr(self, "_loo_loss", None) is None:
            self._newton_rows()
        return self._loo_loss

    def _check_optimality(self) -> None:
        """Warn when the model is not at a minimum of its objective on X, y.

        ``gap = ||dF/dtheta|| / (sum_i c s_i ||g_i|| + ||p theta||)``: the
        objective's gradient relative to a bound on the size of its terms.
        """
        adapter = self.adapter
        gradient, size = adapter.objective_gradient(self.X_, self.y_, self.weights_)
        self.optimality_gap_ = gap = np.linalg.norm(gradient) / max(size, 1e-300)
        separable = (
            not adapter.is_regressor
            and not np.any(adapter.penalty())
            and np.array_equal(adapter.predict_target(self.X_), self.y_)
        )
        name = type(adapter.estimator).__name__
        if separable:
            warnings.warn(
                f"The training data are separable by the {name} and it has no "
                "penalty, so its objective has no minimum (the weights grow "
                "without bound and every gradient tends to 0) and influence "
                "scores are not defined. Refit it with a penalty (a finite C or "
                "alpha > 0).",
                UserWarning,
                stacklevel=6,
            )
        elif gap > OPTIMALITY_TOLERANCE:
            warnings.warn(
                f"{name} is not at a minimum of its training objective on the X, y "
                f"(and sample_weight) given to fit: the objective's gradient is "
                f"{gap:.1%} of its size. Influence scores assume a model trained to "
                "convergence on exactly these data; check that they are the "
                f"training data, or {adapter.convergence_advice}.",
                UserWarning,
                stacklevel=6,
            )

    # -- test side ---------------------------------------------------------------------
    def test_gradients(self, X: Any, y_encoded: np.ndarray | None) -> np.ndarray:
        """Dense test gradients ``g_t`` (n_test, P); ``y_encoded=None`` (regressors):
        minus the gradient of the prediction."""
        adapter = self.adapter
        if y_encoded is None:
            direction, norm = adapter.prediction_gradients(X)
        else:
            direction, norm = adapter.loss_gradients(X, y_encoded)
        return adapter.gradients(X.astype(np.float64), direction * norm[:, None])

    def prepare_test(self, X: Any, y_encoded: np.ndarray | None) -> Any:
        """Per test batch: ``H^-1 g_t`` (the "s_test" vectors), or the kernel
        adapter's test state."""
        if self.adapter.kernel_space:
            return self.adapter.kernel_test_state(X, y_encoded)
        if self.method == "newton":
            return _newton.newton_test_state(
                self.adapter, self.solver_, X, y_encoded, self.penalty_z_
            )
        solved = self.solver_.solve(self.test_gradients(X, y_encoded))
        return solved.astype(self.solver_.compute_dtype, copy=False)

    def train_chunk(self, rows: np.ndarray | slice) -> tuple:
        """Picklable payload of training ``rows`` for :meth:`cross`."""
        if self.adapter.kernel_space:
            return self.adapter.kernel_payload(self.X_, rows)
        X = self.X_[rows].astype(self.solver_.compute_dtype, copy=False)
        if self.method == "newton":
            return X, self.newton_u_[rows], self.penalty_share_[rows]
        return X, self.direction_[rows]

    @property
    def cross(self):
        """``cross(test_state, *payload)``: (n_test_batch, n_rows) of
        ``g_t^T H^-1 ĝ_i`` (a picklable bound method of the adapter)."""
        if self.adapter.kernel_space:
            return self.adapter.kernel_dots
        if self.method == "newton":
            return _newton.newton_cross
        return self.adapter.gradient_dots

    def test_row_bytes(self) -> int:
        if self.adapter.kernel_space:
            return self.adapter.test_row_bytes()
        outputs = self.adapter.n_outputs if self.method == "newton" else 1
        return 8 * self.solver_.workspace * self.adapter.n_params * outputs

    def cross_bytes_per_pair(self) -> int:
        if self.method == "newton":  # K shifts, moved outputs, losses
            return self.adapter.n_outputs * self.adapter.dot_bytes_per_pair() + 8 * (
                2 * self.adapter.n_outputs + 4
            )
        return self.adapter.dot_bytes_per_pair()

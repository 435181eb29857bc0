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

Models explained as a sum over training examples
(:class:`~skrelatif._adapters._base.SumAdapter`: kernel SVMs) have ``H = I``
in the space of that sum: ``cross`` is the adapter's product ``g_t^T g_i``
and RelatIF divides it by ``sqrt(|g_i^T g_i|)`` (absolute value: a kernel
that is not positive semi-definite can make it negative).

One class per protocol and method, chosen once (:func:`influence_class`):
:class:`SumInfluence`, :class:`FirstOrderInfluence` (``"if"`` and RelatIF)
and :class:`NewtonInfluence`; each answers what the streaming scorer
(:mod:`skrelatif._scoring`) asks: ``train_scale_``, ``candidates_``,
:meth:`prepare_test`, :meth:`train_chunk`, ``cross`` and the chunk sizes.
"""

from __future__ import annotations

import time
import warnings
from abc import ABC, abstractmethod
from dataclasses import replace
from typing import Any

import numpy as np

from . import _curvature
from ._adapters._base import ParametricAdapter
from ._removal import groups as _groups
from ._removal import newton as _newton
from ._solvers import (
    SOLVERS,
    CholeskyInverse,
    ConjugateGradientInverse,
    IdentityInverse,
    ProblemSize,
    SingularCurvatureError,
)
from ._solvers._auto import choose_solver
from ._solvers._pcg import Jacobi, preconditioned_cg, quad_bounds
from ._utils import (
    blas_threads,
    caller_stacklevel,
    chunk_slices,
    log,
    parallel_chunks,
)

#: Relative size of the training objective's gradient above which the model is
#: reported as not being at a minimum (see :meth:`Influence.optimality_gap_`).
OPTIMALITY_TOLERANCE = 1e-2
#: Training examples whose normalisers an approximate solver is checked on.
ERROR_SAMPLE = 16
#: Largest model whose approximate normalisers are checked against a dense
#: factorisation (larger ones: conjugate gradients to 1e-8).
DENSE_REFERENCE = 4000
#: Training gradients ``solver="auto"`` solves to measure an iterative solver.
PILOT = 8
#: Beyond ``DENSE_REFERENCE`` parameters, a Kronecker-factored solver's
#: normalisers are checked on this many examples against conjugate gradients
#: (Jacobi), to a relative residual of ``FACTORED_REFERENCE_TOL`` in at most
#: ``FACTORED_REFERENCE_ITER`` products, with rigorous bounds ...
FACTORED_ERROR_SAMPLE = 4
FACTORED_REFERENCE_TOL = 1e-4
FACTORED_REFERENCE_ITER = 100
#: ... and for at most this many times the seconds the solver took to fit
#: (and at least ``FACTORED_REFERENCE_SECONDS``): a check, not the main cost.
FACTORED_REFERENCE_SHARE = 1.0
FACTORED_REFERENCE_SECONDS = 10.0


def _direction_zero(divisor: np.ndarray) -> np.ndarray:
    """``1 / divisor``, and 0 where the divisor is 0 (a zero gradient direction)."""
    return np.divide(1.0, divisor, out=np.zeros_like(divisor), where=divisor > 0)


def _quad_norms_chunk(X, direction, adapter, solver, norms):
    X = X.astype(solver.compute_dtype, copy=False)
    direction = direction.astype(X.dtype, copy=False)
    if solver.layer_factored and hasattr(adapter, "layer_factors"):
        G = adapter.layer_factors(X, direction)  # no n x P rows
    else:
        G = adapter.gradients(X, direction)
    return solver.quad_norms(G, norms=norms)


class Influence(ABC):
    """Influence state of one fitted model on its training data (the base of
    the protocol classes).

    Parameters
    ----------
    adapter : ModelAdapter
        The model's mathematics.
    method : str
        The score.
    choice : CurvatureChoice
        The curvature, solver, damping and solver options, resolved before
        any work (:func:`skrelatif._curvature.resolve`).
    n_jobs, random_state, verbose
        As in :class:`~skrelatif.InfluenceExplainer` (already validated).

    Attributes
    ----------
    hessian_, solver_name_, damping_ : str, str or None, float
        What was used: the curvature, the solver (None: no inversion), the
        damping.
    solver_ : InverseHessian
        The fitted solver.
    normaliser_error_ : float or None
        An approximate solver's largest relative error of the method's
        normaliser on ``ERROR_SAMPLE`` training examples, against the exact
        inverse of the same curvature (a Cholesky factorisation up to
        ``DENSE_REFERENCE`` parameters, conjugate gradients to 1e-8 beyond;
        for a Kronecker-factored solver beyond ``DENSE_REFERENCE``, on
        ``FACTORED_ERROR_SAMPLE`` examples, conjugate gradients with a budget
        of products and seconds: the error over the rigorous bounds they
        give, an upper bound with a warning when they have not reached
        ``FACTORED_REFERENCE_TOL``); None for an exact solver, or when the
        curvature offers neither.
    """

    def __init__(
        self,
        adapter,
        *,
        method: str,
        choice: _curvature.CurvatureChoice,
        n_jobs: int | None,
        random_state: Any = None,
        verbose: int = 0,
    ) -> None:
        self.adapter = adapter
        self.method = method
        self.choice = choice
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # -- training side -----------------------------------------------------------------
    def fit(self, X: Any, y_encoded: np.ndarray, sample_weight) -> Influence:
        self.adapter = adapter = self.adapter.bind(X, y_encoded, sample_weight)
        self.X_, self.y_ = X, y_encoded
        self.n_train_ = adapter.n_train_
        self.sample_weight_ = adapter.sample_weight_
        self.candidates_ = adapter.candidates_
        #: parameters of a parametric model (0 for a sum over examples)
        self.n_params_ = getattr(adapter, "n_params", 0)
        self._self_influence = None
        return self._fit()

    @abstractmethod
    def _fit(self) -> Influence:
        """The protocol's training-side work (``self.adapter`` is bound)."""

    def check_removal(self, what: str) -> None:  # noqa: B027 - parametric: fine
        """Raise ``ValueError`` when ``what`` (a removal method) needs a
        curvature the model does not have."""

    @property
    @abstractmethod
    def self_influence_(self) -> np.ndarray:
        """Each training example's influence on its own loss."""

    @property
    def loo_loss_(self) -> np.ndarray:
        raise AttributeError(
            "loo_loss_ needs the curvature of the model's loss; "
            f"{type(self.adapter.estimator).__name__} has none "
            f"({self.adapter.curvature_note})."
        )

    # -- test side (what the scorer asks) --------------------------------------------
    @abstractmethod
    def prepare_test(self, X: Any, y_encoded: np.ndarray | None) -> Any:
        """Per test batch: its picklable state for :attr:`cross`."""

    @abstractmethod
    def train_chunk(self, rows: np.ndarray | slice) -> tuple:
        """Picklable payload of training ``rows`` for :attr:`cross`."""

    @property
    @abstractmethod
    def cross(self):
        """``cross(test_state, *payload)``: (n_test_batch, n_rows) products."""

    @abstractmethod
    def test_row_bytes(self) -> int:
        """Bytes of test state per test point (for chunking)."""

    def cross_bytes_per_pair(self) -> int:
        return self.adapter.dot_bytes_per_pair()


class SumInfluence(Influence):
    """A model whose output is a sum over training examples (see the module
    docstring and :class:`~skrelatif._adapters._base.SumAdapter`): the
    adapter's products and normalisers, no curvature choice; exact removal
    with the structure fixed where the family offers it (``"newton"``)."""

    def _fit(self):
        adapter = self.adapter
        self.hessian_, self.solver_name_ = self.choice.hessian, self.choice.solver
        self.damping_, self.normaliser_error_ = float(self.choice.damping), None
        self.train_scale_ = adapter.train_scale(self.method)
        self._self_influence = None
        return self

    @property
    def _removes(self) -> bool:
        return "newton" in self.adapter.methods

    def check_removal(self, what: str) -> None:
        name = type(self.adapter.estimator).__name__
        if self._removes and what == "flip_sets":
            raise ValueError(
                f"flip_sets is not offered for {name}: its removals keep the "
                "fitted structure, which a refit changes. Use predict_removal "
                "to see how removing groups moves its predictions."
            )
        if self._removes:
            return
        raise ValueError(
            f"{what} needs the curvature of the model's loss; "
            f"{type(self.adapter.estimator).__name__} has none "
            f"({self.adapter.curvature_note}). It supports the models with a "
            "smooth loss (see the Supported models page)."
        )

    @property
    def self_influence_(self) -> np.ndarray:
        """The ``"if"`` score of each example for itself; ``"newton"``: the
        rise of its own loss when it is removed."""
        if self._self_influence is None:
            if self.method == "newton":
                self._self_influence = self.loo_loss_ - self.adapter.losses(
                    self.X_, self.y_
                )
            else:
                self._self_influence = self.adapter.self_influence()
        return self._self_influence

    @property
    def loo_loss_(self) -> np.ndarray:
        """Each example's loss once it is removed, the structure fixed."""
        if not self._removes:
            return super().loo_loss_
        if getattr(self, "_loo_loss", None) is None:
            adapter = self.adapter
            self._loo_loss = adapter.output_losses(adapter.loo_outputs(), self.y_)
        return self._loo_loss

    def prepare_test(self, X, y_encoded):
        return self.adapter.test_state(X, y_encoded, self.method)

    def train_chunk(self, rows):
        return self.adapter.payload(rows, self.method)

    @property
    def cross(self):
        return self.adapter.cross_function(self.method)

    def test_row_bytes(self) -> int:
        return self.adapter.test_row_bytes()

    def predict_removal(self, X_test, y_test, groups, method, *, n_jobs=None):
        """(n_test, n_groups) changes of the test losses (regressors without
        ``y``: minus the change of the prediction) when each group is
        removed: exactly with the structure fixed (``"newton"``), or the sum
        of the group's ``"if"`` scores."""
        adapter = self.adapter
        if method != "newton":
            membership = np.zeros((self.n_train_, len(groups)))
            for j, group in enumerate(groups):
                np.add.at(membership[:, j], group, 1.0)
            scores = np.empty((X_test.shape[0], len(groups)))
            candidates = adapter._candidate_rows()
            scale = adapter.train_scale("if")
            cross = adapter.cross_function("if")
            for batch in chunk_slices(X_test.shape[0], 8 * len(groups)):
                state = adapter.test_state(X_test[batch], _part(y_test, batch), "if")
                scores[batch] = 0.0
                pair_bytes = (batch.stop - batch.start) * adapter.dot_bytes_per_pair()
                for chunk in chunk_slices(len(candidates), pair_bytes):
                    rows = candidates[chunk]
                    products = cross(state, *adapter.payload(rows, "if"))
                    scores[batch] += (products * scale[rows]) @ membership[rows]
            return scores
        n_groups, K = len(groups), adapter.n_outputs
        changes = np.empty((X_test.shape[0], n_groups))
        for batch in chunk_slices(X_test.shape[0], 8 * 2 * n_groups * K):
            X = X_test[batch]
            moved = adapter.removal_outputs(X, groups)  # (b, n_groups, K)
            now = adapter.outputs(X)
            if y_test is None:  # minus the change of the prediction
                changes[batch] = now[:, None, 0] - moved[:, :, 0]
                continue
            y = y_test[batch]
            after = adapter.output_losses(moved.reshape(-1, K), np.repeat(y, n_groups))
            before = adapter.output_losses(now, y)
            changes[batch] = after.reshape(len(y), n_groups) - before[:, None]
        return changes


def _part(y: np.ndarray | None, rows: slice) -> np.ndarray | None:
    return None if y is None else y[rows]


class FirstOrderInfluence(Influence):
    """A parametric model's ``"if"``, ``"theta-relatif"`` and ``"l-relatif"``
    scores (see the module docstring), and what removal needs."""

    def _fit(self):
        adapter = self.adapter
        self.weights_ = adapter.loss_scale * self.sample_weight_  # c s_i
        shares = adapter.penalty_shares()
        self.penalty_share_ = np.zeros(self.n_train_) if shares is None else shares
        with self._blas_threads():
            return self._fit_parametric(self.X_, self.y_)

    def _blas_threads(self):
        """The BLAS thread limit of the training-side work (``n P^2`` flops)."""
        return blas_threads(self.n_train_ * self.adapter.n_params**2)

    def _fit_parametric(self, X, y_encoded):
        adapter = self.adapter
        self.direction_, self.grad_norm_ = adapter.loss_gradients(X, y_encoded)
        self._check_optimality()
        start = time.perf_counter()
        self.hessian_ = self.choice.hessian
        self._operator = adapter.hessian_operator(
            X, y_encoded, self.weights_, self.n_jobs, curvature=self.hessian_
        )
        self.solver_name_ = self._solver_name(X)
        self.solver_ = self._fit_solver()
        self._solver_seconds = time.perf_counter() - start
        log(
            self.verbose,
            1,
            f"hessian={self.hessian_!r}, solver={self.solver_name_!r}, "
            f"damping={self.damping_:.3g}: ready ({adapter.n_params} parameters, "
            f"{self.solver_.compute_dtype}) in {time.perf_counter() - start:.1f} s",
        )
        self.normaliser_error_ = self._normaliser_error()
        self._fit_scale()
        return self

    def _fit_scale(self) -> None:
        """``train_scale_`` of the method (see the module docstring)."""
        if self.method == "if":
            self.train_scale_ = self.weights_ * self.grad_norm_
        else:
            quad, norm = self._normalisers(need_norms=self.method == "theta-relatif")
            self.train_scale_ = _direction_zero(
                np.sqrt(quad) if self.method == "l-relatif" else norm
            )

    def _solver_name(self, X) -> str | None:
        """The chosen solver; ``"auto"``: the cost model's choice."""
        if self.choice.solver != "auto" or self.hessian_ == "identity":
            return self.choice.solver
        adapter = self.adapter
        size = ProblemSize(
            n_train=self.n_train_,
            n_params=adapter.n_params,
            n_outputs=adapter.n_outputs,
            n_solves=_curvature.n_solves(self.method, self.n_train_, adapter.n_outputs),
            **adapter.curvature_costs(X, self.hessian_),
        )
        candidates = _curvature.candidates(type(adapter), self.hessian_)
        name, estimates = choose_solver(
            candidates,
            size,
            pilot=lambda solver: self._pilot(solver, size),
            check_seconds=lambda estimates: self._check_seconds(estimates, size),
        )
        for candidate, estimate in estimates.items():
            log(
                self.verbose,
                1,
                f"solver={candidate!r}: about {estimate.seconds:.3g} s, "
                f"{estimate.bytes / 2**20:.0f} MiB (estimated)"
                + (" <- chosen" if candidate == name else ""),
            )
        return name

    def _check_seconds(self, estimates, size: ProblemSize) -> float:
        """Estimated cost of :meth:`_normaliser_error`'s exact reference, from
        the exact solvers' estimates (measured where the choice matters)."""
        sample = min(ERROR_SAMPLE, self.n_train_)
        if "cholesky" in estimates and self.adapter.n_params <= DENSE_REFERENCE:
            # the factorisation, at the calibration of the full estimate
            full = CholeskyInverse.estimate(size).seconds
            few = CholeskyInverse.estimate(replace(size, n_solves=sample)).seconds
            return estimates["cholesky"].seconds * few / max(full, 1e-300)
        if "cg" in estimates:
            return estimates["cg"].seconds * sample / size.n_solves
        return 0.0

    def _pilot(self, solver_class, size: ProblemSize):
        """An iterative solver's cost measured by solving for ``PILOT``
        training gradients: ``n_solves`` times its time per right-hand side."""
        rows = np.linspace(0, self.n_train_ - 1, min(PILOT, self.n_train_)).astype(int)
        G = self.adapter.gradients(
            self.X_[rows].astype(np.float64, copy=False), self.direction_[rows]
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # not converging: slow
                solver = solver_class(
                    self._first_damping(), options=self.choice.options
                )
                start = time.perf_counter()
                solver.fit(self._operator)  # once (a preconditioner's block)
                fitted = time.perf_counter()
                solver.solve(G)
        except SingularCurvatureError:  # not measurable: its estimate stands
            return None
        per_solve = (time.perf_counter() - fitted) / len(rows)
        estimate = solver_class.estimate(size)
        return type(estimate)(
            fitted - start + size.n_solves * per_solve, estimate.bytes
        )

    def _fit_solver(self):
        """The fitted solver, with ``damping_`` resolved; a singular curvature
        raises with the family's advice, or, with ``damping="auto"`` on a
        convex objective, is damped by ``SINGULAR_DAMPING_FRACTION`` of its
        mean diagonal, with a warning."""
        operator, auto = self._operator, self.choice.damping == "auto"
        damping = self._first_damping()
        try:
            solver = self._new_solver(damping).fit(operator)
        except SingularCurvatureError as exc:
            if not (auto and damping == 0):
                raise exc.with_advice(self.adapter.singular_advice) from None
            damping = _curvature.SINGULAR_DAMPING_FRACTION * self._mean_diagonal()
            warnings.warn(
                f"The curvature of {type(self.adapter.estimator).__name__}'s "
                f"objective is singular on these data; damping='auto' adds "
                f"{damping:.3g} (1e-8 of its mean diagonal). Pass damping= to "
                "choose it.",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
            try:
                solver = self._new_solver(damping).fit(operator)
            except SingularCurvatureError as again:
                raise again.with_advice(self.adapter.singular_advice) from None
        self.damping_ = float(damping)
        return solver

    def _first_damping(self) -> float:
        """The damping tried first: the given one, or ``"auto"``'s (0 for a
        convex objective, ``DAMPING_FRACTION`` of the mean diagonal else)."""
        if self.choice.damping != "auto":
            return float(self.choice.damping)
        if self.adapter.convex or self.hessian_ == "identity":
            return 0.0
        return _curvature.DAMPING_FRACTION * self._mean_diagonal()

    def _mean_diagonal(self) -> float:
        """``trace(C) / P`` of the curvature (penalty included)."""
        return float(np.mean(self._operator.diagonal()))

    def _new_solver(self, damping: float):
        solver = SOLVERS.get(self.solver_name_, IdentityInverse)
        return solver(
            damping,
            options=self.choice.options,
            random_state=self.random_state,
            verbose=self.verbose,
        )

    def _normaliser_error(self) -> float | None:
        """See the class docstring: the relative error of the normaliser the
        method divides by (``"if"`` and ``"newton"``: of the self-influence)."""
        provides = type(self.adapter).curvatures.get(self.hessian_, frozenset())
        # the exact inverse: dense for a small model, else conjugate gradients
        # (preconditioned by a Kronecker-factored solver itself, on fewer rows)
        sample, factored = ERROR_SAMPLE, False
        if "dense" in provides and self.adapter.n_params <= DENSE_REFERENCE:
            reference = CholeskyInverse(self.damping_)
        elif "matvec" in provides and self.solver_.layer_factored:
            reference, sample, factored = None, FACTORED_ERROR_SAMPLE, True
        elif "matvec" in provides:
            reference = ConjugateGradientInverse(self.damping_, options={"tol": 1e-8})
        else:
            return None
        if self.solver_.exact:
            return None
        rng = np.random.RandomState(0)
        rows = np.sort(
            rng.choice(self.n_train_, min(sample, self.n_train_), replace=False)
        )
        G = self.adapter.gradients(
            self.X_[rows].astype(np.float64, copy=False), self.direction_[rows]
        )
        norms = self.method == "theta-relatif"
        approx = self.solver_.quad_norms(G.copy(), norms=norms)
        if factored:
            return self._bounded_error(np.array(G), approx, norms)
        exact = reference.fit(self._operator).quad_norms(G.copy(), norms=norms)
        if norms:
            exact, approx = exact[1], approx[1]
        elif self.method == "l-relatif":
            exact, approx = np.sqrt(exact[0]), np.sqrt(np.abs(approx[0]))
        else:
            exact, approx = exact[0], approx[0]
        keep = exact > 0
        if not np.any(keep):
            return 0.0
        return float(np.max(np.abs(approx[keep] - exact[keep]) / exact[keep]))

    def _bounded_error(self, G, approx, norms) -> float:
        """The normaliser error of a Kronecker-factored solver on a model too
        large for a dense reference: conjugate gradients (Jacobi) on the
        sample, stopped at ``FACTORED_REFERENCE_TOL``, after
        ``FACTORED_REFERENCE_ITER`` products or after
        ``FACTORED_REFERENCE_SHARE`` times the solver's fitting time (at
        least ``FACTORED_REFERENCE_SECONDS``), give rigorous bounds on each
        exact normaliser (:func:`~skrelatif._solvers._pcg.quad_bounds`, from
        ``damping_``, the smallest eigenvalue of the damped curvature); the
        error is the largest relative error over those bounds, exact once the
        reference has converged and an upper bound (with a warning) before."""
        start = time.perf_counter()
        operator, damping = self._operator, self.damping_
        solved, residual, iterations = preconditioned_cg(
            operator,
            damping,
            Jacobi(operator, damping),
            G,
            tol=FACTORED_REFERENCE_TOL,
            max_iter=FACTORED_REFERENCE_ITER,
            max_seconds=max(
                FACTORED_REFERENCE_SECONDS,
                FACTORED_REFERENCE_SHARE * getattr(self, "_solver_seconds", 0.0),
            ),
        )
        converged = bool(
            np.all(residual <= FACTORED_REFERENCE_TOL * np.linalg.norm(G, axis=1))
        )
        if damping > 0:
            low, high = quad_bounds(G, solved, residual, damping, norms=norms)
        else:  # no lower bound on the spectrum: the iterate itself
            low = high = quad_bounds(G, solved, 0 * residual, 1.0, norms=norms)[0]
        approx = approx[1] if norms else np.abs(approx[0])
        if self.method == "l-relatif":
            low, high, approx = np.sqrt(low), np.sqrt(high), np.sqrt(approx)
        keep = high > 0  # a zero gradient: no error
        if not np.any(keep):
            return 0.0
        low, high, approx = low[keep], high[keep], approx[keep]
        with np.errstate(divide="ignore"):  # low = 0: no bound (inf)
            error = np.maximum(np.abs(approx - low) / low, np.abs(approx - high) / high)
        log(
            self.verbose,
            1,
            f"normaliser_error_: {len(G)} reference solves, {iterations} conjugate-"
            f"gradient iterations, {time.perf_counter() - start:.1f} s",
        )
        if not converged:
            warnings.warn(
                f"normaliser_error_ ({error.max():.3g}) is an upper bound: its "
                f"reference (conjugate gradients on {len(G)} training examples) did "
                f"not reach a relative residual of {FACTORED_REFERENCE_TOL:g} in "
                f"{iterations} iterations.",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        return float(error.max())

    def _normalisers(self, need_norms: bool):
        """``q_i = ĝ_i^T H^-1 ĝ_i`` (and ``||H^-1 ĝ_i||`` if ``need_norms``) of
        every training example; sets the self-influence ``c s_i ν_i^2 q_i``."""
        start = time.perf_counter()
        training = getattr(self.solver_, "training_blocks", None)
        if training is not None and not need_norms:
            # q_i = d_i^T A_i d_i from every example's A_i = J_i H^-1 J_i^T
            quad = np.einsum(
                "ik,ikl,il->i", self.direction_, training(), self.direction_
            )
            quad = np.maximum(quad, 0.0)
            self._self_influence = self.weights_ * self.grad_norm_**2 * quad
            log(
                self.verbose,
                1,
                f"normalisers of {self.n_train_} examples in "
                f"{time.perf_counter() - start:.1f} s (training blocks)",
            )
            return quad, None
        dtype = self.solver_.compute_dtype
        n_params = self.adapter.n_params
        # An iterative solver runs here, on as many examples at once as its
        # workspace allows: each of its iterations is one pass over the
        # training set, itself dispatched in about n_jobs tasks.
        iterative = self.solver_.iterative
        row_bytes = 8 * self.solver_.workspace if iterative else dtype.itemsize * 2
        row_bytes *= n_params
        if self.solver_.layer_factored and hasattr(self.adapter, "layer_factors"):
            row_bytes = 8 * 4 * self.adapter.n_design_width()
        chunks = chunk_slices(self.n_train_, row_bytes)
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
        """``c s_i g_i^T H^-1 g_i``; computed on first use for ``"if"``."""
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
        when the explainer already has it (exact curvature factorised by
        Cholesky, no damping, float64), else None."""
        solver = getattr(self, "solver_", None)
        exact = (
            self.hessian_ == "exact"
            and self.solver_name_ == "cholesky"
            and self.damping_ == 0
        )
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
                stacklevel=caller_stacklevel(),
            )
        elif gap > OPTIMALITY_TOLERANCE:
            warnings.warn(
                f"{name} is not at a minimum of its training objective on the X, y "
                f"(and sample_weight) given to fit: the objective's gradient is "
                f"{gap:.1%} of its size. Influence scores assume a model trained to "
                "convergence on exactly these data; check that they are the "
                f"training data, or {adapter.convergence_advice}.",
                UserWarning,
                stacklevel=caller_stacklevel(),
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
        """Per test batch: ``H^-1 g_t`` (the "s_test" vectors); for a solver
        and model with a factored form, per layer a few outer products."""
        if self._factored:
            adapter = self.adapter
            if y_encoded is None:
                direction, norm = adapter.prediction_gradients(X)
            else:
                direction, norm = adapter.loss_gradients(X, y_encoded)
            factors = adapter.layer_factors(
                X.astype(np.float64), direction * norm[:, None]
            )
            return self.solver_.factored_test(factors.layer_factors)
        solved = self.solver_.solve(self.test_gradients(X, y_encoded))
        return solved.astype(self.solver_.compute_dtype, copy=False)

    @property
    def _factored(self) -> bool:
        """Whether the test side is factored (see :meth:`prepare_test`)."""
        return (
            self.solver_.factored_rank() > 0
            and hasattr(self.adapter, "factored_dots")
            and not isinstance(self, NewtonInfluence)
        )

    def train_chunk(self, rows: np.ndarray | slice) -> tuple:
        X = self.X_[rows].astype(self.solver_.compute_dtype, copy=False)
        return X, self.direction_[rows]

    @property
    def cross(self):
        """``g_t^T H^-1 ĝ_i`` (a picklable bound method of the adapter)."""
        if self._factored:
            return self.adapter.factored_dots
        return self.adapter.gradient_dots

    def predict_removal(self, X_test, y_test, groups, method, *, n_jobs=None):
        """(n_test, n_groups) predicted test-loss changes (see
        :mod:`skrelatif._removal.groups`)."""
        return _groups.predict_removal(
            self, X_test, y_test, groups, method, n_jobs=n_jobs
        )

    def test_row_bytes(self) -> int:
        if self._factored:
            rank = self.solver_.factored_rank()
            return 8 * 3 * rank * self.adapter.n_design_width()
        return 8 * self.solver_.workspace * self.adapter.n_params

    def cross_bytes_per_pair(self) -> int:
        if self._factored:
            return self.adapter.factored_bytes_per_pair(self.solver_.factored_rank())
        return super().cross_bytes_per_pair()


class NewtonInfluence(FirstOrderInfluence):
    """``"newton"``: the change of the test loss after one Newton step of
    the leave-one-out objective (:mod:`skrelatif._newton`); ``train_scale``
    is 1 and the self-influence is the Newton leave-one-out change of each
    example's own loss."""

    def _fit_scale(self) -> None:
        self._newton_rows()
        self.train_scale_ = np.ones(self.n_train_)

    @property
    def self_influence_(self) -> np.ndarray:
        return self.loo_loss_ - self.adapter.losses(self.X_, self.y_)

    def prepare_test(self, X, y_encoded):
        return _newton.newton_test_state(
            self.adapter, self.solver_, X, y_encoded, self.penalty_z_
        )

    def train_chunk(self, rows):
        X = self.X_[rows].astype(self.solver_.compute_dtype, copy=False)
        return X, self.newton_u_[rows], self.penalty_share_[rows]

    @property
    def cross(self):
        return _newton.newton_cross

    def test_row_bytes(self) -> int:
        return super().test_row_bytes() * self.adapter.n_outputs

    def cross_bytes_per_pair(self) -> int:  # K shifts, moved outputs, losses
        K = self.adapter.n_outputs
        return K * self.adapter.dot_bytes_per_pair() + 8 * (2 * K + 4)


def influence_class(adapter_class: type, method: str) -> type[Influence]:
    """The class that computes ``method`` for the adapter's protocol."""
    if not issubclass(adapter_class, ParametricAdapter):
        return SumInfluence
    return NewtonInfluence if method == "newton" else FirstOrderInfluence

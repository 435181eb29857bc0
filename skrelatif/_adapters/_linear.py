"""Influence machinery shared by linear models with a twice-differentiable loss.

For ``f = W x + b`` (W of shape (n_outputs, n_features)) the gradient of an
example's loss with respect to ``theta = [W | b]`` is the outer product ::

    g_i = r_i ⊗ x̃_i,   r_i = dl/df (n_outputs,),   x̃_i = [x_i, 1]

and its Hessian is ``D_i ⊗ x̃_i x̃_i^T`` with ``D_i = d²l/df²``. Every quantity
below is computed from these factors in chunks of rows, so that no n x P
gradient matrix is ever held in memory: the Hessian from per-class
``X̃^T diag(w) X̃`` blocks, and test/train inner products as
``g_t^T H^-1 g_i = sum_k r_ik (X̃ S_t^T)_ik`` with ``S_t = H^-1 g_t`` reshaped to
(n_outputs, n_features + 1).

A subclass provides the loss: :meth:`residuals`, :meth:`curvature`,
:meth:`losses`, and the fitted parameters.
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from typing import Any

import numpy as np
from scipy import sparse

from .._solvers import SOLVERS
from .._utils import chunk_slices, parallel_map
from ._base import ModelAdapter

#: Relative size of the training objective's gradient above which the model is
#: reported as not being at a minimum (see ``LinearModelAdapter.optimality_gap``).
OPTIMALITY_TOLERANCE = 1e-2


def add_intercept_column(X: Any, fit_intercept: bool) -> Any:
    """``X̃ = [X, 1]`` (dense or CSR) when the model has an intercept."""
    if not fit_intercept:
        return X
    ones = np.ones((X.shape[0], 1), dtype=X.dtype)
    if sparse.issparse(X):
        return sparse.hstack([X, ones], format="csr")
    return np.hstack([X, ones])


def outer_rows(residuals: np.ndarray, design: Any) -> np.ndarray:
    """Gradients ``r_i ⊗ x̃_i`` as rows of a dense (n, n_outputs * n_design) array."""
    if sparse.issparse(design):
        design = design.toarray()
    n_rows = design.shape[0]
    return (residuals[:, :, None] * design[:, None, :]).reshape(n_rows, -1)


def _scale_rows(X: Any, factor: np.ndarray) -> Any:
    if sparse.issparse(X):
        return sparse.csr_matrix(X.multiply(factor[:, None]))
    return X * factor[:, None]


def _gram(X: Any) -> np.ndarray:
    gram = X.T @ X if sparse.issparse(X) else np.dot(X.T, X)  # np.dot -> syrk
    return gram.toarray() if sparse.issparse(gram) else gram


def _hessian_chunk(design, weights, diag_curv, rank_curv):
    """``sum_i w_i (diag(a_i) - b_i b_i^T) ⊗ x̃_i x̃_i^T`` over one chunk of rows."""
    n_outputs, n_design = diag_curv.shape[1], design.shape[1]
    hessian = np.zeros((n_outputs * n_design,) * 2)
    for k in range(n_outputs):
        block = slice(k * n_design, (k + 1) * n_design)
        hessian[block, block] = _gram(_scale_rows(design, np.sqrt(weights * diag_curv[:, k])))
    if rank_curv is not None:
        root = np.sqrt(weights)[:, None] * rank_curv
        stacked = [_scale_rows(design, root[:, k]) for k in range(n_outputs)]
        stacked = (
            sparse.hstack(stacked, format="csr")
            if sparse.issparse(design)
            else np.hstack(stacked)
        )
        hessian -= _gram(stacked)
    return hessian


def _gradient_sum_chunk(design, weighted_residuals):
    """``sum_i r_i ⊗ x̃_i`` (weighted) over one chunk, shape (n_outputs, n_design)."""
    return np.asarray((design.T @ weighted_residuals).T)


def _normaliser_chunk(solver, design, resid_dir, norms):
    return solver.quad_norms(outer_rows(resid_dir, design), norms=norms)


class _DenseHessian:
    """The Hessian operator handed to the solvers (see :mod:`skrelatif._solvers`)."""

    def __init__(self, adapter: LinearModelAdapter) -> None:
        self.adapter = adapter
        self.n_params = adapter.n_params
        self.null_space = adapter.null_space()

    def dense(self) -> np.ndarray:
        return self.adapter.hessian()


class LinearModelAdapter(ModelAdapter):
    """Base class of the adapters of linear models (see the module docstring)."""

    hessian_options = tuple(SOLVERS)

    # -- what a subclass provides ---------------------------------------------------
    @property
    @abstractmethod
    def coef(self) -> np.ndarray:
        """Weights W, shape (n_outputs, n_features)."""

    @property
    @abstractmethod
    def intercept(self) -> np.ndarray:
        """Intercepts b, shape (n_outputs,) (zeros without an intercept)."""

    @property
    @abstractmethod
    def fit_intercept(self) -> bool: ...

    @property
    @abstractmethod
    def inverse_penalty(self) -> float:
        """``C`` of ``F = C sum_i s_i l_i + 1/2 theta^T diag(penalty) theta``;
        ``np.inf`` for no penalty (then ``F = sum_i s_i l_i``)."""

    #: Penalty weight on the intercept (0: not penalised).
    intercept_penalty: float = 0.0
    #: True when the loss is invariant to adding a constant to all outputs (softmax).
    shift_invariant: bool = False

    @abstractmethod
    def residuals(self, F: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``dl/df`` as (unit direction (n, n_outputs), norm (n,)), without cancellation."""

    @abstractmethod
    def curvature(self, F: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``d²l/df² = diag(a) - b b^T`` as (a, b); ``b`` is None when zero."""

    @abstractmethod
    def losses(self, F: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-example loss ``l(y_i, f_i)``."""

    @abstractmethod
    def predict_from_decision(self, F: np.ndarray) -> np.ndarray: ...

    # -- shared machinery -------------------------------------------------------------
    @property
    def n_outputs(self) -> int:
        return self.coef.shape[0]

    @property
    def n_design(self) -> int:
        return self.coef.shape[1] + int(self.fit_intercept)

    @property
    def n_params(self) -> int:
        return self.n_outputs * self.n_design

    @property
    def params(self) -> np.ndarray:
        """theta as (n_outputs, n_design): ``[W | b]``."""
        if self.fit_intercept:
            return np.column_stack([self.coef, self.intercept])
        return np.asarray(self.coef, dtype=float)

    @property
    def _loss_scale(self) -> float:
        """The factor C in front of the data term (1 without a penalty)."""
        C = self.inverse_penalty
        return 1.0 if np.isinf(C) else float(C)

    def penalty_diag(self) -> np.ndarray:
        """Diagonal of the penalty's Hessian divided by C, per parameter."""
        if np.isinf(self.inverse_penalty):
            return np.zeros(self.n_params)
        per_output = np.ones(self.n_design)
        if self.fit_intercept:
            per_output[-1] = self.intercept_penalty
        return np.tile(per_output, self.n_outputs) / self.inverse_penalty

    def null_space(self) -> np.ndarray | None:
        """Directions ``1_K ⊗ e_j / sqrt(K)`` for every unpenalised input j of a
        shift-invariant loss: the loss is flat along them and every gradient is
        orthogonal to them (its outputs' residuals sum to zero)."""
        if not self.shift_invariant:
            return None
        unpenalised = np.flatnonzero(self.penalty_diag()[: self.n_design] == 0)
        if unpenalised.size == 0:
            return None
        K = self.n_outputs
        basis = np.zeros((K, self.n_design, unpenalised.size))
        basis[:, unpenalised, np.arange(unpenalised.size)] = 1.0 / np.sqrt(K)
        return basis.reshape(self.n_params, -1)

    def design(self, X: Any) -> Any:
        return add_intercept_column(X, self.fit_intercept)

    def decision(self, X: Any) -> np.ndarray:
        return np.asarray(X @ self.coef.T) + self.intercept

    def predict_encoded(self, X: Any) -> np.ndarray:
        return self.predict_from_decision(self.decision(X))

    def _row_chunks(self, row_bytes: int) -> list[slice]:
        return chunk_slices(self.n_train_, row_bytes)

    def fit(self, X, y_encoded, sample_weight, *, method, hessian, damping, n_jobs, verbose):
        self.X_ = X
        self.n_train_ = X.shape[0]
        self.n_jobs = n_jobs
        self.sample_weight_ = (
            np.ones(self.n_train_) if sample_weight is None else sample_weight
        )
        F = self.decision(X)
        self.resid_dir_, self.resid_norm_ = self.residuals(F, y_encoded)
        self._curvature = self.curvature(F)
        self._check_optimality()

        self.solver_ = SOLVERS[hessian](damping).fit(_DenseHessian(self))
        del self._curvature

        # q_i = ĝ_i^T H^-1 ĝ_i, and ||H^-1 ĝ_i|| when theta-RelatIF needs it.
        need_norms = method == "theta-relatif"
        chunks = self._row_chunks(8 * 2 * self.n_params)
        results = list(  # read twice below (a generator would be empty the 2nd time)
            parallel_map(
                _normaliser_chunk,
                (
                    (
                        self.solver_,
                        self.design(X[rows]),
                        self.resid_dir_[rows],
                        need_norms,
                    )
                    for rows in chunks
                ),
                n_jobs=n_jobs,
            )
        )
        quad = np.concatenate([q for q, _ in results])
        scale = self._loss_scale * self.sample_weight_ * self.resid_norm_
        self.self_influence_ = scale * self.resid_norm_ * quad
        if method == "if":
            self.train_scale_ = scale
        else:
            norm = (
                np.concatenate([n for _, n in results]) if need_norms else np.sqrt(quad)
            )
            # An example whose gradient direction is zero (x̃_i = 0) scores 0.
            self.train_scale_ = np.divide(
                1.0, norm, out=np.zeros_like(norm), where=norm > 0
            )
        self.candidates_ = None
        return self

    def hessian(self) -> np.ndarray:
        """Dense Hessian of the training objective divided by nothing:
        ``C sum_i s_i D_i ⊗ x̃_i x̃_i^T + C diag(penalty_diag)``."""
        diag_curv, rank_curv = self._curvature
        n_rows_bytes = 8 * (self.n_params + self.n_design)
        chunks = self._row_chunks(n_rows_bytes)
        hessian = None
        for part in parallel_map(
            _hessian_chunk,
            (
                (
                    self.design(self.X_[rows]),
                    self.sample_weight_[rows],
                    diag_curv[rows],
                    None if rank_curv is None else rank_curv[rows],
                )
                for rows in chunks
            ),
            n_jobs=self.n_jobs,
        ):
            hessian = part if hessian is None else hessian + part
        hessian *= self._loss_scale
        hessian.flat[:: self.n_params + 1] += self._loss_scale * self.penalty_diag()
        return hessian

    def objective_gradient(self) -> np.ndarray:
        """``dF/dtheta`` at the fitted parameters, shape (n_outputs, n_design)."""
        weighted = (
            self.sample_weight_[:, None] * self.resid_dir_ * self.resid_norm_[:, None]
        )
        grad = sum(
            parallel_map(
                _gradient_sum_chunk,
                (
                    (self.design(self.X_[rows]), weighted[rows])
                    for rows in self._row_chunks(8 * self.n_design)
                ),
                n_jobs=self.n_jobs,
            )
        )
        penalty = self.penalty_diag().reshape(self.n_outputs, self.n_design)
        return self._loss_scale * (grad + penalty * self.params)

    def optimality_gap(self) -> float:
        """``||dF/dtheta||`` relative to the size of its two terms (0 at a minimum).

        The denominator bounds the norm of ``C sum_i s_i g_i`` by the triangle
        inequality, ``C sum_i s_i ||r_i|| ||x̃_i||``, plus ``||C penalty * theta||``.
        """
        row_norms = np.sqrt(
            np.asarray(
                self.X_.multiply(self.X_).sum(axis=1)
                if sparse.issparse(self.X_)
                else np.einsum("ij,ij->i", self.X_, self.X_)
            ).ravel()
            + float(self.fit_intercept)
        )
        data_size = np.sum(self.sample_weight_ * self.resid_norm_ * row_norms)
        penalty = self.penalty_diag().reshape(self.n_outputs, self.n_design)
        size = self._loss_scale * (data_size + np.linalg.norm(penalty * self.params))
        return float(np.linalg.norm(self.objective_gradient()) / max(size, 1e-300))

    def _check_optimality(self) -> None:
        gap = self.optimality_gap()
        self.optimality_gap_ = gap
        if gap > OPTIMALITY_TOLERANCE:
            warnings.warn(
                f"{type(self.estimator).__name__} is not at a minimum of its training "
                f"objective on the X, y (and sample_weight) given to fit: the "
                f"objective's gradient is {gap:.1%} of its size. Influence scores "
                "assume a model trained to convergence on exactly these data; check "
                "that they are the training data, or refit with a smaller tol or a "
                "larger max_iter.",
                UserWarning,
                stacklevel=5,
            )

    # -- test side ---------------------------------------------------------------------
    def prepare_test(self, X, y_encoded):
        direction, norm = self.residuals(self.decision(X), y_encoded)
        test_grads = outer_rows(direction * norm[:, None], self.design(X))
        s_test = self.solver_.solve(test_grads)  # rows: H^-1 g_t
        return s_test.reshape(-1, self.n_design)  # (n_test * n_outputs, n_design)

    def train_chunk(self, rows):
        return self.design(self.X_[rows]), self.resid_dir_[rows]

    @staticmethod
    def cross(s_test, design, resid_dir):
        n_rows, n_outputs = resid_dir.shape
        # (X̃ S^T)[i, t, k] = x̃_i . (H^-1 g_t)_k ; contract k with ĝ_i's residual.
        products = np.asarray(design @ s_test.T).reshape(n_rows, -1, n_outputs)
        return np.einsum("itk,ik->ti", products, resid_dir)

    def test_row_bytes(self) -> int:
        return 8 * 3 * self.n_params

    def cross_bytes_per_pair(self) -> int:
        return 8 * (self.n_outputs + 1)

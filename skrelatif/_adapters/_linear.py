"""The adapter base class of linear models with a twice-differentiable loss.

For ``f = W x + b`` (W of shape (n_outputs, n_features)) the gradient of an
example's loss with respect to ``theta = [W | b]`` is the outer product ::

    g_i = r_i ⊗ x̃_i,   r_i = dl/df (n_outputs,),   x̃_i = [x_i, 1]

and its Hessian is ``D_i ⊗ x̃_i x̃_i^T`` with ``D_i = d²l/df² = diag(a_i) - b_i b_i^T``
(assembled, multiplied and inverted through
:class:`~skrelatif._adapters._linear_curvature.LinearHessian`, whose module
derives it). Every quantity below is computed from these factors in chunks of
rows, so no n x P gradient matrix is ever held in memory:

- the objective's gradient ``sum_i w_i r_i ⊗ x̃_i + penalty ∘ theta``: one
  product ``X^T (w r)`` per chunk, the intercept's entries being the column
  sums of ``w r`` (no copy of X with its column of ones);
- test/train products ``g_t^T H^-1 g_i = sum_k r_ik (X̃ S_t^T)_ik`` with
  ``S_t = H^-1 g_t`` reshaped to (K, d).

A subclass provides the parameters (``coef``, ``intercept``, the penalty) and
the loss as a function of the outputs ``F`` (n, K): :meth:`output_gradients`,
:meth:`output_curvature`, :meth:`output_losses`.

Decomposition (representer theorem)
-----------------------------------
At a minimum of ``F(theta) = c sum_i s_i l_i + 1/2 theta^T diag(p) theta``
the gradient vanishes: for every penalised entry (``p_kj > 0``) ::

    theta_kj = -(1 / p_kj) sum_i c s_i r_ik x̃_ij,    r_ik = dl_i/df_k

so the decision function is a sum over training examples (Yeh et al. 2018,
"Representer point selection") plus the unpenalised part, the intercept ::

    f_k(x) = b_k + sum_i alpha_ik sum_j x̃_ij x̃_j / p_kj,   alpha_ik = -c s_i r_ik

(the sum over penalised ``j`` only; liblinear's penalised intercept counts
as a constant feature). :meth:`decompose` returns these terms, shape
(n_test, n_train) for one output and (n_test, n_train, K) for several, and
``baseline_`` the intercepts (0 when penalised or absent). They sum to the
decision function exactly at the minimum, i.e. to the optimisation's
precision (``"newton-cholesky"`` or a tight ``tol`` reaches 1e-10; a solver
stopped early gives a warning with the measured gap). A model with an
unpenalised weight (no penalty at all: ``LinearRegression``, ``alpha=0``,
``C=np.inf``) has no such decomposition: a clear error.
"""

from __future__ import annotations

import copy
import warnings
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
from scipy import sparse
from scipy.linalg import blas
from sklearn.utils.extmath import row_norms

from .._utils import caller_stacklevel, chunk_slices, outer_rows, transposed
from ._base import ParametricAdapter
from ._linear_curvature import LinearHessian, add_intercept_column

#: Relative gap between the weights and their representer sum above which
#: :meth:`LinearModelAdapter.decompose` warns.
REPRESENTER_TOLERANCE = 1e-8


def _gradient_sum_chunk(design, weighted_residuals):
    """``sum_i r_i ⊗ x̃_i`` (weighted) over one chunk, shape (n_outputs, n_design)."""
    return np.asarray(design.T @ weighted_residuals).T


class LinearModelAdapter(ParametricAdapter):
    """Base class of the adapters of linear models ``f = W x + b``.

    See the module docstring for the gradient and Hessian structure. A
    subclass provides the parameters and the loss as a function of ``F``.
    """

    # the losses are GLM losses of outputs linear in theta: the Gauss-Newton
    # matrix is the Hessian
    curvatures = dict.fromkeys(
        ("exact", "gauss-newton"),
        frozenset(
            {
                "dense",
                "diagonal",
                "diagonal_blocks",
                "matvec",
                "sample_matvec",
                "data_space",
            }
        ),
    )
    curvature_note = "For a linear model 'gauss-newton' is the same matrix as 'exact'."
    singular_advice = (
        "This happens without a penalty (C=np.inf, alpha=0), with duplicated or "
        "constant features, or with examples of zero weight. Pass damping > 0 "
        "(for example damping=1e-3), leave damping='auto', or use "
        "hessian='identity'."
    )
    #: ``f = W x + b``: a Newton removal moves the outputs exactly by ``J delta``.
    outputs_linear_in_params = True

    # -- what a subclass provides ---------------------------------------------------
    @property
    @abstractmethod
    def coef(self) -> np.ndarray:
        """Weights W, shape (n_outputs, n_features)."""

    @property
    def intercept(self) -> np.ndarray:
        """Intercepts b, shape (n_outputs,) (zeros without an intercept)."""
        intercept = np.asarray(self.estimator.intercept_, dtype=float)
        return np.broadcast_to(intercept.ravel(), (self.n_outputs,))

    @property
    def fit_intercept(self) -> bool:
        return bool(self.estimator.fit_intercept)

    @property
    @abstractmethod
    def weight_penalty(self) -> float | np.ndarray:
        """``p`` of the weights (scalar, or one per output); 0 for none."""

    #: Penalty weight on the intercept (0: not penalised).
    intercept_penalty: float = 0.0
    #: True when the loss is invariant to adding a constant to all outputs (softmax).
    shift_invariant: ClassVar[bool] = False

    @abstractmethod
    def output_gradients(
        self, F: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``dl/df`` as (unit direction (n, n_outputs), norm (n,)), computed
        without cancellation, so the direction is exact even when the norm
        underflows."""

    def output_residuals(self, F: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``dl/df`` (n, n_outputs) as a plain array, for sums over examples
        where the careful direction of :meth:`output_gradients` is not needed
        (a family may compute it more cheaply)."""
        direction, norm = self.output_gradients(F, y)
        return direction * norm[:, None]

    @abstractmethod
    def output_curvature(
        self, F: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``d²l/df² = diag(a) - b b^T`` as (a, b); ``b`` is None when zero."""

    @abstractmethod
    def output_losses(self, F: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-example loss ``l(y_i, f_i)``."""

    def predict_from_decision(self, F: np.ndarray) -> np.ndarray:
        """Encoded predictions from the outputs (classifiers: class indices)."""
        if self.is_regressor:
            return F[:, 0]
        if F.shape[1] == 1:
            return (F[:, 0] > 0).astype(np.intp)
        return F.argmax(axis=1)

    # -- decomposition (representer theorem; see the module docstring) -------------
    decomposes: ClassVar[str] = (
        "the linear decision function X W^T + b (classifiers' decision_function, "
        "Ridge's predict, GLMs' linear predictor)"
    )

    @property
    def baseline_(self) -> float | np.ndarray:
        """The unpenalised intercepts (0 where penalised or absent)."""
        K, n_features = self.n_outputs, self.coef.shape[1]
        baseline = np.zeros(K)
        if self.fit_intercept:
            unpenalised = self.penalty().reshape(K, self.n_design)[:, n_features] == 0
            baseline[unpenalised] = self.params[unpenalised, n_features]
        return float(baseline[0]) if K == 1 else baseline

    def representer_coefficients(self) -> np.ndarray:
        """``alpha_ik = -c s_i dl_i/df_k`` (n_train, K) of the training data."""
        name = type(self.estimator).__name__
        penalty = self.penalty().reshape(self.n_outputs, self.n_design)
        n_features = self.coef.shape[1]
        if np.any(penalty[:, :n_features] <= 0):
            raise ValueError(
                f"{name} has unpenalised weights (no L2 penalty: LinearRegression, "
                "alpha=0 or C=np.inf), so its weights are not a sum over training "
                "examples and decompose is not defined. Refit it with an L2 "
                "penalty (alpha > 0 or a finite C)."
            )
        X, y = self._bound("X_"), self._bound("y_")
        weights = self.loss_scale * self._bound("sample_weight_")
        R = np.vstack(
            [
                self.output_residuals(self.decision(X[rows]), y[rows])
                for rows in chunk_slices(X.shape[0], 8 * 4 * self.n_outputs)
            ]
        )
        return -weights[:, None] * R

    def decompose(self, X: Any) -> np.ndarray:
        """``alpha_ik x̃_i^T diag(1/p_k) x̃`` (module docstring): (n_test,
        n_train), or (n_test, n_train, K) for several outputs. Warns when the
        model is not at its minimum to the decomposition's precision."""
        alpha = self.representer_coefficients()
        K = self.n_outputs
        penalty = self.penalty().reshape(K, self.n_design)
        inverse = np.divide(1.0, penalty, out=np.zeros_like(penalty), where=penalty > 0)
        train = self.design(self._bound("X_"))
        test = self.design(X)
        out = np.empty((X.shape[0], train.shape[0], K))
        rebuilt = np.empty_like(penalty)
        for k in range(K):
            scaled = (
                test.multiply(inverse[k])
                if sparse.issparse(test)
                else test * inverse[k]
            )
            out[:, :, k] = np.asarray(scaled @ train.T) * alpha[:, k]
            rebuilt[k] = inverse[k] * np.asarray(train.T @ alpha[:, k]).ravel()
        fitted = np.where(penalty > 0, self.params, 0.0)
        gap = np.linalg.norm(rebuilt - fitted) / max(np.linalg.norm(fitted), 1e-300)
        if gap > REPRESENTER_TOLERANCE:
            warnings.warn(
                f"{type(self.estimator).__name__} is not at the minimum of its "
                f"objective on the X, y given to fit to the precision of decompose: "
                f"its weights differ from their representer sum by {gap:.2g} "
                "(relative), so the contributions sum to its decision function "
                "only that closely. Refit with a smaller tol (or "
                "solver='newton-cholesky' where the model has it).",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        return out[:, :, 0] if K == 1 else out

    # -- derived -----------------------------------------------------------------------
    @property
    def n_outputs(self) -> int:
        return self.coef.shape[0]

    @property
    def n_design(self) -> int:
        return self.coef.shape[1] + int(self.fit_intercept)

    @property
    def n_params(self) -> int:  # type: ignore[override]
        return self.n_outputs * self.n_design

    #: Parameters set by :meth:`at` (None: the estimator's own).
    _theta: np.ndarray | None = None

    @property
    def params(self) -> np.ndarray:
        """theta as (n_outputs, n_design): ``[W | b]``."""
        if self._theta is not None:
            return self._theta
        if self.fit_intercept:
            return np.column_stack([self.coef, self.intercept])
        return np.asarray(self.coef, dtype=float)

    def parameters(self) -> np.ndarray:
        return self.params.ravel()

    def at(self, theta: np.ndarray) -> LinearModelAdapter:
        """The same model with parameters ``theta`` (the estimator untouched)."""
        shifted = copy.copy(self)
        shifted._theta = np.asarray(theta, dtype=float).reshape(
            self.n_outputs, self.n_design
        )
        return shifted

    def penalty(self) -> np.ndarray:
        per_output = np.ones((self.n_outputs, self.n_design))
        per_output *= np.reshape(self.weight_penalty, (-1, 1))
        if self.fit_intercept:
            per_output[:, -1] = self.intercept_penalty
        return per_output.ravel()

    def null_space(self) -> np.ndarray | None:
        """Directions ``1_K ⊗ e_j / sqrt(K)`` for every unpenalised input j of a
        shift-invariant loss: the loss is flat along them and every gradient is
        orthogonal to them (its outputs' residuals sum to zero)."""
        unpenalised = self.unpenalised_inputs()
        if not self.shift_invariant or unpenalised.size == 0:
            return None
        K = self.n_outputs
        basis = np.zeros((K, self.n_design, unpenalised.size))
        basis[:, unpenalised, np.arange(unpenalised.size)] = 1.0 / np.sqrt(K)
        return basis.reshape(self.n_params, -1)

    def unpenalised_inputs(self) -> np.ndarray:
        """Indices j of the design columns whose weights are not penalised in
        every output."""
        penalty = self.penalty().reshape(self.n_outputs, self.n_design)
        return np.flatnonzero(np.all(penalty == 0, axis=0))

    def design(self, X: Any) -> Any:
        return add_intercept_column(X, self.fit_intercept)

    def decision(self, X: Any) -> np.ndarray:
        """``f = X W^T + b`` in float64 (computed in X's dtype)."""
        params = self.params
        n_features = params.shape[1] - int(self.fit_intercept)
        coef = params[:, :n_features].astype(X.dtype, copy=False)
        F = np.asarray(X @ coef.T, dtype=np.float64)
        return F + params[:, n_features] if self.fit_intercept else F

    def outputs(self, X: Any) -> np.ndarray:
        return self.decision(X)

    def loss_curvature(self, X, y_encoded):
        return self.output_curvature(self.decision(X), y_encoded)

    def predict_target(self, X: Any) -> np.ndarray:
        return self.predict_from_decision(self.decision(X))

    def loss_gradients(self, X, y_encoded):
        return self.output_gradients(self.decision(X), y_encoded)

    def prediction_gradients(self, X):
        # d f / d theta = 1 ⊗ x̃ for the (single) output; minus, so that removing
        # an example that pushes f up lowers f: a positive score.
        n = X.shape[0]
        return -np.ones((n, self.n_outputs)), np.ones(n)

    def losses(self, X, y_encoded):
        return self.output_losses(self.decision(X), y_encoded)

    def gradients(self, X, coefficients):
        if sparse.issparse(X):
            return outer_rows(coefficients, self.design(X))
        # r_i ⊗ [x_i, 1] written in one pass (no copy of X with its 1 column)
        n_rows, n_features = X.shape
        dtype = np.result_type(coefficients.dtype, X.dtype)
        grads = np.empty((n_rows, self.n_outputs, self.n_design), dtype=dtype)
        coefficients = coefficients.astype(dtype, copy=False)
        np.multiply(
            coefficients[:, :, None], X[:, None, :], out=grads[:, :, :n_features]
        )
        if self.fit_intercept:
            grads[:, :, n_features] = coefficients
        return grads.reshape(n_rows, -1)

    def gradient_dots(self, solved, X, direction):
        n_rows, n_outputs = direction.shape
        dense64 = X.dtype == np.float64 and not sparse.issparse(X)
        if len(solved) >= n_outputs and dense64:
            # One GEMM S G^T with the chunk's gradient rows g_i = d_i ⊗ x̃_i:
            # the same 2 m n P flops as X̃ S^T below, without its (n, m, K)
            # product array and the reduction over k, and in the (m, n) layout
            # of the scores. SciPy's GEMM, as (G S^T)^T on the Fortran views
            # of G^T and S^T (no copy): the solves for S ran in SciPy's BLAS
            # thread pool, and numpy's would compete with its idle threads.
            grads = self.gradients(X, direction.astype(X.dtype, copy=False))
            return blas.dgemm(1.0, grads.T, solved.T, trans_a=1).T
        solved = solved.reshape(-1, self.n_design)  # (m * n_outputs, n_design)
        # (X̃ S^T)[i, t, k] = x̃_i . (H^-1 g_t)_k ; contract k with ĝ_i's residual.
        design = self.design(X)
        # a sparse product with a C-ordered right-hand side (SciPy copies a
        # transposed one, slowly)
        right = transposed(solved) if sparse.issparse(design) else solved.T
        products = np.asarray(design @ right).reshape(n_rows, -1, n_outputs)
        # in the products' dtype: float32 products are not upcast (a copy as
        # large as the score block times K)
        return np.einsum("itk,ik->ti", products, direction.astype(products.dtype))

    def hessian_operator(self, X, y_encoded, weights, n_jobs=None, curvature="exact"):
        curvature = self.loss_curvature(X, y_encoded)
        return LinearHessian(self, X, weights, curvature, n_jobs)

    def curvature_costs(self, X, curvature):
        K, d = self.n_outputs, self.n_design
        n = X.shape[0]
        if sparse.issparse(X):
            # per row r non-zeros (intercept included): its outer products
            row = np.diff(sparse.csr_matrix(X).indptr).astype(np.float64) + 1
            outer = float(np.sum(row**2))
            return dict(
                dense_flops=K**2 * outer + 3.0 * self.n_params**2,
                dense_sparse=True,
                matvec_flops=4.0 * K * float(np.sum(row)),
                matvec_sparse=True,
                block_sizes=(d,) * K,
                block_flops=K * outer + 3.0 * K * d**2,
            )
        return dict(
            dense_flops=float(n) * self.n_params**2,
            dense_sparse=False,
            matvec_flops=4.0 * K * n * d,
            matvec_sparse=False,
            block_sizes=(d,) * K,
            block_flops=float(n) * K * d**2,
        )

    def objective_gradient(self, X, y_encoded, weights):
        direction, norm = self.loss_gradients(X, y_encoded)
        weighted = (weights * norm)[:, None] * direction
        chunks = chunk_slices(X.shape[0], 8 * self.n_design)
        grad = sum(_gradient_sum_chunk(X[rows], weighted[rows]) for rows in chunks)
        if self.fit_intercept:  # the column of ones of X̃, without copying X
            grad = np.column_stack([grad, weighted.sum(axis=0)])
        # sum_i w_i ||g_i|| = sum_i w_i ||r_i|| ||x̃_i||
        x_norms = np.sqrt(row_norms(X, squared=True) + self.fit_intercept)
        step = self.penalty() * self.parameters()
        size = float(np.sum(weights * norm * x_norms) + np.linalg.norm(step))
        return grad.ravel() + step, size

    def loss_gradients_at(self, X, y_encoded, thetas):
        design = self.design(np.asarray(X.todense() if sparse.issparse(X) else X))
        W = np.asarray(thetas, dtype=np.float64).reshape(len(thetas), -1, self.n_design)
        return self.output_gradients(np.einsum("bd,bkd->bk", design, W), y_encoded)

    def outputs_at(self, X, thetas):
        b, K = len(thetas), self.n_outputs
        W = np.asarray(thetas, dtype=np.float64).reshape(b * K, self.n_design)
        design = self.design(X.astype(np.float64, copy=False))
        F = np.asarray(design @ W.T).reshape(X.shape[0], b, K)
        return F.transpose(1, 0, 2)

    def objective_gradients(self, X, y_encoded, weights, thetas):
        """``dF/dtheta`` at b parameter vectors at once: the outputs of every
        example under every theta by one GEMM, ``X̃ [W_1 | ... | W_b]^T``, the
        loss derivatives on the (n b, K) rows, and ``X̃^T`` times them (a second
        GEMM), chunk by chunk."""
        b, K, d = len(thetas), self.n_outputs, self.n_design
        W = np.asarray(thetas, dtype=np.float64).reshape(b * K, d)
        total = np.zeros((b * K, d))
        y_rows = np.asarray(y_encoded)
        for rows in chunk_slices(X.shape[0], 8 * 4 * b * K):
            design = self.design(X[rows].astype(np.float64, copy=False))
            F = np.asarray(design @ W.T).reshape(-1, b, K)  # (n, b, K)
            n = F.shape[0]
            coefficients = self.output_residuals(
                F.reshape(n * b, K), np.repeat(y_rows[rows], b)
            ).reshape(n, b * K)
            coefficients *= weights[rows, None]
            total += np.asarray(design.T @ coefficients).T
        return total.reshape(b, K * d) + self.penalty() * thetas

    def dot_bytes_per_pair(self) -> int:
        return 8 * (self.n_outputs + 1)

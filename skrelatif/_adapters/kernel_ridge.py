"""Adapter for :class:`~sklearn.kernel_ridge.KernelRidge` (every kernel of
:func:`~sklearn.metrics.pairwise.pairwise_kernels`, ``"precomputed"`` and
callables with their ``kernel_params`` included; sample weights).

Objective and its closed forms
------------------------------
KernelRidge minimises, over functions ``f(x) = w . phi(x)`` of the kernel's
feature space (``K(a, b) = phi(a) . phi(b)``; no intercept) ::

    F(w) = sum_i s_i (y_i - f(x_i))^2 + lambda ||w||^2        (lambda = alpha)

whose minimiser is ``f(x) = k_x^T dual_coef_`` with ``k_x = (K(x, x_j))_j``
and ``dual_coef_ = M y``, ``M = S^1/2 (S^1/2 K S^1/2 + lambda I)^-1 S^1/2``
(``S = diag(s)``; scikit-learn solves exactly this system). So the
prediction is a sum over training examples: ``decompose(X)[t, i] =
dual_coef_[i] K(x_i, x_t)``, ``baseline_ = 0``; and it is linear in ``y``:
``f(x) = A(x) y`` with ``A(x) = k_x^T M``, and on the training points
``f = H y``, ``H = K M`` (the hat matrix).

Removal (exact). Dropping example ``i`` is refitting with ``y_i`` replaced
by the prediction of the model without it (its residual is then 0, so the
objective's stationarity condition is the same), which gives the
leave-one-out residual and the change of any prediction ::

    y_i - f_-i(x_i) = r_i / (1 - H_ii),     f_-i(x) - f(x) = -A(x)_i r_i / (1 - H_ii)

with ``r = y - f``; a group ``G`` removed together moves ``f(x)`` by
``-A(x)_G (I - H_GG)^-1 r_G``. ``"newton"``, ``loo_loss_`` and
``predict_removal`` are these exact refits (the objective is quadratic, so
one Newton step is exact, as for :class:`~sklearn.linear_model.Ridge`).

Influence (closed form in the dual). The Hessian of ``F`` is
``2 (Phi^T S Phi + lambda I)`` and the loss gradient of example ``i`` is
``g_i = rho_i phi(x_i)``, ``rho_i = 2 (f_i - y_i)``. By the push-through
identity ``(Phi^T S Phi + lambda I)^-1 phi(x_i) = Phi^T v_i`` with
``v_i = (S K + lambda I)^-1 e_i``, so every product is a kernel expression::

    "if"             s_i g_t^T H^-1 g_i
                       = gamma_t (f_i - y_i) A(x_t)_i
    "theta-relatif"  g_t^T H^-1 g_i / ||H^-1 g_i||
                       = gamma_t sign(rho_i) k_t^T u_i / sqrt(u_i^T K u_i)
    "l-relatif"      g_t^T H^-1 g_i / sqrt(g_i^T H^-1 g_i)
                       = gamma_t sign(rho_i) k_t^T u_i / sqrt(2 kappa_i k_i^T u_i)
    self_influence_  s_i g_i^T H^-1 g_i = 2 r_i^2 H_ii

with ``gamma_t = 2 (f_t - y_t)`` (the test loss ``(y_t - f_t)^2``) or
``gamma_t = -1`` (a prediction explained without ``y``: positive = the
example pushes it up), and ``u_i`` a positive multiple of ``v_i`` computed
without cancellation: ``u_i = M e_i = s_i v_i`` (``kappa_i = s_i``) where
``s_i > 0``, ``u_i = e_i - M k_i = lambda v_i`` (``kappa_i = lambda``) for an
example of weight 0, which has no ``"if"`` score and changes nothing when
removed. An example fitted exactly (``r_i = 0``) has a zero gradient and
scores 0. The kernel matrix and ``M`` (two n x n arrays) are kept once the
explainer is fitted; each test point needs one row ``k_t^T M`` (n flops
times n).

For a kernel that is not positive semi-definite (``"sigmoid"``, some
callables) ``S^1/2 K S^1/2 + lambda I`` may be indefinite or singular:
scikit-learn then falls back to least squares, and so does this adapter
(a pseudo-inverse); ``F`` is no longer convex, the removal formulas hold
only where ``1 - H_ii > 0``, and the normalisers use absolute values so that
no score is NaN. Multi-output ``KernelRidge`` (a 2-d ``y``) is refused: the
explainer takes one target column at a time.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import linalg, sparse
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics.pairwise import pairwise_kernels

from .._utils import caller_stacklevel
from ._base import SumAdapter


def _kernel(estimator: KernelRidge, A: Any, B: Any) -> np.ndarray:
    """``K(a, b)`` as :class:`~sklearn.kernel_ridge.KernelRidge` computes it
    (its ``gamma``, ``degree``, ``coef0`` or ``kernel_params``)."""
    if callable(estimator.kernel):
        params = estimator.kernel_params or {}
    else:
        params = {
            "gamma": estimator.gamma,
            "degree": estimator.degree,
            "coef0": estimator.coef0,
        }
    K = pairwise_kernels(A, B, metric=estimator.kernel, filter_params=True, **params)
    return np.asarray(K.toarray() if sparse.issparse(K) else K, dtype=np.float64)


def _scores_cross(test_state, rows):
    """``gamma_t`` times the test rows' columns ``rows``: (n_test, len(rows))."""
    return test_state[0][:, rows]


def _newton_cross(test_state, rows, shift):
    """Exact change of the test loss (or minus that of the prediction) when
    each of ``rows`` is removed: the prediction moves by ``-A_ti shift_i``."""
    A, residual = test_state
    delta = -A[:, rows] * shift
    if residual is None:
        return -delta
    return delta * (delta - 2.0 * residual[:, None])  # (r - d)^2 - r^2


class KernelRidgeAdapter(SumAdapter):
    """Kernel ridge regression in the dual, with exact removal (see the
    module docstring for the formulas).

    A :class:`~skrelatif._adapters._base.SumAdapter`: the prediction is a sum
    over training examples, and every score is a kernel expression between a
    test row ``k_t^T M`` and a training column, so no parameter vector (which
    is infinite-dimensional for most kernels) and no curvature solver is
    involved; the ``n x n`` system is solved once, when bound.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.kernel_ridge import KernelRidge
    >>> from skrelatif._adapters.kernel_ridge import KernelRidgeAdapter
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> y = np.array([0.0, 1.0, 1.0, 3.0])
    >>> model = KernelRidge(alpha=0.1, kernel="rbf", gamma=1.0).fit(X, y)
    >>> adapter = KernelRidgeAdapter(model).bind(X, y, None)
    >>> parts = adapter.decompose(np.array([[1.5]]))
    >>> bool(np.isclose(parts.sum(), model.predict([[1.5]])[0]))
    True
    """

    estimator_types = (KernelRidge,)
    methods = ("if", "theta-relatif", "l-relatif", "newton")
    decomposes = "predict"
    tight_retraining = False
    curvature_note = (
        "its objective is quadratic in the kernel's feature space and every "
        "score has a closed form in the dual (one n x n system, solved once): "
        "there is no curvature or solver to choose"
    )
    objective = "sum_i s_i (y_i - f(x_i))^2 + alpha ||f||^2 (kernel feature space)"
    loss = "(y - f)^2"
    notes = (
        "every kernel of pairwise_kernels, precomputed and callables; exact "
        "removal and leave-one-out in closed form; single-output"
    )

    def check_estimator(self) -> None:
        est = self.estimator
        if np.ndim(est.dual_coef_) != 1:
            raise ValueError(
                "KernelRidge was fitted on a 2-d target (several outputs); explain "
                "one output at a time: fit one model per target column."
            )

    @property
    def n_outputs(self) -> int:  # type: ignore[override]
        return 1

    @property
    def penalty_strength(self) -> float:
        """``lambda``, the model's ``alpha``."""
        return float(np.ravel(self.estimator.alpha)[0])

    def predict_target(self, X: Any) -> np.ndarray:
        return np.asarray(self.estimator.predict(X), dtype=np.float64)

    def outputs(self, X: Any) -> np.ndarray:
        return self.predict_target(X)[:, None]

    def output_losses(self, F: np.ndarray, y_encoded: np.ndarray) -> np.ndarray:
        return (np.asarray(y_encoded, dtype=np.float64) - F[:, 0]) ** 2

    def losses(self, X: Any, y_encoded: np.ndarray) -> np.ndarray:
        return self.output_losses(self.outputs(X), y_encoded)

    # -- the training data -------------------------------------------------------------
    def sample_weights(self, y_encoded, sample_weight):
        weights = super().sample_weights(y_encoded, sample_weight)
        if np.any(weights < 0):
            raise ValueError("sample_weight must be non-negative for KernelRidge.")
        return weights

    def _candidates(self, X, y_encoded, sample_weight):
        """Every example; the bound copy keeps the training kernel ``K_``, ``M_``,
        the hat diagonal ``leverage_`` (``H_ii``), the residuals
        ``residual_`` (``y - f``) and ``baseline_`` (0)."""
        est = self.estimator
        s = self.sample_weight_
        K = _kernel(est, X, X)
        root = np.sqrt(s)
        system = root[:, None] * K * root[None, :]
        system.flat[:: K.shape[0] + 1] += self.penalty_strength
        try:
            inverse = linalg.cho_solve(linalg.cho_factor(system), np.eye(len(s)))
        except linalg.LinAlgError:  # as KernelRidge: least squares
            inverse = linalg.pinvh(system)
        M = root[:, None] * inverse * root[None, :]
        M = 0.5 * (M + M.T)
        dual = M @ np.asarray(y_encoded, dtype=np.float64)
        expected = np.asarray(est.dual_coef_, dtype=np.float64)
        if not np.allclose(
            dual, expected, rtol=1e-6, atol=1e-8 * np.abs(expected).max()
        ):
            raise ValueError(
                "The KernelRidge does not match the X, y (and sample_weight) given "
                "to fit: its dual coefficients differ from the solution of its "
                "system on these data. Pass exactly the data the model was "
                "trained on, in the same order."
            )
        self.K_, self.M_ = K, M
        self.leverage_ = np.einsum("ij,ji->i", K, M)  # diag(K M)
        self.residual_ = np.asarray(y_encoded, dtype=np.float64) - K @ expected
        if np.any(self.leverage_ >= 1):
            warnings.warn(
                "Some training examples of the KernelRidge have leverage H_ii >= 1 "
                "(its kernel is not positive semi-definite): their exact removal "
                "is not defined and scores 0.",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        self.baseline_ = 0.0
        return np.arange(X.shape[0])

    def _shift(self) -> np.ndarray:
        """``r_i / (1 - H_ii)`` (0 where ``H_ii >= 1``)."""
        gap = 1.0 - self._bound("leverage_")
        return np.divide(self.residual_, gap, out=np.zeros_like(gap), where=gap > 0)

    # -- decomposition and removal -----------------------------------------------------
    def decompose(self, X: Any) -> np.ndarray:
        """``dual_coef_[i] K(x_i, x_t)``, shape (n_test, n_train)."""
        dual = np.asarray(self.estimator.dual_coef_, dtype=np.float64)
        return _kernel(self.estimator, X, self._bound("X_")) * dual[None, :]

    def _smoother(self, X: Any) -> np.ndarray:
        """``A(x_t) = k_t^T M`` (n_test, n_train)."""
        return _kernel(self.estimator, X, self._bound("X_")) @ self.M_

    def removal_outputs(self, X: Any, groups: list) -> np.ndarray:
        """Predictions (n_test, n_groups, 1) of the models refit without each group."""
        A = self._smoother(X)
        f = self.predict_target(X)
        K, M, r = self.K_, self.M_, self.residual_
        out = np.empty((X.shape[0], len(groups), 1))
        for g, group in enumerate(groups):
            group = np.unique(np.asarray(group, dtype=np.intp))
            gap = np.eye(len(group)) - K[group] @ M[:, group]  # I - H_GG
            out[:, g, 0] = f - A[:, group] @ linalg.solve(gap, r[group])
        return out

    def loo_outputs(self) -> np.ndarray:
        """``f_-i(x_i) = y_i - r_i / (1 - H_ii)``, shape (n_train, 1)."""
        return (np.asarray(self._bound("y_"), dtype=np.float64) - self._shift())[
            :, None
        ]

    # -- scores ------------------------------------------------------------------------
    def _columns(self, K_test: np.ndarray, A: np.ndarray) -> np.ndarray:
        """``k_t^T u_i`` for every training column (see the module docstring)."""
        zero = np.flatnonzero(self.sample_weight_ == 0)
        if zero.size == 0:
            return A
        T = A.copy()
        T[:, zero] = K_test[:, zero] - A @ self.K_[:, zero]
        return T

    def self_products(self, rows: np.ndarray) -> np.ndarray:
        """``s_i g_i^T H^-1 g_i = 2 r_i^2 H_ii``."""
        return 2.0 * self.residual_[rows] ** 2 * self.leverage_[rows]

    def self_influence(self) -> np.ndarray:
        return self.self_products(np.arange(self.n_train_))

    def train_scale(self, method: str) -> np.ndarray:
        sign = -np.sign(self._bound("residual_"))  # sign(rho_i), rho_i = -2 r_i
        if method == "if":
            return -self.residual_  # f_i - y_i
        if method == "newton":
            return np.ones(self.n_train_)
        s = self.sample_weight_
        zero = s == 0
        U = self.M_.copy()  # columns u_i
        if np.any(zero):
            U[:, zero] = -self.M_ @ self.K_[:, zero]
            U[zero, zero] += 1.0
        if method == "theta-relatif":
            squared = np.einsum("ji,ji->i", U, self.K_ @ U)  # u_i^T K u_i
        else:
            kappa = np.where(zero, self.penalty_strength, s)
            squared = 2.0 * kappa * np.einsum("ji,ji->i", self.K_, U)
        norm = np.sqrt(np.abs(squared))
        return np.divide(sign, norm, out=np.zeros_like(norm), where=norm > 0)

    def test_state(self, X, y_encoded, method: str = "if"):
        K_test = _kernel(self.estimator, X, self._bound("X_"))
        A = K_test @ self.M_
        f = self.predict_target(X)
        residual = None if y_encoded is None else np.asarray(y_encoded, float) - f
        if method == "newton":
            return A, residual
        gamma = -np.ones(len(f)) if residual is None else -2.0 * residual
        T = A if method == "if" else self._columns(K_test, A)
        return (gamma[:, None] * T,)

    def payload(self, rows, method: str = "if"):
        index = (
            np.arange(rows.start or 0, rows.stop) if isinstance(rows, slice) else rows
        )
        if method == "newton":
            return np.asarray(index), self._shift()[index]
        return (np.asarray(index),)

    def cross_function(self, method: str):
        return _newton_cross if method == "newton" else _scores_cross

    @staticmethod
    def cross(test_state, *payload):
        if len(test_state) == 2:
            return _newton_cross(test_state, *payload)
        return _scores_cross(test_state, *payload)

    def test_row_bytes(self) -> int:
        return 8 * 3 * max(self.__dict__.get("n_train_", 1), 1)

    def dot_bytes_per_pair(self) -> int:
        return 8 * 3

"""Adapter for least squares: :class:`~sklearn.linear_model.Ridge`,
:class:`~sklearn.linear_model.RidgeCV`,
:class:`~sklearn.linear_model.LinearRegression`,
:class:`~sklearn.linear_model.RidgeClassifier` and
:class:`~sklearn.linear_model.RidgeClassifierCV`.

Objective (scikit-learn's own, ``s_i`` = sample weight, times the class
weight for the classifiers)::

    F(theta) = sum_i s_i l_i + alpha ||W||^2,   l_i = ||y_i - f_i||^2,  f_i = W x_i + b

so ``c = 1`` and the penalty's Hessian is ``p = 2 alpha`` on the weights (per
output when ``alpha`` is one per target) and 0 on the unpenalised intercept;
``LinearRegression`` has ``alpha = 0`` (a singular Hessian then asks for
``damping``). The fitted ``alpha_`` of the CV estimators is the one used.
Per example and output ::

    dl/df = 2 (f - y),   d²l/df² = 2 I

The classifiers regress one output per class on targets in {-1, +1} (+1 for
the example's class; a binary model has one output, +1 for ``classes_[1]``),
and their loss is that of the explained label's coding. A regressor without
given targets explains its prediction ``f(x_t)`` (see
:meth:`ModelAdapter.prediction_gradients`). Squared loss has constant
curvature, so the Newton step of leave-one-out is exact for these models.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import (
    LinearRegression,
    Ridge,
    RidgeClassifier,
    RidgeClassifierCV,
    RidgeCV,
)

from ._base import class_weights
from ._linear import LinearModelAdapter


class RidgeAdapter(LinearModelAdapter):
    estimator_types = (
        Ridge,
        RidgeCV,
        LinearRegression,
        RidgeClassifier,
        RidgeClassifierCV,
    )
    objective = "sum_i s_i l_i + alpha ||W||^2 (LinearRegression: alpha = 0)"
    loss = "(y - f)^2; classifiers: per output, targets in {-1, +1}"
    notes = "RidgeCV / RidgeClassifierCV: the fitted alpha_; single-output regressors"

    def check_estimator(self) -> None:
        est = self.estimator
        name = type(est).__name__
        if getattr(est, "positive", False):
            raise ValueError(
                f"{name} with positive=True is constrained (its weights are "
                "clipped at 0), so its optimum is not a zero of the objective's "
                "gradient and influence functions do not apply. Refit it with "
                "positive=False."
            )
        if self.is_regressor and np.ndim(est.coef_) != 1:
            raise ValueError(
                f"{name} was fitted on a 2-d target (several outputs); explain one "
                "output at a time: fit one model per target column."
            )

    @property
    def coef(self):
        return np.atleast_2d(np.asarray(self.estimator.coef_, dtype=float))

    @property
    def intercept(self):
        intercept = np.asarray(self.estimator.intercept_, dtype=float).ravel()
        if not self.fit_intercept:
            intercept = np.zeros(self.n_outputs)
        return np.broadcast_to(intercept, (self.n_outputs,))

    @property
    def weight_penalty(self):
        est = self.estimator
        if isinstance(est, LinearRegression):
            return 0.0
        alpha = est.alpha_ if hasattr(est, "alpha_") else est.alpha
        return 2.0 * np.asarray(alpha, dtype=float)

    def sample_weights(self, y_encoded, sample_weight):
        weights = super().sample_weights(y_encoded, sample_weight)
        if self.is_regressor:
            return weights
        # RidgeClassifier's "balanced" weights ignore the sample weights
        return weights * class_weights(self.estimator, y_encoded)

    def _targets(self, y: np.ndarray, n_outputs: int) -> np.ndarray:
        """(n, K) targets: the values, or the ±1 coding of the class indices."""
        if self.is_regressor:
            return np.asarray(y, dtype=float)[:, None]
        if n_outputs == 1:
            return 2.0 * (np.asarray(y) == 1)[:, None] - 1.0
        return 2.0 * np.eye(n_outputs)[y] - 1.0

    def output_gradients(self, F, y):
        residual = 2.0 * (F - self._targets(y, F.shape[1]))
        norm = np.linalg.norm(residual, axis=1)
        return residual / np.where(norm > 0, norm, 1.0)[:, None], norm

    def output_curvature(self, F, y):
        return np.full(F.shape, 2.0), None

    def output_losses(self, F, y):
        return np.sum((self._targets(y, F.shape[1]) - F) ** 2, axis=1)

"""Adapters for :class:`~sklearn.linear_model.SGDClassifier` (``loss="log_loss"``)
and :class:`~sklearn.linear_model.SGDRegressor` (``loss="squared_error"``),
with the L2 penalty (``penalty="l2"``, or ``"elasticnet"`` with ``l1_ratio=0``)
or none (``penalty=None``).

Objective (scikit-learn's own, see its user guide, "Stochastic Gradient
Descent", "Mathematical formulation"), over the ``n`` training rows, with
``s_i`` the sample weight (times the class weight, see below)::

    F(theta) = 1/n sum_i s_i l_i + alpha/2 ||w||^2,   f_i = W x_i + b

so ``c = 1/n``, the penalty's Hessian is ``p = alpha`` on the weights (0 for
``penalty=None``) and 0 on the intercept, which SGD does not penalise. The
objective is a mean over the rows (``mean_over = "rows"``: the base class
keeps ``c`` and the renormalisation of a refit on fewer rows). SGD's updates
are an unbiased estimate of ``dF`` (each step
``w <- (1 - eta alpha) w - eta s_i dl_i/dw``), so a converged model is a zero
of ``dF``; its intercept's learning-rate factor (0.01 on sparse input) does
not move that zero (it only slows the intercept's convergence: sparse input
needs more epochs), and ``average=True`` (the averaged iterate) is the model
explained as it is. SGD is seldom run to the exact
minimum: the core's "not at a minimum" warning then says by how much and
advises a smaller ``tol``, a larger ``max_iter`` or ``average=True``.

**SGDRegressor.** One output, ``l = 1/2 (y - f)^2``::

    dl/df = f - y,   d²l/df² = 1

Without targets the prediction ``f(x_t)`` itself is explained (see
:meth:`ModelAdapter.prediction_gradients`: positive = the example pushes the
prediction up).

**SGDClassifier, two classes.** One output ``f`` and, with ``y = +1`` for
``classes_[1]`` and ``-1`` for ``classes_[0]``, the logistic loss (the
log-loss of ``LogisticRegression`` in another coding)::

    l = log(1 + exp(-y f)),   dl/df = -y expit(-y f),   d²l/df² = expit(f) expit(-f)

with ``dl/df = -expit(-f)`` for ``y = +1`` and ``expit(f)`` for ``y = -1``,
free of the cancellation of ``expit(f) - 1``. The class weight of the
example's class multiplies its loss (scikit-learn's ``pos_weight`` and
``neg_weight``): it is part of ``s_i``.

**SGDClassifier, K > 2 classes: one-vs-rest.** Output ``k`` is the binary
problem "class k against the rest", trained on its own objective (with the
same ``alpha``); the parameters of the K problems are disjoint, so the K
objectives add up to one, ``F = sum_k F_k``, whose per-example loss is ::

    l_i = sum_k c_ik log(1 + exp(-y_ik f_ik)),   y_ik = +1 if k = y_i else -1
    dl/df_k = c_ik (expit(f_k) - [k = y_i])
    d²l/df² = diag(c_ik expit(f_k) expit(-f_k))        (no rank-one term)

each residual computed without cancellation (``-expit(-f_k)`` for the true
class, ``expit(f_k)`` for the others) in the log domain, so that the
direction of ``dl/df`` stays exact when every component underflows. The
outputs are not shift-invariant (no null space). ``c_ik`` is the class
weight as scikit-learn's one-vs-rest applies it: problem ``k`` weighs its
positive examples (class ``k``) by ``class_weight[k]`` and its negatives by 1,
so it is a weight per output rather than per example and belongs to ``l_i``
(also for the explained test loss); without ``class_weight``, ``c_ik = 1``.
``"balanced"`` class weights are computed from the training labels without
the sample weights, as SGD computes them.

Unsupported, with a clear ``ValueError``: other losses (``hinge``,
``modified_huber``, ``perceptron``, ``huber``, ``epsilon_insensitive``, ...:
not twice differentiable, or not this objective), the L1 penalty and the
elastic net with ``l1_ratio > 0`` (not twice differentiable), and
``early_stopping=True`` (trained on a random part of ``X`` only).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.special import expit
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.utils.class_weight import compute_class_weight

from ._linear import LinearModelAdapter


class _SGDAdapter(LinearModelAdapter):
    """What SGDClassifier and SGDRegressor share: the penalty, ``c = 1/n``."""

    #: The loss this adapter supports (scikit-learn's name).
    supported_loss: ClassVar[str] = ""
    convergence_advice = "refit with a smaller tol, a larger max_iter, or average=True"
    mean_over = "rows"  # c = 1/n
    #: SGD stops near the minimum, not at it, so the representer sum of
    #: :meth:`LinearModelAdapter.decompose` would not be its weights.
    decomposes = ""

    def check_estimator(self) -> None:
        est = self.estimator
        name = type(est).__name__
        supported = (
            f'{name}(loss="{self.supported_loss}") with penalty="l2", '
            'penalty="elasticnet" with l1_ratio=0, or penalty=None'
        )
        if est.loss != self.supported_loss:
            raise ValueError(
                f"{name} with loss={est.loss!r} is not supported: influence "
                "functions need the twice-differentiable loss whose objective the "
                f"explainer knows. Supported: {supported}."
            )
        penalty, l1_ratio = est.penalty, getattr(est, "l1_ratio", 0.0)
        if penalty == "l1" or (penalty == "elasticnet" and l1_ratio != 0):
            shown = f", l1_ratio={l1_ratio!r}" if penalty == "elasticnet" else ""
            raise ValueError(
                f"{name} with penalty={penalty!r}{shown} has an L1 penalty, which "
                "is not twice differentiable, so influence functions are not "
                f"defined for it. Supported: {supported}."
            )
        if est.early_stopping:
            raise ValueError(
                f"{name} with early_stopping=True was trained on a random part of "
                "X only (validation_fraction is held out) and stopped on a "
                "validation score, so it is not the minimum of an objective on the "
                "X, y given to fit. Refit it with early_stopping=False."
            )

    # -- parameters ------------------------------------------------------------------
    @property
    def coef(self) -> np.ndarray:
        return np.atleast_2d(np.asarray(self.estimator.coef_, dtype=float))

    @property
    def weight_penalty(self) -> float:
        """``alpha`` (times ``1 - l1_ratio`` = 1 for the elastic net allowed);
        0 without a penalty."""
        est = self.estimator
        if est.penalty is None:
            return 0.0
        return float(est.alpha)


class SGDRegressorAdapter(_SGDAdapter):
    """``SGDRegressor(loss="squared_error")``: ``l = 1/2 (y - f)^2``."""

    estimator_types = (SGDRegressor,)
    supported_loss = "squared_error"
    objective = "1/n sum_i s_i l_i + alpha/2 ||w||^2 (penalty=None: alpha = 0)"
    loss = 'loss="squared_error": 1/2 (y - f)^2'
    notes = (
        'penalty "l2", "elasticnet" with l1_ratio=0, or None; average=True '
        "explained as fitted; not at a minimum: a warning with the gap"
    )

    def output_gradients(self, F, y):
        residual = F[:, 0] - np.asarray(y, dtype=float)
        return np.sign(residual)[:, None], np.abs(residual)

    def output_curvature(self, F, y):
        return np.ones(F.shape), None

    def output_losses(self, F, y):
        return 0.5 * (np.asarray(y, dtype=float) - F[:, 0]) ** 2


class SGDClassifierAdapter(_SGDAdapter):
    """``SGDClassifier(loss="log_loss")``: logistic loss per output (one-vs-rest
    for more than two classes)."""

    estimator_types = (SGDClassifier,)
    supported_loss = "log_loss"
    objective = (
        "1/n sum_i s_i l_i + alpha/2 ||W||^2 (penalty=None: alpha = 0); "
        "multiclass: the sum of the one-vs-rest objectives"
    )
    loss = (
        'loss="log_loss": log(1 + exp(-y f)), y in {-1, +1}; multiclass: '
        "sum over the one-vs-rest outputs"
    )
    notes = (
        'penalty "l2", "elasticnet" with l1_ratio=0, or None; class_weight '
        "(one-vs-rest: per output, part of the loss); average=True explained "
        "as fitted; not at a minimum: a warning with the gap"
    )

    def __init__(self, estimator: Any) -> None:
        super().__init__(estimator)
        self._class_weight: np.ndarray | None = None

    def _class_weights(self, y_encoded) -> np.ndarray:
        """The weight of each class (``"balanced"`` ignores the sample weights,
        as in SGD)."""
        est = self.estimator
        return compute_class_weight(
            est.class_weight, classes=est.classes_, y=est.classes_[y_encoded]
        )

    def sample_weights(self, y_encoded, sample_weight):
        """``s_i``: the sample weight, times the class weight of example i's
        class for a binary model (a multiclass model's per-class weights
        enter its one-vs-rest loss, fixed when bound)."""
        weights = super().sample_weights(y_encoded, sample_weight)
        if self.n_outputs == 1:
            weights = weights * self._class_weights(y_encoded)[y_encoded]
        return weights

    def _bind(self, X, y_encoded, sample_weight):
        super()._bind(X, y_encoded, sample_weight)
        self._class_weight = self._class_weights(y_encoded)

    def _output_weights(self, positive: np.ndarray) -> np.ndarray | None:
        """``c_ik`` of a one-vs-rest model with class weights (None: all 1).

        Before :meth:`sample_weights` has seen the training labels (a model
        scored without an explainer's fit, as the leave-one-out refits), the
        weights the estimator was fitted with are used."""
        est = self.estimator
        if self.n_outputs == 1 or est.class_weight is None:
            return None
        class_weight = self._class_weight
        if class_weight is None:
            class_weight = np.asarray(est._expanded_class_weight, dtype=float)
        return np.where(positive, class_weight, 1.0)

    def _positive(self, y: np.ndarray, n_outputs: int) -> np.ndarray:
        """(n, K) booleans: ``y_ik = +1`` (class ``classes_[1]`` for binary)."""
        if n_outputs == 1:
            return (np.asarray(y) == 1)[:, None]
        return np.arange(n_outputs) == np.asarray(y)[:, None]

    def output_gradients(self, F, y):
        positive = self._positive(y, F.shape[1])
        # |dl/df_k| = expit(-f_k) (y_k = +1) or expit(f_k) (y_k = -1), as logs:
        # log expit(z) = -log(1 + exp(-z)).
        log_size = -np.logaddexp(0.0, np.where(positive, F, -F))
        weights = self._output_weights(positive)
        if weights is not None:
            with np.errstate(divide="ignore"):
                log_size = log_size + np.log(weights)
        top = log_size.max(axis=1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)  # every weight 0
        scaled = np.where(positive, -1.0, 1.0) * np.exp(log_size - top)
        size = np.linalg.norm(scaled, axis=1)
        direction = scaled / np.where(size > 0, size, 1.0)[:, None]
        return direction, np.exp(top[:, 0]) * size

    def output_curvature(self, F, y):
        curvature = expit(F) * expit(-F)
        weights = self._output_weights(self._positive(y, F.shape[1]))
        return (curvature if weights is None else weights * curvature), None

    def output_losses(self, F, y):
        positive = self._positive(y, F.shape[1])
        losses = np.logaddexp(0.0, np.where(positive, -F, F))
        weights = self._output_weights(positive)
        return (losses if weights is None else weights * losses).sum(axis=1)

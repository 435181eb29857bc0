"""Adapter for :class:`sklearn.linear_model.LogisticRegression` (L2 or no penalty).

Objective (scikit-learn's own, with ``s_i`` = sample weight x class weight)::

    F(theta) = C sum_i s_i l(y_i, f_i) + 1/2 ||W||^2,   f_i = W x_i + b

Binary models have one output ``f`` and ``l = log(1 + exp(f)) - y f`` with
``y`` in {0, 1}; multiclass models are multinomial (softmax over K outputs) and
``l = -log p_y``. The liblinear solver also penalises the intercept, through a
constant feature ``intercept_scaling``: ``1/2 (b / intercept_scaling)^2``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from ._base import class_weights
from ._linear import LinearModelAdapter


def logsumexp(F: np.ndarray, axis: int = 1, keepdims: bool = False) -> np.ndarray:
    """``log sum_k exp(F_k)`` along ``axis``, shifted by the largest ``F_k``
    (scipy's ``logsumexp`` without its per-call overhead: on a hot path)."""
    top = F.max(axis=axis, keepdims=True)
    total = top + np.log(np.exp(F - top).sum(axis=axis, keepdims=True))
    return total if keepdims else np.squeeze(total, axis=axis)


def check_multinomial(estimator) -> None:
    """Refuse one-vs-rest multiclass models and binary multinomial ones (their
    objective is not the one this adapter differentiates)."""
    name = type(estimator).__name__
    multi_class = getattr(estimator, "multi_class", "deprecated")  # sklearn < 1.8
    ovr = multi_class == "ovr" or (
        multi_class in ("auto", "deprecated") and estimator.solver == "liblinear"
    )
    n_classes = len(estimator.classes_)
    if n_classes > 2 and ovr:
        raise ValueError(
            f"One-vs-rest multiclass {name} is not supported; refit it as a "
            "multinomial model (the default with solver='lbfgs')."
        )
    if n_classes == 2 and multi_class == "multinomial":
        raise ValueError(
            f"A binary {name} fitted with multi_class='multinomial' is not "
            "supported; refit it with the default multi_class."
        )


class LogisticRegressionAdapter(LinearModelAdapter):
    estimator_types = (LogisticRegression,)
    objective = "C sum_i s_i l_i + 1/2 ||W||^2 (no penalty: C = inf, F = sum_i s_i l_i)"
    loss = "log-loss (binary: logistic; multiclass: multinomial softmax)"
    notes = (
        "L2 or no penalty; liblinear's penalised intercept; class_weight; "
        "multinomial intercept null direction handled exactly"
    )

    def check_estimator(self) -> None:
        est = self.estimator
        check_multinomial(est)
        penalty = getattr(est, "penalty", "deprecated")
        l1_ratio = getattr(est, "l1_ratio", None)
        if np.isinf(est.C) or penalty is None:
            return  # no penalty at all
        smooth = (
            (penalty == "deprecated" and l1_ratio in (None, 0))
            or penalty == "l2"
            or (penalty == "elasticnet" and l1_ratio == 0)
        )
        if not smooth:
            shown = f"penalty={penalty!r}, " if penalty != "deprecated" else ""
            raise ValueError(
                f"LogisticRegression with {shown}l1_ratio={l1_ratio!r} has an L1 "
                "(or elastic-net) penalty, which is not twice differentiable, so "
                "influence functions are not defined for it. Only the L2 penalty "
                "(l1_ratio=0) or no penalty (C=np.inf) is supported."
            )

    # -- parameters ------------------------------------------------------------------
    @property
    def coef(self):
        return np.asarray(self.estimator.coef_, dtype=float)

    @property
    def inverse_penalty(self) -> float:
        """``C``; ``np.inf`` for no penalty."""
        est = self.estimator
        return np.inf if getattr(est, "penalty", "l2") is None else float(est.C)

    @property
    def loss_scale(self):
        C = self.inverse_penalty
        return 1.0 if np.isinf(C) else C

    @property
    def weight_penalty(self):
        return 0.0 if np.isinf(self.inverse_penalty) else 1.0

    @property
    def intercept_penalty(self):
        est = self.estimator
        if est.solver == "liblinear" and not np.isinf(self.inverse_penalty):
            return 1.0 / est.intercept_scaling**2
        return 0.0

    @property
    def shift_invariant(self):
        return self.n_outputs > 1

    #: Solvers that minimise exactly the same objective as "newton-cg".
    _same_objective = frozenset(
        {"lbfgs", "newton-cg", "newton-cholesky", "sag", "saga"}
    )

    def retraining_updates(self, params, small):
        # Same objective, Newton convergence: the tolerance is really reached.
        # (Not "newton-cholesky": its warm start mis-sets multinomial
        # intercepts in scikit-learn 1.6.)
        if small and params.get("solver") in self._same_objective:
            return {"solver": "newton-cg"}
        return {}

    def sample_weights(self, y_encoded, sample_weight):
        """``s_i``: sample weight times the class weight of example i's class
        ("balanced" counts the sample weights, as scikit-learn does here)."""
        weights = super().sample_weights(y_encoded, sample_weight)
        return weights * class_weights(self.estimator, y_encoded, sample_weight)

    # -- the loss ----------------------------------------------------------------------
    def output_gradients(self, F, y):
        return log_loss_gradients(F, y)

    def output_residuals(self, F, y):
        """``p - e_y`` (binary: ``expit(f) - y``) without the care for tiny
        gradients that :meth:`output_gradients` takes (used in sums)."""
        if self.n_outputs == 1:
            return expit(F) - (y == 1)[:, None]
        proba = np.exp(F - F.max(axis=1, keepdims=True))
        proba /= proba.sum(axis=1, keepdims=True)
        proba[np.arange(len(y)), y] -= 1.0
        return proba

    def output_curvature(self, F, y):
        return log_loss_curvature(F)

    def output_losses(self, F, y):
        return log_losses(F, y)


# The log-loss as a function of the outputs F (n, K) (K = 1: one logistic output,
# y in {0, 1}; K > 1: softmax, y the class index); shared with the networks'
# adapter (:mod:`skrelatif._adapters.mlp`).
def log_loss_gradients(F: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``dl/df`` as (unit direction (n, K), norm (n,)), without cancellation."""
    if F.shape[1] == 1:
        # r = expit(f) - y: +expit(f) for y = 0 and -expit(-f) for y = 1.
        f = F[:, 0]
        positive = y == 1
        direction = np.where(positive, -1.0, 1.0)[:, None]
        return direction, expit(np.where(positive, -f, f))
    # r = p - e_y: p_k for k != y and -(sum of the other p_k) for the true class,
    # computed relative to the largest other log-probability so that neither
    # the direction nor the norm underflows or cancels.
    rows = np.arange(len(y))
    log_proba = F - logsumexp(F, axis=1, keepdims=True)
    log_proba[rows, y] = -np.inf
    top = log_proba.max(axis=1, keepdims=True)
    scaled = np.exp(log_proba - top)
    scaled[rows, y] = -scaled.sum(axis=1)
    size = np.linalg.norm(scaled, axis=1)
    return scaled / size[:, None], np.exp(top[:, 0]) * size


def log_loss_curvature(F: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``d²l/df² = diag(a) - b b^T`` as (a, b) (b None for one output)."""
    if F.shape[1] == 1:
        return (expit(F) * expit(-F)), None
    proba = np.exp(F - logsumexp(F, axis=1, keepdims=True))
    return proba, proba  # diag(p) - p p^T


def log_losses(F: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-example log-loss at outputs F."""
    if F.shape[1] == 1:
        f = F[:, 0]
        return np.logaddexp(0.0, np.where(y == 1, -f, f))
    return logsumexp(F, axis=1) - F[np.arange(len(y)), y]

"""One small fixture per supported estimator class, for the conformance suite
(``test_conformance.py``): a fitted model on its training data, test points
and the per-example loss written from the estimator's documented objective
(spec section 5) with scikit-learn's own outputs, independently of the
adapters.

A new model family adds its classes here (a ``Case`` each); the suite fails
for a registered class without one.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import (
    GammaRegressor,
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    PoissonRegressor,
    Ridge,
    RidgeClassifier,
    RidgeClassifierCV,
    RidgeCV,
    SGDClassifier,
    SGDRegressor,
    TweedieRegressor,
)
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.svm import SVC, LinearSVC, NuSVC
from threadpoolctl import threadpool_limits


@dataclass
class Case:
    """A fitted ``model`` on ``X, y``, test points ``X_test, y_test``, the
    reference per-example loss ``loss(model, X, y)`` (None: the family's loss
    has no reference here) and the prediction a regressor's explanation
    explains, ``prediction(model, X)`` (GLMs: the linear predictor)."""

    model: Any
    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    loss: Callable | None
    prediction: Callable = staticmethod(lambda model, X: model.predict(X))


def _classes(n_classes, n=60, d=4, seed=0):
    X, y = make_classification(
        n_samples=n + 12, n_features=d, n_informative=d, n_redundant=0,
        n_classes=n_classes, n_clusters_per_class=1, flip_y=0.05,
        class_sep=0.8, random_state=seed,
    )  # fmt: skip
    return X[:n], y[:n], X[n:], y[n:]


def _values(n=60, d=4, seed=0, positive=False):
    X, y = make_regression(n_samples=n + 12, n_features=d, noise=5.0, random_state=seed)
    X = X / X.std(axis=0)
    y = y / y.std()
    if positive:
        y = np.exp(0.3 * X[:, 0] + 0.2 * X[:, 1]) * np.random.RandomState(seed).gamma(
            4.0, 0.25, len(y)
        )
    return X[:n], y[:n], X[n:], y[n:]


def _log_loss(model, X, y):
    """``-log p_y``, from the decision function where there is one (no
    cancellation for examples fitted with near certainty)."""
    label = np.searchsorted(model.classes_, y)
    if not hasattr(model, "decision_function"):
        return -np.log(model.predict_proba(X)[np.arange(len(y)), label])
    F = model.decision_function(X)
    if F.ndim == 1:
        return np.logaddexp(0, -np.where(label == 1, 1.0, -1.0) * F)
    return logsumexp(F, axis=1) - F[np.arange(len(y)), label]


def _clipped_log_loss(model, X, y):
    """``-log max(p_y, eps)`` from ``predict_proba`` (k-neighbours: a label no
    neighbour has costs ``-log(eps)``, as ``sklearn.metrics.log_loss`` clips)."""
    label = np.searchsorted(model.classes_, y)
    p = model.predict_proba(X)[np.arange(len(y)), label]
    return -np.log(np.maximum(p, np.finfo(np.float64).eps))


def _ovr_log_loss(model, X, y):
    """Sum of the one-vs-rest binary log-losses (SGDClassifier's objective)."""
    F = model.decision_function(X)
    if F.ndim == 1:
        sign = np.where(y == model.classes_[1], 1.0, -1.0)
        return np.logaddexp(0, -sign * F)
    sign = np.where(y[:, None] == model.classes_[None, :], 1.0, -1.0)
    return np.logaddexp(0, -sign * F).sum(axis=1)


def _squared(model, X, y):
    return (y - model.predict(X)) ** 2


def _half_squared(model, X, y):
    return 0.5 * (y - model.predict(X)) ** 2


def _ridge_classifier(model, X, y):
    F = model.decision_function(X)
    if F.ndim == 1:
        return (np.where(y == model.classes_[1], 1.0, -1.0) - F) ** 2
    target = np.where(y[:, None] == model.classes_[None, :], 1.0, -1.0)
    return ((target - F) ** 2).sum(axis=1)


def _half_deviance(power):
    def loss(model, X, y):
        mu = model.predict(X)
        if power == 1:
            return y * np.log(np.where(y > 0, y / mu, 1.0)) - y + mu
        if power == 2:
            return np.log(mu / y) + y / mu - 1
        return (
            np.maximum(y, 0) ** (2 - power) / ((1 - power) * (2 - power))
            - y * mu ** (1 - power) / (1 - power)
            + mu ** (2 - power) / (2 - power)
        )

    return loss


def _proba_log_loss(model, X, y):
    """``-log p_y`` of ``predict_proba``, clipped below at the float64 epsilon
    (forests: a leaf's class fractions can be exactly 0)."""
    label = np.searchsorted(model.classes_, y)
    p = model.predict_proba(X)[np.arange(len(y)), label]
    return -np.log(np.maximum(p, np.finfo(np.float64).eps))


def _hinge(model, X, y):
    margin = np.where(y == model.classes_[1], 1.0, -1.0) * model.decision_function(X)
    return np.maximum(0.0, 1.0 - margin)


TIGHT = {"tol": 1e-12, "max_iter": 10_000}
NETWORK = {
    "hidden_layer_sizes": (3,), "activation": "tanh", "solver": "lbfgs",
    "alpha": 0.5, "tol": 1e-12, "max_iter": 20_000, "random_state": 0,
}  # fmt: skip

#: estimator class -> (estimator, data, reference loss)
CASES = {
    LogisticRegression: (LogisticRegression(C=0.5, tol=1e-12), 3, _log_loss),
    LogisticRegressionCV: (
        LogisticRegressionCV(Cs=3, tol=1e-12, cv=3, solver="newton-cg", **{
            key: value
            for key, value in {"l1_ratios": (0,), "scoring": "neg_log_loss",
                               "use_legacy_attributes": True}.items()
            if key in LogisticRegressionCV().get_params()
        }),
        2, _log_loss,
    ),
    Ridge: (Ridge(alpha=0.5), "values", _squared),
    RidgeCV: (RidgeCV(alphas=(0.1, 1.0)), "values", _squared),
    LinearRegression: (LinearRegression(), "values", _squared),
    RidgeClassifier: (RidgeClassifier(alpha=0.5), 3, _ridge_classifier),
    RidgeClassifierCV: (RidgeClassifierCV(alphas=(0.1, 1.0)), 2, _ridge_classifier),
    PoissonRegressor: (
        PoissonRegressor(alpha=0.1, **TIGHT), "positive", _half_deviance(1)
    ),
    GammaRegressor: (
        GammaRegressor(alpha=0.1, **TIGHT), "positive", _half_deviance(2)
    ),
    TweedieRegressor: (
        TweedieRegressor(power=1.5, alpha=0.1, **TIGHT), "positive",
        _half_deviance(1.5),
    ),
    SGDClassifier: (
        SGDClassifier(loss="log_loss", alpha=0.05, average=True, max_iter=5000,
                      tol=None, random_state=0),
        3, _ovr_log_loss,
    ),  # fmt: skip
    SGDRegressor: (
        SGDRegressor(alpha=0.05, average=True, max_iter=5000, tol=None,
                     random_state=0),
        "values", _half_squared,
    ),  # fmt: skip
    MLPClassifier: (MLPClassifier(**NETWORK), 3, _log_loss),
    MLPRegressor: (MLPRegressor(**NETWORK), "values", _half_squared),
    SVC: (SVC(kernel="rbf", C=1.0), 2, _hinge),
    NuSVC: (NuSVC(kernel="rbf", nu=0.5), 3, None),
    LinearSVC: (LinearSVC(C=0.5, max_iter=100_000), 2, _hinge),
    KNeighborsClassifier: (
        KNeighborsClassifier(n_neighbors=5, weights="distance"), 3, _clipped_log_loss
    ),
    KNeighborsRegressor: (KNeighborsRegressor(n_neighbors=4), "values", _squared),
    KernelRidge: (KernelRidge(alpha=0.5, kernel="rbf", gamma=0.3), "values", _squared),
    RandomForestClassifier: (
        RandomForestClassifier(n_estimators=8, min_samples_leaf=3, random_state=0),
        3, _proba_log_loss,
    ),
    RandomForestRegressor: (
        RandomForestRegressor(n_estimators=8, max_samples=0.8, random_state=0),
        "values", _squared,
    ),
    ExtraTreesClassifier: (
        ExtraTreesClassifier(n_estimators=8, max_depth=4, random_state=0),
        2, _proba_log_loss,
    ),
    ExtraTreesRegressor: (
        ExtraTreesRegressor(n_estimators=8, bootstrap=True, min_samples_leaf=2,
                            random_state=0),
        "values", _squared,
    ),
    HistGradientBoostingClassifier: (
        HistGradientBoostingClassifier(max_iter=8, max_leaf_nodes=4,
                                       l2_regularization=0.5),
        3, _log_loss,
    ),
    HistGradientBoostingRegressor: (
        HistGradientBoostingRegressor(max_iter=8, max_leaf_nodes=4),
        "values", _half_squared,
    ),
    GradientBoostingClassifier: (
        GradientBoostingClassifier(n_estimators=6, max_depth=2, random_state=0),
        2, _log_loss,
    ),
    GradientBoostingRegressor: (
        GradientBoostingRegressor(n_estimators=6, max_depth=2, subsample=0.8,
                                  random_state=0),
        "values", _half_squared,
    ),
}  # fmt: skip


@functools.cache
def case(estimator_class: type) -> Case:
    """The fitted fixture of ``estimator_class`` (KeyError: none yet), fitted
    once per test session (no test may modify it)."""
    estimator, data, loss = CASES[estimator_class]
    if data == "values":
        X, y, X_test, y_test = _values()
    elif data == "positive":
        X, y, X_test, y_test = _values(positive=True)
    else:
        X, y, X_test, y_test = _classes(data)
    # one OpenMP thread: the boosted trees' threads cost more than they save here
    with warnings.catch_warnings(), threadpool_limits(1, user_api="openmp"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = clone(estimator).fit(X, y)
    fixture = Case(model, X, y, X_test, y_test, loss)
    if data == "positive":  # log-link GLMs explain the linear predictor
        fixture.prediction = lambda model, X: np.log(model.predict(X))
    return fixture

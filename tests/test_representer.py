"""``decompose`` for the L2-penalised linear models (representer theorem,
``skrelatif._adapters._linear``).

References, independent of the adapters: each model's own
``decision_function`` / ``predict`` (the linear predictor for GLMs), and the
representer coefficients written from each estimator's documented objective
with scikit-learn's outputs (Ridge: ``s_i (y_i - f_i) / alpha``; logistic:
``-C s_i (p_i - y_i)``; GLMs: ``-s_i (mu_i - y_i) / (alpha sum(s))`` for the
canonical log link of Poisson).
"""

import warnings

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import (
    GammaRegressor,
    LinearRegression,
    LogisticRegression,
    PoissonRegressor,
    Ridge,
    RidgeClassifier,
    RidgeClassifierCV,
    RidgeCV,
    SGDClassifier,
    TweedieRegressor,
)

from skrelatif import InfluenceExplainer

TIGHT = {"solver": "newton-cholesky", "tol": 1e-12}


def _close(actual, expected, rtol=1e-10):
    scale = np.max(np.abs(expected))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def _data(kind):
    rng = np.random.RandomState(0)
    weights = rng.uniform(0.5, 2.0, 80)
    if kind in ("binary", "multiclass"):
        X, y = make_classification(
            80, 4, n_informative=3, n_redundant=0, random_state=0,
            n_classes=2 if kind == "binary" else 3, n_clusters_per_class=1,
        )  # fmt: skip
        return X, y, weights
    X, y = make_regression(80, 4, noise=3.0, random_state=0)
    X /= X.std(axis=0)
    if kind == "counts":
        y = rng.poisson(np.exp(0.3 * X[:, 0] + 0.2 * X[:, 1])) + 0.5
    return X, y / (1 if kind == "counts" else y.std()), weights


def _output(model, X):
    if hasattr(model, "decision_function"):
        return model.decision_function(X)
    if isinstance(model, (PoissonRegressor, GammaRegressor, TweedieRegressor)):
        return np.log(model.predict(X))  # the linear predictor (log link)
    return model.predict(X)


CASES = [
    (Ridge(alpha=0.7), "values"),
    (RidgeCV(alphas=(0.1, 1.0)), "values"),
    (RidgeClassifier(alpha=0.7), "binary"),
    (RidgeClassifierCV(alphas=(0.1, 1.0)), "multiclass"),
    (LogisticRegression(C=0.5, **TIGHT), "binary"),
    (LogisticRegression(C=0.5, **TIGHT), "multiclass"),
    (LogisticRegression(C=0.5, solver="liblinear", tol=1e-12), "binary"),
    (PoissonRegressor(alpha=0.1, **TIGHT), "counts"),
    (GammaRegressor(alpha=0.1, **TIGHT), "counts"),
    (TweedieRegressor(power=1.5, alpha=0.1, **TIGHT), "counts"),
]


@pytest.mark.parametrize("model, kind", CASES, ids=lambda v: repr(v)[:40])
def test_decompose_sums_to_the_decision_function(model, kind):
    X, y, weights = _data(kind)
    model.fit(X, y, sample_weight=weights)
    ex = InfluenceExplainer(model, method="if").fit(X, y, sample_weight=weights)
    with warnings.catch_warnings():
        # liblinear stops short of the minimum: it warns (its gap, 2.5e-8)
        liblinear = "liblinear" in repr(model)
        warnings.simplefilter("ignore" if liblinear else "error")
        parts = ex.decompose(X[:9])
    expected = _output(model, X[:9])
    assert parts.shape == (9, len(y), *expected.shape[1:])
    # liblinear stops short; RidgeCV's GCV solution is accurate to about 2e-8
    # in scikit-learn 1.6 (1e-10 in 1.9)
    generalised_cv = isinstance(model, (RidgeCV, RidgeClassifierCV))
    rtol = 1e-6 if liblinear else 1e-7 if generalised_cv else 1e-10
    _close(parts.sum(axis=1) + ex.baseline_, expected, rtol)


def test_ridge_coefficients_are_the_residuals_over_alpha():
    X, y, weights = _data("values")
    model = Ridge(alpha=0.7).fit(X, y, sample_weight=weights)
    ex = InfluenceExplainer(model).fit(X, y, sample_weight=weights)
    alpha = weights * (y - model.predict(X)) / 0.7
    _close(ex.decompose(X[:5]), alpha * (X[:5] @ X.T))
    assert ex.baseline_ == pytest.approx(model.intercept_)


def test_logistic_coefficients_are_minus_c_times_the_residuals():
    X, y, weights = _data("multiclass")
    model = LogisticRegression(C=0.5, **TIGHT).fit(X, y, sample_weight=weights)
    ex = InfluenceExplainer(model).fit(X, y, sample_weight=weights)
    residual = softmax(model.decision_function(X), axis=1) - np.eye(3)[y]
    expected = (
        -0.5 * weights[None, :, None] * residual[None] * (X[:5] @ X.T)[:, :, None]
    )
    _close(ex.decompose(X[:5]), expected)
    _close(ex.baseline_, model.intercept_)


def test_poisson_coefficients():
    X, y, weights = _data("counts")
    model = PoissonRegressor(alpha=0.1, **TIGHT).fit(X, y, sample_weight=weights)
    ex = InfluenceExplainer(model).fit(X, y, sample_weight=weights)
    alpha = -weights * (model.predict(X) - y) / (0.1 * weights.sum())
    _close(ex.decompose(X[:5]), alpha * (X[:5] @ X.T))


def test_a_model_stopped_early_warns_with_its_gap():
    X, y, _ = _data("multiclass")
    model = LogisticRegression(C=0.5, tol=1e-2, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
        ex = InfluenceExplainer(model).fit(X, y)
    with pytest.warns(UserWarning, match="not at the minimum"):
        ex.decompose(X[:3])


@pytest.mark.parametrize(
    "model, match",
    [
        (LinearRegression(), "unpenalised weights"),
        (Ridge(alpha=0.0), "unpenalised weights"),
        (LogisticRegression(C=np.inf), "unpenalised weights"),
        (SGDClassifier(loss="log_loss", random_state=0), "not offered"),
    ],
    ids=repr,
)
def test_models_without_a_decomposition_are_refused(model, match):
    X, y, _ = _data("binary")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
        ex = InfluenceExplainer(model, method="if", damping=1e-3).fit(X, y)
    with pytest.raises(ValueError, match=match):
        ex.decompose(X[:3])

"""Least squares (Ridge, RidgeCV, LinearRegression, RidgeClassifier(CV)) against
a dense reference written from the estimators' documented objective."""

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import load_diabetes, make_classification, make_regression
from sklearn.linear_model import (
    LinearRegression,
    Ridge,
    RidgeClassifier,
    RidgeClassifierCV,
    RidgeCV,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer

from . import _dense
from ._dense import assert_close

METHODS = ["if", "theta-relatif", "l-relatif"]


def _regression(n=60, d=4, seed=0):
    X, y = make_regression(n_samples=n + 10, n_features=d, noise=5.0, random_state=seed)
    return X[:n], y[:n], X[n:], y[n:]


def _reference(model, X, y, s, alpha, Xt, yt=None):
    """Explicit per-example gradients of l = (y - f)^2 and H of
    F = sum_i s_i l_i + alpha ||w||^2 (the intercept unpenalised)."""
    design = np.hstack([X, np.ones((len(X), 1))]) if model.fit_intercept else X
    design_t = np.hstack([Xt, np.ones((len(Xt), 1))]) if model.fit_intercept else Xt
    f, ft = model.predict(X), model.predict(Xt)
    G = (2 * (f - y))[:, None] * design
    # no y: minus the gradient of the prediction (positive = pushes it up)
    Gt = -design_t if yt is None else (2 * (ft - yt))[:, None] * design_t
    pen = np.full(design.shape[1], 2 * alpha)
    if model.fit_intercept:
        pen[-1] = 0
    H = 2 * (design.T * s) @ design + np.diag(pen)
    return G, Gt, H


@pytest.mark.parametrize("estimator", ["ridge", "ridgecv", "ols"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("given_y", [False, True])
def test_regressors_match_dense_reference(estimator, fit_intercept, weighted, given_y):
    X, y, Xt, yt = _regression()
    s = (
        np.random.RandomState(2).uniform(0.3, 3, len(y))
        if weighted
        else np.ones(len(y))
    )
    model = {
        "ridge": Ridge(alpha=3.0, fit_intercept=fit_intercept),
        "ridgecv": RidgeCV(alphas=[0.1, 1.0, 10.0], fit_intercept=fit_intercept),
        "ols": LinearRegression(fit_intercept=fit_intercept),
    }[estimator].fit(X, y, sample_weight=s)
    alpha = {"ridge": 3.0, "ols": 0.0}.get(estimator, getattr(model, "alpha_", 0))
    G, Gt, H = _reference(model, X, y, s, alpha, Xt, yt if given_y else None)
    for method in METHODS:
        ex = InfluenceExplainer(model, method=method).fit(X, y, sample_weight=s)
        expected, self_influence = _dense.scores_from(G, Gt, H, s, method)
        assert_close(ex.transform(Xt, yt if given_y else None), expected)
        assert_close(ex.self_influence_, self_influence)
        e = ex.explain(Xt, yt if given_y else None, k=3)
        np.testing.assert_allclose(e.target, yt if given_y else model.predict(Xt))


def test_prediction_sign_and_first_order_change():
    """No y: "if" is minus the first-order change of the prediction when i is
    removed (positive = i pushes the prediction up). For least squares the
    exact change is the first-order one divided by ``1 - h_i`` (``h_i`` the
    leverage ``2 x̃_i^T H^-1 x̃_i``), checked here by refitting without i."""
    X, y, Xt, _ = _regression(n=40, seed=3)
    model = Ridge(alpha=1.0).fit(X, y)
    scores = InfluenceExplainer(model, method="if").fit(X, y).transform(Xt)
    design = np.hstack([X, np.ones((len(X), 1))])
    H = 2 * design.T @ design + np.diag(np.r_[np.full(X.shape[1], 2.0), 0.0])
    for i in (0, 7, 21):
        refit = Ridge(alpha=1.0).fit(np.delete(X, i, 0), np.delete(y, i))
        change = refit.predict(Xt) - model.predict(Xt)
        leverage = 2 * design[i] @ np.linalg.solve(H, design[i])
        np.testing.assert_allclose(-scores[:, i] / (1 - leverage), change, rtol=1e-6)


@pytest.mark.parametrize("cls", [RidgeClassifier, RidgeClassifierCV])
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_ridge_classifiers_match_dense_reference(cls, n_classes, class_weight):
    X, y = make_classification(
        n_samples=80, n_features=5, n_informative=4, n_redundant=0,
        n_classes=n_classes, random_state=1,
    )  # fmt: skip
    X, Xt, y = X[:70], X[70:], y[:70]
    kwargs = {"alphas": [0.3, 3.0]} if cls is RidgeClassifierCV else {"alpha": 2.0}
    model = cls(class_weight=class_weight, **kwargs).fit(X, y)
    alpha = model.alpha_ if cls is RidgeClassifierCV else 2.0
    K = 1 if n_classes == 2 else n_classes
    Y = (2.0 * (y == 1) - 1)[:, None] if K == 1 else 2.0 * np.eye(K)[y] - 1
    s = np.ones(len(y))
    if class_weight == "balanced":
        s = len(y) / (n_classes * np.bincount(y))[y]
    design = np.hstack([X, np.ones((len(X), 1))])
    F = design @ np.column_stack([np.atleast_2d(model.coef_), model.intercept_]).T
    G = np.array([np.kron(2 * (f - t), x) for f, t, x in zip(F, Y, design)])
    pred = model.predict(Xt)
    design_t = np.hstack([Xt, np.ones((len(Xt), 1))])
    Ft = design_t @ np.column_stack([np.atleast_2d(model.coef_), model.intercept_]).T
    Yt = (2.0 * (pred == 1) - 1)[:, None] if K == 1 else 2.0 * np.eye(K)[pred] - 1
    Gt = np.array([np.kron(2 * (f - t), x) for f, t, x in zip(Ft, Yt, design_t)])
    pen = np.tile(np.r_[np.full(X.shape[1], 2 * alpha), 0.0], K)
    H = np.kron(np.eye(K), 2 * (design.T * s) @ design) + np.diag(pen)
    for method in METHODS:
        ex = InfluenceExplainer(model, method=method).fit(X, y)
        expected, self_influence = _dense.scores_from(G, Gt, H, s, method)
        assert_close(ex.transform(Xt), expected)
        assert_close(ex.self_influence_, self_influence)


def test_ridge_if_agrees_with_exact_leave_one_out_on_diabetes():
    """Closed-form exact leave-one-out of ridge: the change of the held-out
    prediction; "if" (first order) correlates with it at Pearson >= 0.99."""
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X, y, Xt, yt = X[:300], y[:300], X[300:340], y[300:340]
    model = Ridge(alpha=1.0).fit(X, y)
    scores = InfluenceExplainer(model, method="if").fit(X, y).transform(Xt, yt)
    design = np.hstack([X, np.ones((len(X), 1))])
    pen = np.diag(np.r_[np.full(X.shape[1], 1.0), 0.0])
    A = design.T @ design + pen
    theta = np.linalg.solve(A, design.T @ y)
    design_t = np.hstack([Xt, np.ones((len(Xt), 1))])
    base = (yt - design_t @ theta) ** 2
    actual = np.empty_like(scores)
    for i in range(len(y)):  # closed form: refit without row i (rank-one downdate)
        keep = np.arange(len(y)) != i
        th = np.linalg.solve(
            A - np.outer(design[i], design[i]), design[keep].T @ y[keep]
        )
        actual[:, i] = (yt - design_t @ th) ** 2 - base
    r = np.corrcoef(scores.ravel(), actual.ravel())[0, 1]
    assert r >= 0.99, r


def test_pipeline_sparse_float32_and_options():
    X, y, Xt, yt = _regression(n=80, d=6, seed=5)
    model = make_pipeline(StandardScaler(), Ridge(alpha=0.5)).fit(X, y)
    ref = InfluenceExplainer(model).fit(X, y).transform(Xt)
    for solver in ("cg", "block-diagonal"):
        got = InfluenceExplainer(model, solver=solver).fit(X, y).transform(Xt)
        assert_close(got, ref, rtol=1e-6)
    Xs = StandardScaler().fit_transform(X)
    plain = Ridge(alpha=0.5).fit(Xs, y)
    dense = InfluenceExplainer(plain).fit(Xs, y).transform(Xs[:5])
    sp = InfluenceExplainer(plain).fit(sparse.csr_matrix(Xs), y)
    assert_close(sp.transform(sparse.csr_matrix(Xs[:5])), dense)
    f32 = InfluenceExplainer(plain).fit(Xs.astype(np.float32), y)
    assert_close(f32.transform(Xs[:5].astype(np.float32)), dense, rtol=1e-4)


def test_bad_models_get_clear_errors():
    X, y, _, _ = _regression()
    with pytest.raises(ValueError, match="positive=True"):
        InfluenceExplainer(LinearRegression(positive=True).fit(X, y)).fit(X, y)
    Y = np.column_stack([y, -y])
    with pytest.raises(ValueError, match="one output at a time"):
        InfluenceExplainer(Ridge().fit(X, Y)).fit(X, y)
    collinear = np.column_stack([X, X[:, 0]])
    ols = LinearRegression().fit(collinear, y)
    with pytest.raises(ValueError, match="damping"):
        InfluenceExplainer(ols, damping=0).fit(collinear, y)
    ok = InfluenceExplainer(ols, damping=1e-3).fit(collinear, y)
    assert np.isfinite(ok.transform(collinear[:3])).all()

"""``solver="data-space"``: the exact inverse through the n K x n K Gram
system (issue 21), against dense brute force in parameter space."""

import numpy as np
import pytest
from scipy import sparse
from scipy.special import expit, softmax
from sklearn.linear_model import (
    LogisticRegression,
    PoissonRegressor,
    Ridge,
    RidgeClassifier,
)
from sklearn.neural_network import MLPClassifier

from skrelatif import InfluenceExplainer
from skrelatif._solvers import _dataspace

from . import _dense
from ._dense import fitted_state


def _wide(n_classes, *, n=40, n_features=60, seed=0, density=0.3):
    """A wide problem (n K < P): sparse-looking Gaussian features."""
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n + 8, n_features))
    X *= rng.uniform(size=X.shape) < density
    y = rng.randint(0, n_classes, n + 8)
    X[np.arange(n + 8), y] += 2.0  # a signal, so that the fit is not trivial
    return X[:n], y[:n], X[n:], y[n:]


def _assert_close(actual, expected, rtol=1e-8):
    """Relative per entry plus an absolute term scaled by the largest entry."""
    expected = np.asarray(expected)
    np.testing.assert_allclose(
        actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max()
    )


@pytest.mark.parametrize("method", ["if", "theta-relatif", "l-relatif"])
@pytest.mark.parametrize(
    "n_classes, fit_intercept, sparse_input, weights, damping",
    [
        (2, True, False, None, 0.0),
        (2, True, True, "sample", 0.0),
        (2, False, False, "class", 0.0),
        (3, True, False, "both", 0.0),
        (3, True, True, None, 0.0),
        (3, False, True, "sample", 0.0),
        (4, True, False, None, 0.05),
    ],
)
def test_matches_dense_brute_force(
    method, n_classes, fit_intercept, sparse_input, weights, damping
):
    X, y, X_test, _ = _wide(n_classes)
    sw, class_weight = _dense.weights_case(weights, len(y), n_classes)
    model = LogisticRegression(
        C=2.0, fit_intercept=fit_intercept, class_weight=class_weight, tol=1e-12,
        max_iter=10_000,
    ).fit(X, y, sample_weight=sw)  # fmt: skip
    data = sparse.csr_matrix(X) if sparse_input else X
    test = sparse.csr_matrix(X_test) if sparse_input else X_test
    ex = InfluenceExplainer(model, method=method, solver="data-space", damping=damping)
    ex.fit(data, y, sample_weight=sw)
    assert ex.solver_ == "data-space"
    assert ex.normaliser_error_ is None  # exact
    expected, self_influence = _dense.scores(
        model, X, y, X_test, model.predict(X_test), method, sw, damping=damping
    )
    _assert_close(ex.transform(test), expected)
    _assert_close(ex.self_influence_, self_influence)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_examples_fitted_with_near_certainty_and_zero_weight(n_classes):
    """The training blocks of examples whose curvature is tiny (probabilities
    within 1e-7 ... 1e-26 of 1) or zero (weight 0) are computed without the
    cancellation of ``I - M^-1``: their RelatIF normalisers agree per example."""
    X, y, X_test, _ = _wide(n_classes, n=50, seed=1)
    model = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(X, y)
    W = np.atleast_2d(model.coef_)
    for i in range(8):
        target = W[0] * (2 * y[i] - 1) if n_classes == 2 else W[y[i]] - W.mean(0)
        X[i] = target / np.linalg.norm(target) * (5 + 3 * i)
    sw = np.ones(len(y))
    sw[10] = 0.0
    model = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000)
    model.fit(X, y, sample_weight=sw)
    assert np.sum(1 - model.predict_proba(X[:8]).max(axis=1) < 1e-7) >= 4
    ex = InfluenceExplainer(model, method="l-relatif", solver="data-space")
    ex.fit(X, y, sample_weight=sw)
    assert fitted_state(ex).solver_.n_direct_ >= 3
    # the normalisers sqrt(ĝ^T H^-1 ĝ) per example, brute force
    H = _dense.hessian(model, X, y, sw)
    direction = fitted_state(ex).direction_
    # ĝ_i = d_i ⊗ x̃_i with the package's unit residual direction d_i
    Xd = _dense.design(model, X)
    G_hat = np.einsum("ik,id->ikd", direction, Xd).reshape(len(X), -1)
    quad = np.einsum("ij,ij->i", G_hat @ _dense.inverse(H, model), G_hat)
    _assert_close(1 / fitted_state(ex).train_scale_, np.sqrt(quad), 1e-9)
    assert np.all(np.isfinite(ex.transform(X_test)))


def _newton_brute_force(model, X, y, sw, X_test, y_test):
    """Newton leave-one-out: theta_i = theta* + H_-i^+ (w_i g_i), the test and
    own losses at theta_i (LogisticRegression: no penalty renormalisation)."""
    theta = np.column_stack([np.atleast_2d(model.coef_), model.intercept_]).ravel()
    H = _dense.hessian(model, X, y, sw)
    R, D = _dense.residuals_and_curvature(model, X, y)
    Xd = _dense.design(model, X)
    w = model.C * sw
    K = R.shape[1]

    def loss(th, Xs, ys):
        F = _dense.design(model, Xs) @ th.reshape(K, -1).T
        if K == 1:
            p = expit(F[:, 0])
            return -np.log(np.where(ys == 1, p, 1 - p))
        return -np.log(softmax(F, axis=1)[np.arange(len(ys)), ys])

    scores, loo = np.empty((len(X_test), len(X))), np.empty(len(X))
    for i in range(len(X)):
        H_i = H - w[i] * np.kron(D[i], np.outer(Xd[i], Xd[i]))
        step = np.linalg.pinv(H_i, hermitian=True) @ (w[i] * np.kron(R[i], Xd[i]))
        th = theta + step
        scores[:, i] = loss(th, X_test, y_test) - loss(theta, X_test, y_test)
        loo[i] = loss(th, X[i : i + 1], y[i : i + 1])[0]
    return scores, loo


@pytest.mark.parametrize("n_classes", [2, 3])
def test_newton_and_loo_loss_match_brute_force(n_classes):
    X, y, X_test, _ = _wide(n_classes, n=30, n_features=40, seed=2)
    sw = np.random.RandomState(3).uniform(0.5, 2.0, len(y))
    model = LogisticRegression(C=1.5, tol=1e-12, max_iter=10_000)
    model.fit(X, y, sample_weight=sw)
    ex = InfluenceExplainer(model, method="newton", solver="data-space")
    ex.fit(sparse.csr_matrix(X), y, sample_weight=sw)
    y_test = model.predict(X_test)
    expected, loo = _newton_brute_force(model, X, y, sw, X_test, y_test)
    _assert_close(ex.transform(sparse.csr_matrix(X_test)), expected, 1e-7)
    _assert_close(ex.loo_loss_, loo, 1e-7)


@pytest.mark.parametrize(
    "model",
    [
        Ridge(alpha=0.7),
        RidgeClassifier(alpha=0.5),
        PoissonRegressor(alpha=0.05, tol=1e-12, max_iter=10_000),
    ],
    ids=["ridge", "ridge-classifier", "poisson"],
)
@pytest.mark.parametrize("method", ["l-relatif", "newton"])
def test_other_linear_families_match_cholesky(model, method):
    """Other linear families through the same operator, against the dense
    factorisation in parameter space (itself tested against brute force)."""
    rng = np.random.RandomState(4)
    X = rng.standard_normal((30, 45)) * (rng.uniform(size=(30, 45)) < 0.4)
    if isinstance(model, RidgeClassifier):
        y = rng.randint(0, 3, 30)
        X[np.arange(30), y] += 1.0
    else:
        y = np.exp(0.3 * X[:, 0] + 0.2 * rng.standard_normal(30)).round(0)
    model.fit(X, y)
    X_test = rng.standard_normal((5, 45))
    exact = InfluenceExplainer(model, method=method, solver="cholesky").fit(X, y)
    data = InfluenceExplainer(model, method=method, solver="data-space").fit(X, y)
    _assert_close(data.transform(X_test), exact.transform(X_test))
    _assert_close(data.self_influence_, exact.self_influence_)


def test_auto_chooses_data_space_for_wide_sparse_binary():
    rng = np.random.RandomState(5)
    X = sparse.random(100, 6000, density=0.005, format="csr", random_state=rng)
    y = rng.randint(0, 2, 100)
    model = LogisticRegression(C=10.0, tol=1e-10).fit(X, y)
    ex = InfluenceExplainer(model, method="l-relatif").fit(X, y)
    assert ex.solver_ == "data-space"


def test_unpenalised_parameters_by_their_schur_complement(monkeypatch):
    """A few unpenalised weights (C=np.inf) are exact through their Schur
    complement; too many need damping."""
    X, y, X_test, _ = _wide(3)
    X = X[:, 10:13]  # no signal, not separable: the unpenalised fit has a minimum
    model = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, y)
    ex = InfluenceExplainer(model, solver="data-space", damping=0.0).fit(X, y)
    expected, self_influence = _dense.scores(
        model, X, y, X_test[:, 10:13], model.predict(X_test[:, 10:13]), "l-relatif"
    )
    _assert_close(ex.transform(X_test[:, 10:13]), expected)
    _assert_close(ex.self_influence_, self_influence)
    monkeypatch.setattr(_dataspace, "MAX_UNPENALISED", 5)
    with pytest.raises(ValueError, match="damping > 0"):
        InfluenceExplainer(model, solver="data-space", damping=0.0).fit(X, y)


def test_refused_for_networks_and_too_large_gram(monkeypatch):
    X, y, _, _ = _wide(2)
    network = MLPClassifier((3,), max_iter=50, random_state=0)
    with pytest.raises(ValueError, match='solver="data-space" does not apply'):
        InfluenceExplainer(network, solver="data-space").fit(X, y)
    model = LogisticRegression().fit(X, y)
    monkeypatch.setattr(_dataspace, "available_memory", lambda: 1000)
    with pytest.raises(MemoryError, match=r"40 x 40 Gram matrix"):
        InfluenceExplainer(model, solver="data-space").fit(X, y)


def test_cg_reports_the_residual_it_achieved():
    """``residual_`` of ``solver="cg"`` is the relative residual of its
    solutions, against the dense Hessian."""
    X, y, X_test, _ = _wide(3, seed=6)
    model = LogisticRegression(C=3.0, tol=1e-12, max_iter=10_000).fit(X, y)
    ex = InfluenceExplainer(
        model, method="if", solver="cg", solver_options={"tol": 1e-6}
    ).fit(X, y)
    state = fitted_state(ex)
    Gt = state.test_gradients(X_test, model.predict(X_test))
    solved = state.solver_.solve(Gt)
    H = _dense.hessian(model, X, y)
    residual = np.linalg.norm(solved @ H - Gt, axis=1) / np.linalg.norm(Gt, axis=1)
    assert residual.max() < 1e-6
    np.testing.assert_allclose(state.solver_.residual_, residual.max(), rtol=1e-6)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("head", [0, 7])
def test_sparse_kernel_split_into_dense_head_and_sparse_tail(
    n_classes, head, monkeypatch
):
    """The kernel of sparse data as a dense syrk over its densest columns
    plus a sparse product over the rest (forced split) is exact."""
    monkeypatch.setattr(_dataspace, "_dense_head", lambda df, n: head)
    X, y, X_test, _ = _wide(n_classes, seed=7)
    model = LogisticRegression(C=2.0, tol=1e-12, max_iter=10_000).fit(X, y)
    ex = InfluenceExplainer(model, method="l-relatif", solver="data-space")
    ex.fit(sparse.csr_matrix(X), y)
    expected, self_influence = _dense.scores(
        model, X, y, X_test, model.predict(X_test), "l-relatif"
    )
    _assert_close(ex.transform(sparse.csr_matrix(X_test)), expected)
    _assert_close(ex.self_influence_, self_influence)


def test_dense_head_balances_syrk_and_sparse_product():
    # two columns in every row, the rest in one row each: the head is the two
    df = np.array([10_000, 10_000] + [1] * 5000)
    assert _dataspace._dense_head(df, 10_000) == 2

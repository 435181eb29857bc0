"""Poisson, Gamma and Tweedie GLMs against a dense reference written from the
estimators' documented objective

    F = 1/sum(s) sum_i s_i l_i + alpha/2 ||w||^2,   l_i the half unit deviance,

with the deviances and their derivatives with respect to the linear predictor
written out here (independently of scikit-learn's loss objects) and checked
against finite differences."""

import warnings

import numpy as np
import pytest
from scipy import sparse
from scipy.stats import pearsonr
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import GammaRegressor, PoissonRegressor, TweedieRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skrelatif import InfluenceExplainer
from skrelatif.validation import leave_one_out

from . import _dense
from ._dense import assert_close, fitted_state

METHODS = ["if", "theta-relatif", "l-relatif"]
TIGHT = {"tol": 1e-12, "max_iter": 10_000}

# name: (estimator, Tweedie power q, link)
FAMILIES = {
    "poisson": (PoissonRegressor(alpha=0.1, **TIGHT), 1.0, "log"),
    "gamma": (GammaRegressor(alpha=0.1, **TIGHT), 2.0, "log"),
    "tweedie-1.5-log": (TweedieRegressor(power=1.5, alpha=0.1, **TIGHT), 1.5, "log"),
    "tweedie-0-auto": (TweedieRegressor(power=0, alpha=0.1, **TIGHT), 0.0, "identity"),
    "tweedie-1.5-identity": (
        TweedieRegressor(power=1.5, link="identity", alpha=0.1, **TIGHT),
        1.5,
        "identity",
    ),
    # negative curvature (y < mu / 2) for many examples
    "tweedie-3-log": (TweedieRegressor(power=3, alpha=0.1, **TIGHT), 3.0, "log"),
}


@pytest.fixture(autouse=True)
def _one_thread():
    """The problems are tiny: OpenMP / BLAS threads (scikit-learn's GLM losses)
    only oversubscribe a busy machine, making the fits ~20x slower."""
    with threadpool_limits(limits=1):
        yield


# -- the family's mathematics, by hand ------------------------------------------------
def half_deviance(y, mu, q):
    """Half the Tweedie unit deviance with power q (0 where mu = y)."""
    if q == 0:
        return (y - mu) ** 2 / 2
    if q == 1:
        ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
        return ylogy - y + mu
    if q == 2:
        return np.log(mu / y) + y / mu - 1
    return (
        np.maximum(y, 0) ** (2 - q) / ((1 - q) * (2 - q))
        - y * mu ** (1 - q) / (1 - q)
        + mu ** (2 - q) / (2 - q)
    )


def mean(eta, link):
    return np.exp(eta) if link == "log" else eta


def derivatives(y, eta, q, link):
    """dl/deta and d2l/deta2 from dl/dmu = (mu - y) / mu^q and the chain rule."""
    mu = mean(eta, link)
    if link == "log":  # dmu/deta = mu
        return mu ** (1 - q) * (mu - y), mu ** (1 - q) * ((2 - q) * mu - (1 - q) * y)
    return (mu - y) / mu**q, ((1 - q) * mu + q * y) / mu ** (q + 1)


def _data(q, link, n=60, d=4, n_test=10, seed=0):
    """Targets in the family's range; means kept positive for identity links."""
    rng = np.random.RandomState(seed)
    X = 0.5 * rng.standard_normal((n + n_test, d))
    w = rng.uniform(-0.5, 0.5, d)
    if link == "identity" and q == 0:
        y = 1.0 + X @ w + 0.5 * rng.standard_normal(n + n_test)
    elif link == "identity":  # a positive feature: mu > 0 without intercept too
        X[:, 0] = 1.0 + 0.1 * X[:, 0]
        y = rng.gamma(4.0, (3.0 * X[:, 0] + X[:, 1:] @ w[1:]) / 4.0)
    elif q < 2:
        y = rng.poisson(np.exp(0.5 + X @ w)).astype(float)
    else:
        y = rng.gamma(2.0, np.exp(0.5 + X @ w) / 2.0)
    return X[:n], y[:n], X[n:], y[n:]


def _eta(model, X):
    return X @ model.coef_ + model.intercept_


def _reference(model, q, link, X, y, s, Xt, yt=None):
    """Explicit per-example gradients dl/deta x̃ and the Hessian
    c sum_i s_i d2l_i x̃ x̃^T + diag(alpha, 0 on the intercept), c = 1/sum(s)."""
    design = np.hstack([X, np.ones((len(X), 1))]) if model.fit_intercept else X
    design_t = np.hstack([Xt, np.ones((len(Xt), 1))]) if model.fit_intercept else Xt
    r, curvature = derivatives(y, _eta(model, X), q, link)
    G = r[:, None] * design
    if yt is None:  # minus the gradient of the linear predictor
        Gt = -design_t
    else:
        Gt = derivatives(yt, _eta(model, Xt), q, link)[0][:, None] * design_t
    c = 1.0 / s.sum()
    pen = np.full(design.shape[1], model.alpha)
    if model.fit_intercept:
        pen[-1] = 0
    H = c * (design.T * (s * curvature)) @ design + np.diag(pen)
    return G, Gt, H, c * s


# -- tests -----------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_hand_derivatives_match_finite_differences_and_the_adapter(family):
    estimator, q, link = FAMILIES[family]
    X, y, _, _ = _data(q, link)
    model = clone(estimator).fit(X, y)
    eta = _eta(model, X)
    h = 1e-5
    r, curvature = derivatives(y, eta, q, link)

    def loss(e):
        return half_deviance(y, mean(e, link), q)

    np.testing.assert_allclose(r, (loss(eta + h) - loss(eta - h)) / (2 * h), atol=1e-7)
    fd2 = (loss(eta + h) - 2 * loss(eta) + loss(eta - h)) / h**2
    np.testing.assert_allclose(curvature, fd2, rtol=1e-4, atol=1e-4)
    assert np.all(loss(eta) >= 0)  # a deviance: 0 only where mu = y
    positive = y[y > 0]
    np.testing.assert_allclose(half_deviance(positive, positive, q), 0, atol=1e-12)

    ex = InfluenceExplainer(model).fit(X, y)
    adapter = fitted_state(ex).adapter
    direction, norm = adapter.loss_gradients(X, y)
    np.testing.assert_allclose(direction[:, 0] * norm, r, rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(direction[:, 0], np.sign(r))
    np.testing.assert_allclose(adapter.losses(X, y), loss(eta), rtol=1e-10, atol=1e-12)
    a, b = adapter.output_curvature(eta[:, None], y)
    own = a[:, 0] if b is None else a[:, 0] - b[:, 0] ** 2
    np.testing.assert_allclose(own, curvature, rtol=1e-10, atol=1e-13)
    if family == "tweedie-3-log":
        assert np.any(curvature < 0) and b is not None


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("given_y", [False, True])
def test_glms_match_dense_reference(family, fit_intercept, weighted, given_y):
    estimator, q, link = FAMILIES[family]
    X, y, Xt, yt = _data(q, link)
    s = (
        np.random.RandomState(2).uniform(0.3, 3, len(y))
        if weighted
        else np.ones(len(y))
    )
    model = clone(estimator).set_params(fit_intercept=fit_intercept)
    if link == "identity" and q > 0 and not fit_intercept:
        # scikit-learn starts at coef = 0, i.e. mu = 0, outside the deviance's
        # domain: start from a positive mean instead
        model.set_params(warm_start=True).coef_ = np.r_[y.mean(), np.zeros(3)]
    model.fit(X, y, sample_weight=s)
    target = yt if given_y else None
    G, Gt, H, weights = _reference(model, q, link, X, y, s, Xt, target)
    for method in METHODS:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # at the optimum
            ex = InfluenceExplainer(model, method=method).fit(X, y, sample_weight=s)
        expected, self_influence = _dense.scores_from(G, Gt, H, weights, method)
        assert_close(ex.transform(Xt, target), expected)
        assert_close(ex.self_influence_, self_influence)
        e = ex.explain(Xt, target, k=3)
        np.testing.assert_allclose(e.target, yt if given_y else _eta(model, Xt))


@pytest.mark.parametrize("family", ["poisson", "tweedie-3-log"])
def test_hessian_options(family):
    estimator, q, link = FAMILIES[family]
    X, y, Xt, yt = _data(q, link, n=80)
    model = clone(estimator).fit(X, y)
    G, Gt, H, weights = _reference(model, q, link, X, y, np.ones(len(y)), Xt, yt)
    for method in METHODS:
        expected, _ = _dense.scores_from(G, Gt, H, weights, method)
        for solver, rtol in (
            ("cholesky", 1e-8),
            ("block-diagonal", 1e-8),
            ("cg", 1e-6),
        ):
            ex = InfluenceExplainer(model, method=method, solver=solver).fit(X, y)
            assert_close(ex.transform(Xt, yt), expected, rtol=rtol)
        identity, _ = _dense.scores_from(G, Gt, np.eye(len(H)), weights, method)
        ex = InfluenceExplainer(model, method=method, hessian="identity").fit(X, y)
        assert_close(ex.transform(Xt, yt), identity)
    lissa = InfluenceExplainer(
        model,
        method="if",
        solver="lissa",
        solver_options={"depth": 300, "batch_size": 80, "scale": 2.5},
    ).fit(X, y)
    scores = lissa.transform(Xt, yt)
    assert np.all(np.isfinite(scores))
    expected, _ = _dense.scores_from(G, Gt, H, weights, "if")
    # full batches, scale > largest eigenvalue of H (< 2 here): the Neumann
    # series of LiSSA converges to H^-1
    assert_close(scores, expected, rtol=1e-6)


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cholesky"])
def test_solvers_minimise_the_same_objective(solver):
    estimator, q, link = FAMILIES["gamma"]
    X, y, Xt, yt = _data(q, link)
    model = clone(estimator).set_params(solver=solver).fit(X, y)
    G, Gt, H, weights = _reference(model, q, link, X, y, np.ones(len(y)), Xt, yt)
    expected, _ = _dense.scores_from(G, Gt, H, weights, "l-relatif")
    assert_close(InfluenceExplainer(model).fit(X, y).transform(Xt, yt), expected)


def test_unfitted_model_is_fitted_and_explained():
    estimator, q, link = FAMILIES["poisson"]
    X, y, Xt, _ = _data(q, link)
    ex = InfluenceExplainer(clone(estimator), method="if").fit(X, y)
    model = clone(estimator).fit(X, y)
    G, Gt, H, weights = _reference(model, q, link, X, y, np.ones(len(y)), Xt)
    assert_close(ex.transform(Xt), _dense.scores_from(G, Gt, H, weights, "if")[0])


def test_pipeline_sparse_and_float32():
    estimator, q, link = FAMILIES["poisson"]
    X, y, Xt, yt = _data(q, link, n=80, d=6, seed=5)
    X, Xt = 3 * X + 1, 3 * Xt + 1
    model = make_pipeline(StandardScaler(), clone(estimator)).fit(X, y)
    scaler, plain = model[0], model[-1]
    got = InfluenceExplainer(model).fit(X, y).transform(Xt, yt)
    direct = InfluenceExplainer(plain).fit(scaler.transform(X), y)
    assert_close(got, direct.transform(scaler.transform(Xt), yt))
    Xs = scaler.transform(X)
    dense = direct.transform(Xs[:5])
    sp = InfluenceExplainer(plain).fit(sparse.csr_matrix(Xs), y)
    assert_close(sp.transform(sparse.csr_matrix(Xs[:5])), dense)
    assert_close(sp.self_influence_, direct.self_influence_)
    f32 = InfluenceExplainer(plain).fit(Xs.astype(np.float32), y)
    assert_close(f32.transform(Xs[:5].astype(np.float32)), dense, rtol=1e-4)


def _count_problem(n=200, d=5, n_test=20, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n + n_test, d))
    w = rng.uniform(-0.4, 0.4, d)
    y = rng.poisson(np.exp(0.5 + X @ w)).astype(float)
    return X[:n], y[:n], X[n:], y[n:]


def _refit_changes(model, X, y, Xt, yt, removed):
    """Actual change of the test losses (half Poisson deviance; ``yt=None``:
    minus the linear predictor) when each of ``removed`` is dropped and the
    model refit from scratch."""

    def losses(fitted):
        if yt is None:
            return -_eta(fitted, Xt)
        return half_deviance(yt, fitted.predict(Xt), 1.0)

    before = losses(model)
    changes = np.empty((len(Xt), len(removed)))
    for j, i in enumerate(removed):
        refit = clone(model).fit(np.delete(X, i, axis=0), np.delete(y, i))
        changes[:, j] = losses(refit) - before
    return changes


@pytest.mark.slow
@pytest.mark.parametrize("given_y", [True, False])
def test_poisson_if_agrees_with_refits(given_y):
    """Issue acceptance: "if" against the actual change of the test losses
    (or of the linear predictor) when each of 40 examples is removed and the
    model refit (measured: Pearson r = 0.9996 with y)."""
    X, y, Xt, yt = _count_problem()
    model = PoissonRegressor(alpha=1e-2, **TIGHT).fit(X, y)
    removed = np.arange(0, 200, 5)
    target = yt if given_y else None
    predicted = InfluenceExplainer(model, method="if").fit(X, y).transform(Xt, target)
    actual = _refit_changes(model, X, y, Xt, target, removed)
    r = pearsonr(predicted[:, removed].ravel(), actual.ravel())[0]
    assert r >= 0.99, r


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["newton-cholesky", "lbfgs"])
def test_leave_one_out_refit_agrees_with_own_refits(solver):
    """validation.leave_one_out(solver="refit") refits through scikit-learn
    (warm-started). lbfgs stops on scikit-learn's fixed relative decrease of
    the objective (ftol = 64 eps) before tol = 1e-12 is reached, so its
    warm-started refits differ from refits from scratch by ~3e-6 of the
    largest change; Newton refits agree to ~1e-11."""
    X, y, Xt, yt = _count_problem()
    model = PoissonRegressor(alpha=1e-2, solver=solver, **TIGHT).fit(X, y)
    removed = np.arange(0, 200, 20)
    ex = InfluenceExplainer(model, method="if").fit(X, y)
    rtol = 1e-6 if solver == "newton-cholesky" else 2e-5
    for target in (yt, None):
        loo = leave_one_out(ex, Xt, target, removed, tol=1e-12, solver="refit")
        actual = _refit_changes(model, X, y, Xt, target, removed)
        assert_close(loo.test_loss_change, actual, rtol=rtol)


@pytest.mark.slow
def test_leave_one_out_newton_agrees_with_scikit_learn_refits():
    """scikit-learn's refit on fewer rows renormalises the objective by their
    total weight: the Newton removal models it (the penalty's share grows)."""
    X, y, Xt, yt = _count_problem()
    model = PoissonRegressor(alpha=1.0, solver="newton-cholesky", **TIGHT)
    model.fit(X, y)
    removed = np.arange(0, 200, 20)
    ex = InfluenceExplainer(model, method="if").fit(X, y)
    loo = leave_one_out(ex, Xt, yt, removed, solver="newton")
    actual = _refit_changes(model, X, y, Xt, yt, removed)
    assert_close(loo.test_loss_change, actual, rtol=1e-6)


@pytest.mark.parametrize("family", ["poisson", "tweedie-3-log", "tweedie-1.5-identity"])
@pytest.mark.parametrize("given_y", [True, False])
def test_newton_matches_dense_reference(family, given_y):
    """method="newton": one Newton step from theta* of the objective that a
    refit on the other rows minimises, ``F - c s_i l_i - rho_i R`` with
    ``rho_i = s_i / sum(s)`` (scikit-learn renormalises by the remaining
    weight): ``delta_i = (H - c s_i d2l_i x̃_i x̃_i^T)^-1 (c s_i g_i + rho_i
    p theta*)``, and the test loss (or minus the linear predictor) evaluated
    exactly at theta* + delta_i."""
    estimator, q, link = FAMILIES[family]
    X, y, Xt, yt = _data(q, link)
    s = np.random.RandomState(2).uniform(0.3, 3, len(y))
    model = clone(estimator).fit(X, y, sample_weight=s)
    G, _, H, weights = _reference(model, q, link, X, y, s, Xt)
    design = np.hstack([X, np.ones((len(X), 1))])
    design_t = np.hstack([Xt, np.ones((len(Xt), 1))])
    _, curvature = derivatives(y, _eta(model, X), q, link)
    theta = np.r_[model.coef_, model.intercept_]

    def test_loss(th):
        eta = design_t @ th
        return half_deviance(yt, mean(eta, link), q) if given_y else -eta

    expected = np.empty((len(Xt), len(X)))
    loo_loss = np.empty(len(X))
    penalty_gradient = np.r_[model.alpha * model.coef_, 0.0]
    for i in range(len(X)):
        H_i = H - weights[i] * curvature[i] * np.outer(design[i], design[i])
        rho = s[i] / s.sum()
        delta = np.linalg.solve(H_i, weights[i] * G[i] + rho * penalty_gradient)
        expected[:, i] = test_loss(theta + delta) - test_loss(theta)
        eta_i = design[i] @ (theta + delta)
        loo_loss[i] = half_deviance(y[i], mean(eta_i, link), q)
    ex = InfluenceExplainer(model, method="newton").fit(X, y, sample_weight=s)
    assert_close(ex.transform(Xt, yt if given_y else None), expected)
    assert_close(ex.loo_loss_, loo_loss)


def test_not_converged_model_gets_a_warning():
    X, y, _, _ = _count_problem(n=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = PoissonRegressor(alpha=1e-2, max_iter=2).fit(X, y)
    with pytest.warns(UserWarning, match="not at a minimum"):
        InfluenceExplainer(model).fit(X, y)


def test_indefinite_hessian_is_a_clear_error():
    """Targets far below the means make every curvature of the power-3 log
    link negative: H is indefinite, so the exact solvers ask for damping
    (and the model is reported as not at a minimum of these data)."""
    estimator, q, link = FAMILIES["tweedie-3-log"]
    X, y, _, _ = _data(q, link)
    model = clone(estimator).set_params(alpha=1e-3).fit(X, y)
    for solver in ("cholesky", "block-diagonal", "cg"):
        with pytest.warns(UserWarning, match="not at a minimum"):
            with pytest.raises(ValueError, match="damping"):
                InfluenceExplainer(model, solver=solver, damping=0).fit(X, y / 100)


def test_targets_outside_the_family_are_clear_errors():
    X, y, Xt, _ = _data(1.0, "log")
    model = PoissonRegressor(**TIGHT).fit(X, y)
    with pytest.raises(ValueError, match="outside the range"):
        InfluenceExplainer(model).fit(X, y - 1)
    ex = InfluenceExplainer(model).fit(X, y)
    with pytest.raises(ValueError, match="outside the range"):
        ex.transform(Xt, -np.ones(len(Xt)))
    Xg, yg, Xgt, _ = _data(2.0, "log")
    gamma = GammaRegressor(**TIGHT).fit(Xg, yg)
    with pytest.raises(ValueError, match="outside the range"):
        InfluenceExplainer(gamma).fit(Xg, np.where(yg > 1, yg, 0.0))
    # an identity link whose mean is not positive at a test point
    estimator, q, link = FAMILIES["tweedie-1.5-identity"]
    Xi, yi, _, _ = _data(q, link)
    identity = clone(estimator).fit(Xi, yi)
    far = -50 * np.sign(identity.coef_)[None, :] * np.ones((1, Xi.shape[1]))
    assert _eta(identity, far)[0] <= 0
    ex = InfluenceExplainer(identity).fit(Xi, yi)
    with pytest.raises(ValueError, match="identity link"):
        ex.transform(far, [1.0])
    assert np.all(np.isfinite(ex.transform(far)))  # the prediction itself is fine

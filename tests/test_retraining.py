"""``retraining=`` of skrelatif.validation (issue 20): warm starts and
retraining from scratch against scikit-learn's own refits, and the proximal
Bregman response function (Bae et al. 2022) against an independent numpy
objective, closed-form ridge refits and the influence predictions."""

import copy
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer
from skrelatif.validation import (
    _bregman,
    agreement,
    leave_one_out,
    linear_datamodeling_score,
    removal_curve,
)

from .test_lds import _ridge_closed_form, ridge_problem  # noqa: F401

# what every refit of skrelatif.validation sets on a network
REFIT = {"tol": 1e-10, "max_iter": 10_000, "solver": "lbfgs"}


@pytest.fixture(scope="module")
def network():
    X, y = make_classification(
        n_samples=70, n_features=4, n_informative=3, n_redundant=0,
        flip_y=0.05, random_state=0,
    )  # fmt: skip
    X_train, y_train, X_test, y_test = X[:60], y[:60], X[60:], y[60:]
    model = MLPClassifier(
        (4,), activation="tanh", alpha=1.0, solver="lbfgs", tol=1e-10,
        max_iter=5000, random_state=0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_train, y_train)
    explainer = InfluenceExplainer(model, method="if").fit(X_train, y_train)
    return model, explainer, X_train, y_train, X_test, y_test


def _log_loss(model, X, y):
    proba = model.predict_proba(X)
    return -np.log(proba[np.arange(len(y)), y])


def _fit_quietly(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y)


def test_network_warm_and_scratch_are_sklearn_refits(network):
    model, explainer, X, y, X_test, y_test = network
    removed = [17]
    warm = leave_one_out(explainer, X_test, y_test, removed, retraining="warm")
    scratch = leave_one_out(explainer, X_test, y_test, removed, retraining="scratch")
    auto = leave_one_out(explainer, X_test, y_test, removed)
    assert (warm.retraining, scratch.retraining, auto.retraining) == (
        "warm",
        "scratch",
        "warm",
    )
    np.testing.assert_array_equal(auto.test_loss_change, warm.test_loss_change)

    # warm: the fitted network refit on all rows (the reference), then that
    # reference refit without each example
    reference = _fit_quietly(
        copy.deepcopy(model).set_params(warm_start=True, **REFIT), X, y
    )
    # scratch: the estimator's own initialisation (its random_state) each time
    fresh = clone(model).set_params(warm_start=False, **REFIT)
    scratch_reference = _fit_quietly(clone(fresh), X, y)
    for k, i in enumerate(removed):
        X_i, y_i = np.delete(X, i, axis=0), np.delete(y, i)
        after = _fit_quietly(copy.deepcopy(reference), X_i, y_i)
        expected = _log_loss(after, X_test, y_test) - _log_loss(
            reference, X_test, y_test
        )
        np.testing.assert_allclose(
            warm.test_loss_change[:, k], expected, rtol=1e-7,
            atol=1e-9 * np.abs(expected).max(),
        )  # fmt: skip
        after = _fit_quietly(clone(fresh), X_i, y_i)
        expected = _log_loss(after, X_test, y_test) - _log_loss(
            scratch_reference, X_test, y_test
        )
        np.testing.assert_allclose(
            scratch.test_loss_change[:, k], expected, rtol=1e-7,
            atol=1e-9 * np.abs(expected).max(),
        )  # fmt: skip


@pytest.mark.parametrize("retraining", ["warm", "scratch"])
def test_network_lds_refits(network, retraining):
    model, explainer, X, y, X_test, y_test = network
    subsets = np.ones((2, len(X)), dtype=bool)
    subsets[0, :20] = subsets[1, 30:45] = False
    result = linear_datamodeling_score(
        explainer, X_test, y_test, subsets=subsets, retraining=retraining
    )
    assert result.retraining == retraining
    for s, keep in enumerate(subsets):
        if retraining == "warm":
            start = copy.deepcopy(model).set_params(warm_start=True, **REFIT)
        else:
            start = clone(model).set_params(warm_start=False, **REFIT)
        refit = _fit_quietly(start, X[keep], y[keep])
        expected = _log_loss(refit, X_test, y_test)
        np.testing.assert_allclose(
            result.actual[s], expected, rtol=1e-7, atol=1e-9 * expected.max()
        )
    # "auto" retrains a network from scratch in the refit-based measures
    auto = linear_datamodeling_score(explainer, X_test, y_test, subsets=subsets)
    assert auto.retraining == "scratch"


# -- the proximal Bregman response function --------------------------------------------
def _unpack(theta, model):
    """Layers ``(W, b)`` from theta, in the layout the adapter documents:
    ``[W_l; b_l]`` ravelled row-major, layer after layer."""
    layers, start = [], 0
    for W in model.coefs_:
        size = (W.shape[0] + 1) * W.shape[1]
        block = theta[start : start + size].reshape(W.shape[0] + 1, W.shape[1])
        layers.append((block[:-1], block[-1]))
        start += size
    return layers


def _logits(theta, model, X):
    (W1, b1), (W2, b2) = _unpack(theta, model)
    return (np.tanh(X @ W1 + b1) @ W2 + b2)[:, 0]


def _pbrf(theta, theta0, model, X, y, removed, damping):
    """The PBRF as the docs write it, for a one-hidden-layer tanh network and
    the log-loss ``log(1 + e^f) - y f``, with its own forward pass."""
    n = len(y)
    f, f0 = _logits(theta, model, X), _logits(theta0, model, X)
    loss, loss0 = np.logaddexp(0, f) - y * f, np.logaddexp(0, f0) - y * f0
    r0 = 1 / (1 + np.exp(-f0)) - y
    divergence = loss - loss0 - r0 * (f - f0)
    penalty = np.concatenate(
        [
            np.r_[np.full(W.size, model.alpha / n), np.zeros(W.shape[1])]
            for W in model.coefs_
        ]
    )
    step = theta - theta0
    return (
        divergence.sum() / n
        - (loss[removed] - loss0[removed]).sum() / n
        + 0.5 * step @ ((penalty + damping) * step)
    )


def _central_gradient(function, theta, h=1e-5):
    gradient = np.empty_like(theta)
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = h
        gradient[k] = (function(theta + e) - function(theta - e)) / (2 * h)
    return gradient


def test_pbrf_optimum_has_zero_gradient(network):
    model, explainer, X, y, X_test, y_test = network
    bregman = _bregman(explainer)
    theta0 = bregman.theta0
    damping = explainer.damping_
    assert damping > 0  # "auto" damping of a network, used as the PBRF's lambda
    removed = np.array([7])

    def objective(theta):
        return _pbrf(theta, theta0, model, X, y, removed, damping)

    # the package's objective and gradient are those of the formula
    kept = bregman.weights.copy()
    kept[removed] = 0.0
    theta = theta0 + 0.01 * np.random.default_rng(0).normal(size=theta0.size)
    value, gradient = bregman.value_and_gradient(theta, kept)
    assert value == pytest.approx(objective(theta), rel=1e-9, abs=1e-15)
    numeric = _central_gradient(objective, theta)
    np.testing.assert_allclose(
        gradient, numeric, rtol=1e-5, atol=1e-7 * np.abs(numeric).max()
    )

    # at its minimiser the finite-difference gradient vanishes, relative to
    # where the minimisation starts (-w_i g_i at theta*)
    optimum, converged = bregman.minimise(removed, tol=1e-10, max_iter=10_000)
    assert converged
    start = np.abs(_central_gradient(objective, theta0)).max()
    assert start > 1e-4
    assert np.abs(_central_gradient(objective, optimum)).max() < 1e-4 * start
    assert objective(optimum) < objective(theta0) == 0.0

    # leave_one_out reports the test losses at that minimiser
    loo = leave_one_out(
        explainer, X_test, y_test, removed, retraining="proximal-bregman"
    )
    assert loo.solver == "l-bfgs" and loo.reference_param_change == 0.0

    def test_loss(theta):
        f = _logits(theta, model, X_test)
        return np.logaddexp(0, f) - y_test * f

    expected = test_loss(optimum) - test_loss(theta0)
    np.testing.assert_allclose(
        loo.test_loss_change[:, 0], expected, rtol=1e-6,
        atol=1e-9 * np.abs(expected).max(),
    )  # fmt: skip
    assert loo.param_change_norm[0] == pytest.approx(
        np.linalg.norm(optimum - theta0), rel=1e-6
    )


def test_pbrf_of_ridge_is_exact_retraining(ridge_problem):  # noqa: F811
    """Squared loss, outputs linear in theta: the PBRF is the retraining
    objective itself (expanded around theta*), so its minimiser is the exact
    refit on the subset, which the normal equations give."""
    X_train, y_train, sw, X_test, y_test, explainer, subsets = ridge_problem
    result = linear_datamodeling_score(
        explainer, X_test, y_test, subsets=subsets, retraining="proximal-bregman"
    )
    assert result.retraining == "proximal-bregman"
    expected = np.empty_like(result.actual)
    for s, keep in enumerate(subsets):
        w, b = _ridge_closed_form(X_train[keep], y_train[keep], sw[keep], 2.0)
        expected[s] = (y_test - X_test @ w - b) ** 2
    np.testing.assert_allclose(
        result.actual, expected, rtol=1e-6, atol=1e-8 * np.abs(expected).max()
    )
    curve = removal_curve(
        explainer, X_test[:3], y_test[:3], fractions=(0.05, 0.1),
        retraining="proximal-bregman", random_state=0,
    )  # fmt: skip
    refit = removal_curve(
        explainer, X_test[:3], y_test[:3], fractions=(0.05, 0.1), random_state=0
    )
    for key in ("change", "random_change"):
        np.testing.assert_allclose(
            curve[key], refit[key], rtol=1e-5, atol=1e-8 * np.abs(refit[key]).max()
        )


def test_pbrf_of_logistic_regression_is_the_newton_answer():
    """A GLM: the PBRF's Hessian at theta* is H and its first Newton step
    that of method="newton", so its leave-one-out changes agree with the
    "newton" scores (to second order) and the "if" scores (first order)."""
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X[:, :10])
    X_train, y_train, X_test, y_test = X[:200], y[:200], X[200:206], y[200:206]
    model = LogisticRegression(C=0.1, tol=1e-10).fit(X_train, y_train)
    indices = np.arange(0, 200, 10)
    explainer = InfluenceExplainer(model, method="if").fit(X_train, y_train)
    pbrf = leave_one_out(
        explainer, X_test, y_test, indices, retraining="proximal-bregman"
    )
    scores = {
        method: InfluenceExplainer(model, method=method)
        .fit(X_train, y_train)
        .transform(X_test, y_test)[:, indices]
        for method in ("if", "newton")
    }
    newton = agreement(scores["newton"], pbrf.test_loss_change)
    first = agreement(scores["if"], pbrf.test_loss_change)
    print(f"PBRF against newton: r = {newton.pearson:.6f}, slope = {newton.slope:.4f}")
    print(f"PBRF against if: r = {first.pearson:.6f}, slope = {first.slope:.4f}")
    # measured: "newton" r = 0.999962, slope 1.0003; "if" 0.998795, 1.0679
    assert newton.pearson > 0.9999 and abs(newton.slope - 1) < 0.01, newton
    assert first.pearson > 0.99 and abs(first.slope - 1) < 0.1, first
    # and with a converged model, with actual leave-one-out (exact Newton)
    exact = leave_one_out(explainer, X_test, y_test, indices)
    scale = np.abs(exact.test_loss_change).max()
    np.testing.assert_allclose(
        pbrf.test_loss_change, exact.test_loss_change, rtol=0.05, atol=0.02 * scale
    )


@pytest.mark.slow
def test_network_scores_against_three_retrainings():
    """The figures of doc/user_guide/validation.rst ("Networks: which
    retraining?"): breast cancer (standardised), 400 training and 10 test
    points, MLPClassifier((8,), tanh, alpha=1) fitted by L-BFGS to tol=1e-10,
    30 random training examples removed one at a time; Pearson r and slope of
    the actual test-loss changes against the "if" and "newton" scores (default
    Gauss-Newton curvature and damping) for each retraining."""
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X_train, y_train, X_test, y_test = X[:400], y[:400], X[400:410], y[400:410]
    model = MLPClassifier(
        (8,), activation="tanh", alpha=1.0, solver="lbfgs", tol=1e-10,
        max_iter=20_000, random_state=0,
    ).fit(X_train, y_train)  # fmt: skip
    indices = np.random.RandomState(0).choice(400, size=30, replace=False)
    explainers = {
        method: InfluenceExplainer(model, method=method).fit(X_train, y_train)
        for method in ("if", "newton")
    }
    scores = {m: e.transform(X_test, y_test)[:, indices] for m, e in explainers.items()}
    figures = {}
    for retraining in ("warm", "scratch", "proximal-bregman"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lbfgs's max_fun on a few refits
            loo = leave_one_out(
                explainers["if"], X_test, y_test, indices, retraining=retraining
            )
        for method, predicted in scores.items():
            a = agreement(predicted, loo.test_loss_change)
            figures[retraining, method] = a
            print(f"{retraining:>16} {method:>6}: r = {a.pearson:.3f}, "
                  f"slope = {a.slope:.2f}")  # fmt: skip
    # measured: warm "if" 0.866 / 1.95, "newton" 0.993 / 0.80; scratch 0.202 /
    # 2.65 and 0.176 / 0.83; proximal-bregman 0.932 / 1.94 and 0.996 / 0.74
    assert figures["proximal-bregman", "newton"].pearson > 0.99
    assert figures["proximal-bregman", "if"].pearson > 0.9
    for method in ("if", "newton"):
        assert (
            figures["proximal-bregman", method].pearson
            > figures["warm", method].pearson
            > figures["scratch", method].pearson + 0.3
        )

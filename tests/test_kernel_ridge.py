"""KernelRidge explained in the dual (``skrelatif._adapters.kernel_ridge``).

References, independent of the adapter: decompositions against ``predict``;
influence and RelatIF against the primal formulas of spec section 2 in an
explicit feature space (the eigen-factorisation of the kernel matrix of the
training and test points together, so ``phi(a) . phi(b) = K(a, b)`` on them)
with dense ``np.linalg`` solves; removals and leave-one-out against refitting
``KernelRidge`` without the removed rows.
"""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics.pairwise import PAIRWISE_KERNEL_FUNCTIONS, pairwise_kernels

from skrelatif import InfluenceExplainer

#: positive semi-definite kernels (an eigen-feature space exists)
PSD = ("chi2", "linear", "polynomial", "poly", "rbf", "laplacian", "cosine")


def _close(actual, expected, rtol=1e-10):
    scale = np.max(np.abs(expected)) if np.size(expected) else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def _data(seed=0, n=30, n_test=7):
    rng = np.random.RandomState(seed)
    X = rng.uniform(0.1, 1.5, (n + n_test, 3))  # non-negative: the chi2 kernels
    y = np.sin(2 * X[:, 0]) + X[:, 1] + 0.2 * rng.standard_normal(n + n_test)
    weights = rng.uniform(0.5, 2.0, n)
    return X[:n], y[:n], X[n:], y[n:], weights


def _model(kernel):
    return KernelRidge(alpha=0.3, kernel=kernel, gamma=0.7, degree=2, coef0=0.5)


def _kernel(model, A, B):
    params = dict(gamma=model.gamma, degree=model.degree, coef0=model.coef0)
    return pairwise_kernels(A, B, metric=model.kernel, filter_params=True, **params)


def _primal(model, X, y, X_test, weights):
    """Features, fitted outputs, and the Hessian of the primal objective."""
    n = len(y)
    values, vectors = np.linalg.eigh(_kernel(model, *(np.vstack([X, X_test]),) * 2))
    features = vectors * np.sqrt(np.clip(values, 0, None))
    Phi, Phi_t = features[:n], features[n:]
    lam = model.alpha
    H = 2 * (Phi.T @ (weights[:, None] * Phi) + lam * np.eye(features.shape[1]))
    w = np.linalg.solve(H / 2, Phi.T @ (weights * y))
    return Phi, Phi_t, Phi @ w, Phi_t @ w, H


# additive_chi2 and sigmoid are not positive definite: KernelRidge falls back
# to least squares, with its warning
@pytest.mark.filterwarnings("ignore:Singular matrix in solving dual problem")
@pytest.mark.parametrize("kernel", list(PAIRWISE_KERNEL_FUNCTIONS))
def test_decompose_sums_to_predict(kernel):
    X, y, X_test, _, weights = _data()
    model = _model(kernel).fit(X, y, sample_weight=weights)
    ex = InfluenceExplainer(model, method="if").fit(X, y, sample_weight=weights)
    parts = ex.decompose(X_test)
    assert parts.shape == (len(X_test), len(y))
    _close(parts.sum(axis=1) + ex.baseline_, model.predict(X_test))
    _close(parts, _kernel(model, X_test, X) * model.dual_coef_)


@pytest.mark.parametrize("kernel", PSD)
@pytest.mark.parametrize("explained", ["prediction", "loss"])
def test_scores_match_the_primal_formulas(kernel, explained):
    X, y, X_test, y_test, weights = _data()
    weights[4] = 0.0  # no "if" score, but RelatIF has a direction
    model = _model(kernel).fit(X, y, sample_weight=weights)
    Phi, Phi_t, f, f_t, H = _primal(model, X, y, X_test, weights)
    _close(f_t, model.predict(X_test), 1e-8)
    G = 2 * (f - y)[:, None] * Phi  # gradients of (y_i - f_i)^2
    target = None if explained == "prediction" else y_test
    G_t = -Phi_t if target is None else 2 * (f_t - y_test)[:, None] * Phi_t
    solved = np.linalg.solve(H, G.T).T  # rows H^-1 g_i
    cross = G_t @ solved.T
    expected = {
        "if": cross * weights,
        "theta-relatif": cross / np.linalg.norm(solved, axis=1),
        "l-relatif": cross / np.sqrt(np.einsum("ij,ij->i", solved, G)),
    }
    for method, reference in expected.items():
        ex = InfluenceExplainer(model, method=method).fit(X, y, sample_weight=weights)
        _close(ex.transform(X_test, target), reference, 1e-7)
    self_influence = weights * np.einsum("ij,ij->i", solved, G)
    _close(ex.self_influence_, self_influence, 1e-7)


def _refit(model, X, y, weights, group):
    keep = np.setdiff1d(np.arange(len(y)), group)
    if model.kernel == "precomputed":
        return clone(model).fit(X[keep][:, keep], y[keep], sample_weight=weights[keep])
    return clone(model).fit(X[keep], y[keep], sample_weight=weights[keep])


@pytest.mark.parametrize("kernel", ["rbf", "poly", "laplacian", "precomputed"])
def test_exact_removal_and_loo_match_refits(kernel):
    X, y, X_test, y_test, weights = _data(1)
    weights[2] = 0.0  # its removal changes nothing
    if kernel == "precomputed":
        base = _model("rbf")
        X, X_test = _kernel(base, X, X), _kernel(base, X_test, X)
        model = KernelRidge(alpha=0.3, kernel="precomputed")
    else:
        model = _model(kernel)
    model.fit(X, y, sample_weight=weights)
    n = len(y)
    f_t = model.predict(X_test)
    refits = [_refit(model, X, y, weights, [i]) for i in range(n)]
    query = (lambda m, i: X[i : i + 1][:, np.arange(n) != i]) if (
        kernel == "precomputed"
    ) else (lambda m, i: X[i : i + 1])  # fmt: skip
    test_query = (lambda i: X_test[:, np.arange(n) != i]) if (
        kernel == "precomputed"
    ) else (lambda i: X_test)  # fmt: skip
    moved = np.stack([r.predict(test_query(i)) for i, r in enumerate(refits)], axis=1)
    loo = np.array([r.predict(query(r, i))[0] for i, r in enumerate(refits)])
    ex = InfluenceExplainer(model, method="newton").fit(X, y, sample_weight=weights)
    _close(ex.transform(X_test), f_t[:, None] - moved)  # the prediction
    _close(
        ex.transform(X_test, y_test),
        (y_test[:, None] - moved) ** 2 - (y_test - f_t)[:, None] ** 2,
    )
    _close(ex.loo_loss_, (y - loo) ** 2)
    assert np.all(ex.transform(X_test)[:, 2] == 0)
    # groups removed together
    groups = [np.array([0, 5, 9]), np.array([3]), np.arange(10, 20)]
    expected = []
    for group in groups:
        refit = _refit(model, X, y, weights, group)
        keep = np.setdiff1d(np.arange(n), group)
        expected.append(
            refit.predict(X_test[:, keep] if kernel == "precomputed" else X_test)
        )
    expected = np.stack(expected, axis=1)
    _close(ex.predict_removal(X_test, groups=groups), f_t[:, None] - expected)
    _close(
        ex.predict_removal(X_test, y_test, groups=groups),
        (y_test[:, None] - expected) ** 2 - (y_test - f_t)[:, None] ** 2,
    )


def _laplace(a, b, scale=1.0):
    return np.exp(-scale * np.abs(a - b).sum())


def test_callable_kernel_with_kernel_params():
    X, y, X_test, _, _ = _data(2)
    model = KernelRidge(alpha=0.2, kernel=_laplace, kernel_params={"scale": 0.8})
    model.fit(X, y)
    state = pickle.dumps(model)
    ex = InfluenceExplainer(model, method="newton").fit(X, y)
    _close(ex.decompose(X_test).sum(axis=1), model.predict(X_test))
    refit = _refit(model, X, y, np.ones(len(y)), [0])
    _close(ex.transform(X_test)[:, 0], model.predict(X_test) - refit.predict(X_test))
    assert pickle.dumps(model) == state


def test_if_agrees_with_exact_removal_to_first_order():
    """``"if"`` = the exact change without the ``1 / (1 - H_ii)`` factor."""
    X, y, X_test, y_test, _ = _data(3, n=60)
    model = KernelRidge(alpha=2.0, kernel="rbf", gamma=0.5).fit(X, y)
    first = InfluenceExplainer(model, method="if").fit(X, y).transform(X_test)
    exact = InfluenceExplainer(model, method="newton").fit(X, y).transform(X_test)
    assert np.corrcoef(first.ravel(), exact.ravel())[0, 1] > 0.99


def test_bad_input():
    X, y, X_test, _, _ = _data()
    with pytest.raises(ValueError, match="2-d target"):
        InfluenceExplainer(KernelRidge().fit(X, np.c_[y, y])).fit(X, y)
    model = KernelRidge(alpha=0.3).fit(X, y)
    with pytest.raises(ValueError, match="does not match"):
        InfluenceExplainer(model).fit(X, y[::-1])
    with pytest.raises(ValueError, match="hessian"):
        InfluenceExplainer(model, hessian="exact").fit(X, y)

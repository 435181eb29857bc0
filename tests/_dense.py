"""Brute-force reference implementation of the pinned math (spec section 2).

Written independently of the package: explicit per-example gradients
(``np.kron``), an explicit Hessian summed with ``einsum``, ``np.linalg.solve``
(or ``pinv`` for the singular multinomial-intercept direction). Only meant
for small problems.
"""

import numpy as np
from scipy.special import expit, softmax
from sklearn.utils.class_weight import compute_class_weight


def sample_weights(model, y, sample_weight=None):
    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    if model.class_weight is not None:
        cw = compute_class_weight(model.class_weight, classes=model.classes_, y=y)
        s = s * cw[np.searchsorted(model.classes_, y)]
    return s


def design(model, X):
    X = np.asarray(X, float)
    return np.hstack([X, np.ones((len(X), 1))]) if model.fit_intercept else X


def residuals_and_curvature(model, X, y):
    """Per example: r_i = dl/df (n, K) and D_i = d2l/df2 (n, K, K)."""
    F = np.asarray(X, float) @ model.coef_.T + model.intercept_
    k = np.searchsorted(model.classes_, y)
    if model.coef_.shape[0] == 1:
        p = expit(F[:, 0])
        return (p - k)[:, None], (p * (1 - p))[:, None, None]
    P = softmax(F, axis=1)
    onehot = np.eye(P.shape[1])[k]
    D = np.einsum("ik,kl->ikl", P, np.eye(P.shape[1])) - np.einsum("ik,il->ikl", P, P)
    return P - onehot, D


def gradients(model, X, y):
    R, _ = residuals_and_curvature(model, X, y)
    Xd = design(model, X)
    return np.array([np.kron(r, x) for r, x in zip(R, Xd)])


def hessian(model, X, y, sample_weight=None, damping=0.0):
    """Hessian of F = C sum s_i l_i + 1/2||W||^2 (+ damping I); C = inf: sum s_i l_i."""
    _, D = residuals_and_curvature(model, X, y)
    Xd = design(model, X)
    s = sample_weights(model, y, sample_weight)
    C = 1.0 if np.isinf(model.C) else model.C
    H = C * sum(si * np.kron(Di, np.outer(x, x)) for si, Di, x in zip(s, D, Xd))
    if not np.isinf(model.C):
        pen = np.ones(Xd.shape[1])
        if model.fit_intercept:
            pen[-1] = (
                1.0 / model.intercept_scaling**2 if model.solver == "liblinear" else 0.0
            )
        H += np.diag(np.tile(pen, model.coef_.shape[0]))
    return H + damping * np.eye(len(H))


def inverse(H, model):
    """H^-1, or the pseudo-inverse when H has the softmax null direction."""
    singular = model.coef_.shape[0] > 1 and (model.fit_intercept or np.isinf(model.C))
    return np.linalg.pinv(H, hermitian=True) if singular else np.linalg.inv(H)


def scores(
    model,
    X_train,
    y_train,
    X_test,
    y_test,
    method,
    sample_weight=None,
    damping=0.0,
    identity=False,
):
    G = gradients(model, X_train, y_train)
    Gt = gradients(model, X_test, y_test)
    H = hessian(model, X_train, y_train, sample_weight, damping)
    Hinv = np.eye(len(H)) / (1 + damping) if identity else inverse(H, model)
    C = 1.0 if np.isinf(model.C) else model.C
    s = sample_weights(model, y_train, sample_weight)
    solved = G @ Hinv  # rows H^-1 g_i
    cross = Gt @ solved.T
    self_influence = C * s * np.einsum("ij,ij->i", solved, G)
    if method == "if":
        return C * s * cross, self_influence
    if method == "theta-relatif":
        return cross / np.linalg.norm(solved, axis=1), self_influence
    return cross / np.sqrt(np.einsum("ij,ij->i", solved, G)), self_influence


def scores_from(G, Gt, H, weights, method, singular=False):
    """Scores from explicit gradients: training rows G (n, P), test rows Gt,
    the Hessian H of the objective and ``weights`` = c * s_i (spec section 5)."""
    Hinv = np.linalg.pinv(H, hermitian=True) if singular else np.linalg.inv(H)
    solved = G @ Hinv
    cross = Gt @ solved.T
    quad = np.einsum("ij,ij->i", solved, G)
    self_influence = weights * quad
    if method == "if":
        return weights * cross, self_influence
    if method == "theta-relatif":
        return cross / np.linalg.norm(solved, axis=1), self_influence
    return cross / np.sqrt(quad), self_influence


def assert_close(actual, expected, rtol=1e-8):
    """``actual == expected`` up to ``rtol`` times the largest expected value."""
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale)


def weights_case(kind, n_samples, n_classes, low=0.2):
    """``(sample_weight, class_weight)`` of a test case: ``kind`` is None,
    "sample", "class" (balanced) or "both"."""
    sw = (
        np.random.RandomState(1).uniform(low, 3, n_samples)
        if kind in ("sample", "both")
        else None
    )
    class_weight = {
        "class": "balanced",
        "both": dict(zip(range(n_classes), [1.0, 2.5, 0.7][:n_classes])),
    }.get(kind)
    return sw, class_weight


def fitted_state(explainer):
    """The testing hook into an explainer's fitted state (its private
    ``Influence`` object: the bound adapter, the solver, the candidates),
    for the tests of those internals; every other test uses the public API.
    The one place tests reach past ``InfluenceExplainer``'s public names."""
    return explainer._influence

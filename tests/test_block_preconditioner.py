"""The block preconditioner of ``solver="cg"`` (issue 21): a linear model's
principal block on its intercepts and densest inputs, against the dense
Hessian, and the solves it preconditions against ``"cholesky"``."""

import numpy as np
import pytest
from scipy import sparse
from sklearn.linear_model import LogisticRegression, PoissonRegressor
from sklearn.neural_network import MLPClassifier

from skrelatif import InfluenceExplainer
from skrelatif._solvers import ConjugateGradientInverse
from skrelatif._solvers._pcg import BlockJacobi, Jacobi

from . import _dense
from ._dense import assert_close, fitted_state


def _documents(n, n_words, n_classes, seed=0):
    """Sparse non-negative rows whose first column (a "stop word") is in
    every row with about the same value: nearly collinear with the
    intercept, the ill-conditioning a diagonal preconditioner misses."""
    rng = np.random.RandomState(seed)
    X = sparse.random(n, n_words, density=0.08, random_state=rng, format="lil")
    X[:, 0] = (1.0 + 0.01 * rng.rand(n))[:, None]
    X[:, 1] = (rng.rand(n) < 0.7)[:, None] * 0.5
    y = rng.randint(n_classes, size=n)
    y[np.asarray(X[:, 2].todense()).ravel() > 0] = 0  # a signal to fit
    return sparse.csr_matrix(X), y


@pytest.mark.parametrize("n_classes, fit_intercept", [(2, True), (3, True), (3, False)])
def test_principal_block_is_the_dense_hessians_submatrix(n_classes, fit_intercept):
    X, y = _documents(80, 12, n_classes)
    sw = np.random.RandomState(1).uniform(0.5, 2.0, len(y))
    model = LogisticRegression(C=3.0, fit_intercept=fit_intercept, tol=1e-10)
    model.fit(X, y, sample_weight=sw)
    ex = InfluenceExplainer(model, method="if", solver="cg").fit(X, y, sw)
    operator = fitted_state(ex)._operator
    K, d = operator.n_outputs, operator.n_design
    indices, block = operator.principal_block(max_params=4 * K)
    H = _dense.hessian(model, X.toarray(), y, sw)
    assert_close(block, H[np.ix_(indices, indices)], 1e-10)
    inputs = np.unique(indices % d)
    # every intercept, then the inputs with the most non-zeros (ties: the
    # largest sum of squares)
    counts = np.diff(X.tocsc().indptr)
    squares = np.asarray(X.multiply(X).sum(axis=0)).ravel()
    densest = np.lexsort((-squares, -counts))[: 4 - fit_intercept]
    expected = sorted([*densest, *([d - 1] if fit_intercept else [])])
    np.testing.assert_array_equal(inputs, expected)
    assert indices.size == K * len(expected)


def test_principal_block_of_a_glm_with_dense_data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 7)) * np.arange(1, 8)
    y = rng.poisson(np.exp(0.1 * X[:, 0]))
    model = PoissonRegressor(alpha=0.3).fit(X, y)
    ex = InfluenceExplainer(model, method="if", solver="cg").fit(X, y)
    indices, block = fitted_state(ex)._operator.principal_block(max_params=4)
    # the intercept and the three columns of largest sum of squares
    np.testing.assert_array_equal(indices, [4, 5, 6, 7])
    # the objective (1/n) sum of half Poisson deviances + alpha/2 ||w||^2:
    # H = (1/n) X̃^T diag(mu) X̃ + diag(alpha, ..., alpha, 0)
    design = np.hstack([X, np.ones((len(X), 1))])
    mu = model.predict(X)
    H = (design.T * mu) @ design / len(X) + np.diag([*[0.3] * 7, 0.0])
    assert_close(block, H[np.ix_(indices, indices)], 1e-10)


@pytest.mark.parametrize("method", ["if", "l-relatif"])
def test_block_preconditioned_cg_agrees_with_cholesky_in_fewer_iterations(method):
    X, y = _documents(300, 40, 3, seed=2)
    X_train, y_train, X_test = X[:250], y[:250], X[250:]
    model = LogisticRegression(C=30.0, tol=1e-12, max_iter=10_000)
    model.fit(X_train, y_train)
    exact = InfluenceExplainer(model, method=method, solver="cholesky")
    exact.fit(X_train, y_train)
    iterations = {}
    for preconditioner in ("jacobi", "block"):
        options = {"tol": 1e-10, "preconditioner": preconditioner, "block_size": 12}
        ex = InfluenceExplainer(
            model, method=method, solver="cg", solver_options=options
        )
        ex.fit(X_train, y_train)
        solver = fitted_state(ex).solver_
        kind = BlockJacobi if preconditioner == "block" else Jacobi
        assert type(solver.preconditioner_) is kind
        assert_close(ex.transform(X_test), exact.transform(X_test), 1e-6)
        assert_close(ex.self_influence_, exact.self_influence_, 1e-6)
        iterations[preconditioner] = solver.n_iter_
    # the stop word and the intercept: the diagonal alone needs more (154
    # against 86 here)
    assert iterations["block"] < 0.7 * iterations["jacobi"], iterations


def test_auto_preconditioner_takes_the_block_only_when_it_is_a_small_part():
    X, y = _documents(120, 30, 3)
    model = LogisticRegression(C=1.0).fit(X, y)  # P = 93
    small = {"block_size": 12}
    big = {"block_size": 24}  # 4 x 24 > 93: the diagonal
    for options, kind in ((small, BlockJacobi), (big, Jacobi), ({}, Jacobi)):
        ex = InfluenceExplainer(model, method="if", solver="cg", solver_options=options)
        ex.fit(X, y)
        assert type(fitted_state(ex).solver_.preconditioner_) is kind


def test_block_preconditioner_needs_a_linear_model(classification):
    X, y, _, _ = classification(2)
    model = MLPClassifier((3,), solver="lbfgs", tol=1e-10, max_iter=5000)
    model.fit(X, y)
    ex = InfluenceExplainer(
        model, method="if", solver="cg", solver_options={"preconditioner": "block"}
    )
    with pytest.raises(ValueError, match="'block'} needs a linear model"):
        ex.fit(X, y)
    assert not hasattr(ex, "self_influence_")


@pytest.mark.parametrize(
    "options, match",
    [
        ({"preconditioner": "nystrom"}, "preconditioner"),
        ({"block_size": 0}, "block_size"),
    ],
)
def test_bad_preconditioner_options_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        ConjugateGradientInverse(0.0, options=options)


def _preconditioner_inverse(H, indices):
    """The block preconditioner's inverse, densely: ``H_II^-1`` on the block,
    ``1 / H_jj`` elsewhere."""
    M = np.diag(1.0 / np.diag(H))
    M[np.ix_(indices, indices)] = np.linalg.inv(H[np.ix_(indices, indices)])
    return M


@pytest.mark.parametrize("normalisers", ["preconditioner", 1, 3])
def test_approximate_normalisers_against_dense_formulas(normalisers):
    X, y = _documents(200, 30, 2, seed=4)
    X_train, y_train, X_test = X[:160], y[:160], X[160:]
    model = LogisticRegression(C=10.0, tol=1e-12, max_iter=10_000)
    model.fit(X_train, y_train)
    options = {"preconditioner": "block", "block_size": 6, "tol": 1e-12}
    ex = InfluenceExplainer(
        model,
        method="l-relatif",
        solver="cg",
        solver_options={**options, "normalisers": normalisers},
    ).fit(X_train, y_train)
    solver = fitted_state(ex).solver_
    H = _dense.hessian(model, X_train.toarray(), y_train)
    M = _preconditioner_inverse(H, solver.preconditioner_.rows)
    G = _dense.gradients(model, X_train.toarray(), y_train)
    Gt = _dense.gradients(model, X_test.toarray(), model.predict(X_test))
    if normalisers == "preconditioner":
        quad = np.einsum("ij,jk,ik->i", G, M, G)
    else:  # k steps of preconditioned conjugate gradients, densely
        quad = np.empty(len(G))
        for i, g in enumerate(G):
            x, r = np.zeros_like(g), g.copy()
            z = M @ r
            d = z.copy()
            for _ in range(normalisers):
                alpha = (r @ z) / (d @ H @ d)
                x, r_new = x + alpha * d, r - alpha * H @ d
                z_new = M @ r_new
                d = z_new + (r_new @ z_new) / (r @ z) * d
                r, z = r_new, z_new
            quad[i] = g @ x
    exact = np.einsum("ij,ji->i", G, np.linalg.solve(H, G.T))
    cross = Gt @ np.linalg.solve(H, G.T)
    assert_close(ex.transform(X_test), cross / np.sqrt(quad), 1e-7)
    # its error, measured on a sample of the training examples, is reported
    error = np.abs(np.sqrt(quad) - np.sqrt(exact)) / np.sqrt(exact)
    assert 0 < ex.normaliser_error_ <= error.max() * (1 + 1e-6)
    assert ex.normaliser_error_ >= np.sort(error)[len(error) // 4]
    if normalisers == 3:  # k steps are a lower bound, approaching the solve
        assert np.all(quad <= exact * (1 + 1e-10)) and error.max() < 0.05


def test_solved_normalisers_are_exact_and_not_measured():
    X, y = _documents(200, 30, 3, seed=5)
    model = LogisticRegression(C=10.0, tol=1e-12, max_iter=10_000).fit(X, y)
    options = {"preconditioner": "block", "block_size": 9, "tol": 1e-11}
    ex = InfluenceExplainer(
        model, method="l-relatif", solver="cg", solver_options=options
    ).fit(X, y)
    exact = InfluenceExplainer(model, method="l-relatif", solver="cholesky")
    exact.fit(X, y)
    assert ex.normaliser_error_ is None
    assert_close(ex.self_influence_, exact.self_influence_, 1e-7)

"""Conjugate gradients on columns (issue 21): a linear model's column
product ``matmat`` against the dense Hessian, the null-space projection,
systems that stop at their own tolerance inside a batch, and results that do
not depend on threads or jobs."""

import joblib
import numpy as np
import pytest
from scipy import sparse
from sklearn.linear_model import LogisticRegression, PoissonRegressor
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from skrelatif import InfluenceExplainer
from skrelatif._solvers._pcg import Jacobi, NullProjector, preconditioned_cg
from skrelatif._utils import compute_threads

from . import _dense
from ._dense import assert_close, fitted_state


def _text(n=150, n_words=25, n_classes=3, seed=0):
    rng = np.random.RandomState(seed)
    X = sparse.random(n, n_words, density=0.15, random_state=rng, format="csr")
    y = rng.randint(n_classes, size=n)
    return X, y


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("as_sparse", [True, False])
def test_matmat_is_the_dense_hessian_times_the_columns(
    n_classes, fit_intercept, as_sparse
):
    X, y = _text(n_classes=n_classes)
    X = X if as_sparse else X.toarray()
    sw = np.random.RandomState(1).uniform(0.5, 2.0, len(y))
    model = LogisticRegression(C=2.0, fit_intercept=fit_intercept, tol=1e-10)
    model.fit(X, y, sample_weight=sw)
    ex = InfluenceExplainer(model, method="if", solver="cg").fit(X, y, sw)
    operator = fitted_state(ex)._operator
    H = _dense.hessian(model, np.asarray(sparse.csr_matrix(X).todense()), y, sw)
    V = np.random.RandomState(2).standard_normal((operator.n_params, 7))
    assert_close(operator.matmat(V, 0.25), (H + 0.25 * np.eye(len(H))) @ V, 1e-12)


def test_matmat_of_a_glm_with_dense_data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 5))
    y = rng.poisson(np.exp(0.2 * X[:, 0]))
    model = PoissonRegressor(alpha=0.3).fit(X, y)
    ex = InfluenceExplainer(model, method="if", solver="cg").fit(X, y)
    # (1/n) X̃^T diag(mu) X̃ + diag(alpha, ..., alpha, 0)
    design = np.hstack([X, np.ones((len(X), 1))])
    H = (design.T * model.predict(X)) @ design / len(X) + np.diag([0.3] * 5 + [0])
    V = rng.standard_normal((6, 3))
    assert_close(fitted_state(ex)._operator.matmat(V), H @ V, 1e-12)


def test_matmat_does_not_depend_on_threads_or_jobs():
    X, y = _text(n=400, n_words=60, n_classes=4)
    model = LogisticRegression(C=2.0).fit(X, y)
    V = np.random.RandomState(3).standard_normal((4 * 61, 9))
    products = []
    with joblib.parallel_config(backend="threading"):
        for n_jobs, threads in ((None, None), (None, 1), (2, None)):
            ex = InfluenceExplainer(model, method="if", solver="cg", n_jobs=n_jobs)
            operator = fitted_state(ex.fit(X, y))._operator
            with threadpool_limits(threads):
                products.append(operator.matmat(V, 0.5))
    for product in products[1:]:
        np.testing.assert_array_equal(product, products[0])


def test_threads_follow_the_blas_limit():
    with threadpool_limits(1):
        assert compute_threads() == 1
    assert compute_threads() >= 1


@pytest.mark.parametrize("family", ["linear", "network"])
def test_null_projector_is_the_operators_remove_null(family):
    X, y = _text(n_classes=3)
    if family == "linear":
        model = LogisticRegression(C=2.0).fit(X, y)
    else:
        X = X.toarray()
        model = MLPClassifier(
            (4,), solver="lbfgs", tol=1e-10, max_iter=3000, random_state=0
        )
        model.fit(X, y)
    ex = InfluenceExplainer(model, method="if", solver="cg").fit(X, y)
    operator = fitted_state(ex)._operator
    assert operator.null_space is not None
    V = np.random.RandomState(4).standard_normal((5, operator.n_params))
    projected = NullProjector(operator)(np.ascontiguousarray(V.T)).T
    assert_close(projected, operator.remove_null(V.copy()), 1e-14)
    residue = operator.null_space.T @ projected.T
    np.testing.assert_allclose(residue, 0.0, atol=1e-14 * np.abs(V).max())


class _DenseOperator:
    """A symmetric positive definite matrix as a row-product operator (no
    ``matmat``: the conjugate gradients' fallback)."""

    null_space = None

    def __init__(self, H):
        self.H, self.n_params = H, len(H)

    def matvec(self, V):
        return V @ self.H

    def diagonal(self):
        return np.diag(self.H).copy()

    def remove_null(self, V):
        return V


@pytest.mark.parametrize("n_random", [2, 9])
def test_each_system_stops_at_its_own_tolerance(n_random):
    """Two systems near the span of one and two eigenvectors reach the
    tolerance in one and two iterations (identity preconditioner) and stop
    there, while the others go on: with 2 random systems they are removed
    from the batch, with 9 they stay in it with a zero step. Had they gone
    on, their solutions would move by about their 1e-7 perturbation; they
    are those of the systems solved alone, and every solution is within the
    tolerance's bound of the dense one."""
    rng = np.random.RandomState(5)
    n = 40
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    eigenvalues = np.geomspace(1.0, 30.0, n)
    H = (Q * eigenvalues) @ Q.T
    operator = _DenseOperator(H)
    identity = Jacobi(operator, 0.0, diagonal=np.ones(n))
    B = np.vstack(
        [
            Q[:, 3] + 1e-7 * rng.standard_normal(n),
            2.0 * Q[:, 5] - Q[:, 30] + 1e-7 * rng.standard_normal(n),
            rng.standard_normal((n_random, n)),
            np.zeros(n),
        ]
    )
    tol = 1e-5
    X, residual, iterations = preconditioned_cg(
        operator, 0.0, identity, B, tol=tol, max_iter=500
    )
    assert iterations > 10
    norms = np.linalg.norm(B, axis=1)
    assert np.all(residual <= tol * norms)
    true = np.linalg.norm(X @ H - B, axis=1)
    assert np.all(true <= 10 * tol * norms)
    # ||x - x*|| <= ||r|| / lambda_min
    error = np.linalg.norm(X - np.linalg.solve(H, B.T).T, axis=1)
    assert np.all(error <= 10 * tol * norms / eigenvalues[0])
    np.testing.assert_array_equal(X[-1], 0.0)
    for row in (0, 1):
        alone, _, alone_iterations = preconditioned_cg(
            operator, 0.0, identity, B[row : row + 1], tol=tol, max_iter=500
        )
        assert alone_iterations == row + 1
        np.testing.assert_allclose(X[row], alone[0], rtol=0, atol=1e-13)
        exact = np.linalg.solve(H, B[row])
        assert np.abs(X[row] - exact).max() > 1e-10  # stopped, not solved


def test_cg_with_the_column_product_agrees_with_cholesky_on_threads():
    """The full path (block preconditioner, sparse matmat on two threads or
    one) against an exact factorisation."""
    X, y = _text(n=300, n_words=40, n_classes=4, seed=6)
    model = LogisticRegression(C=5.0, tol=1e-12, max_iter=5000).fit(X[:250], y[:250])
    exact = InfluenceExplainer(model, method="if", solver="cholesky")
    expected = exact.fit(X[:250], y[:250]).transform(X[250:])
    options = {"tol": 1e-11, "preconditioner": "block", "block_size": 20}
    scores = []
    for threads in (None, 1):
        with threadpool_limits(threads):
            ex = InfluenceExplainer(
                model, method="if", solver="cg", solver_options=options
            )
            scores.append(ex.fit(X[:250], y[:250]).transform(X[250:]))
        assert_close(scores[-1], expected, 1e-8)
    assert_close(scores[1], scores[0], 1e-12)

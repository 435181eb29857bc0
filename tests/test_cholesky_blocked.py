"""The blocked Cholesky factorisation of large matrices
(:func:`skrelatif._solvers._base.cholesky_lower`): LAPACK's ``dpotrf`` on
diagonal blocks only, because OpenBLAS's threaded ``dpotrf`` crashes on
matrices of about 20,000 rows. Checked against numpy's factorisation, with a
small block so that every branch runs."""

import numpy as np
import pytest

from skrelatif._solvers import _base


def _spd(n, seed=0, dtype=np.float64):
    A = np.random.RandomState(seed).standard_normal((n, n + 5))
    return (A @ A.T / n + 0.1 * np.eye(n)).astype(dtype)


@pytest.mark.parametrize("order", ["F", "C"])
@pytest.mark.parametrize("n", [7, 64, 150, 257])
def test_blocked_factor_is_numpys(monkeypatch, n, order):
    monkeypatch.setattr(_base, "CHOLESKY_BLOCK", 64)
    M = _spd(n)
    factor, info = _base.cholesky_lower(np.array(M, order=order))
    assert info == 0
    expected = np.linalg.cholesky(M)
    np.testing.assert_allclose(factor, expected, rtol=0, atol=1e-12 * np.abs(M).max())
    assert np.all(np.triu(factor, 1) == 0.0)


def test_blocked_factor_keeps_float32(monkeypatch):
    monkeypatch.setattr(_base, "CHOLESKY_BLOCK", 32)
    M = _spd(100, dtype=np.float32)
    factor, info = _base.cholesky_lower(np.asfortranarray(M))
    assert info == 0 and factor.dtype == np.float32
    expected = np.linalg.cholesky(M.astype(np.float64))
    np.testing.assert_allclose(factor, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("bad", [5, 40, 99])
def test_blocked_factor_reports_the_first_bad_minor(monkeypatch, bad):
    """As LAPACK does: ``info`` is the order of the first leading minor that
    is not positive definite, found in any block."""
    M = _spd(100)
    M[bad, bad] = -1.0
    _, expected = _base.lapack.dpotrf(np.asfortranarray(M), lower=1)
    monkeypatch.setattr(_base, "CHOLESKY_BLOCK", 32)
    _, info = _base.cholesky_lower(np.asfortranarray(M))
    assert info == expected == bad + 1


def test_the_cholesky_solver_factorises_in_blocks(monkeypatch, classification):
    """``solver="cholesky"`` with the blocked factorisation gives the scores
    of the one-call factorisation."""
    from sklearn.linear_model import LogisticRegression

    from skrelatif import InfluenceExplainer

    X, y, X_test, _ = classification(3)
    model = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000).fit(X, y)
    expected = InfluenceExplainer(model, solver="cholesky").fit(X, y).transform(X_test)
    monkeypatch.setattr(_base, "CHOLESKY_BLOCK", 4)
    got = InfluenceExplainer(model, solver="cholesky").fit(X, y).transform(X_test)
    np.testing.assert_allclose(
        got, expected, rtol=0, atol=1e-10 * np.abs(expected).max()
    )


def test_the_data_space_solver_factorises_in_blocks(monkeypatch):
    """``solver="data-space"`` (its n K Gram system factorised in blocks of 16
    rows) against ``"cholesky"``: scores and RelatIF normalisers."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    from skrelatif import InfluenceExplainer

    rng = np.random.RandomState(0)
    X = sparse.random(90, 200, density=0.05, random_state=rng, format="csr")
    y = rng.randint(3, size=90)
    model = LogisticRegression(C=2.0, tol=1e-10, max_iter=2000).fit(X[:70], y[:70])
    exact = InfluenceExplainer(model, method="l-relatif", solver="cholesky")
    exact.fit(X[:70], y[:70])
    monkeypatch.setattr(_base, "CHOLESKY_BLOCK", 16)
    ex = InfluenceExplainer(model, method="l-relatif", solver="data-space")
    ex.fit(X[:70], y[:70])
    expected = exact.transform(X[70:])
    np.testing.assert_allclose(
        ex.transform(X[70:]), expected, rtol=0, atol=1e-9 * np.abs(expected).max()
    )
    np.testing.assert_allclose(ex.self_influence_, exact.self_influence_, rtol=1e-8)

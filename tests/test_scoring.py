"""The streaming top-k selection and the score products."""

import numpy as np
import pytest
from sklearn import config_context
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer, _scoring

from . import _dense


def _brute_top(scores, k, largest=True):
    """Top k per row by a stable sort on (score, index): ties to smaller index."""
    order = np.argsort(-scores if largest else scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


@pytest.mark.parametrize("largest", [True, False])
def test_best_k_beyond_equals_best_k_of_everything(largest):
    """Known k-th best scores of earlier columns (with ties, on the bound
    itself too) filter a later block exactly: the merged result is the top k of
    both blocks together, ties to the smaller index."""
    rng = np.random.default_rng(0)
    k = 4
    scores = rng.integers(0, 12, (30, 200)).astype(float)  # many ties
    earlier, later = scores[:, :50], scores[:, 50:]
    index = np.arange(200)
    best = _scoring.best_k(earlier, index[:50], k, largest=largest)
    bound = best[1][:, k - 1]
    part = _scoring.best_k_beyond(later, index[50:], k, bound, largest=largest)
    merged = _scoring._merge(best, part, k, largest)
    expected_index, expected = _brute_top(scores, k, largest)
    np.testing.assert_array_equal(merged[0], expected_index)
    np.testing.assert_array_equal(merged[1], expected)


def test_best_k_beyond_partitions_only_the_entries_beyond_the_bound(monkeypatch):
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((20, 1000))
    bound = np.quantile(scores, 0.99, axis=1)  # ~10 entries per row beyond it
    widths = []
    real = _scoring.best_k

    def recording(block, *args, **kwargs):
        widths.append(block.shape[1])
        return real(block, *args, **kwargs)

    monkeypatch.setattr(_scoring, "best_k", recording)
    index, scores_kept = _scoring.best_k_beyond(scores, np.arange(1000), 3, bound)
    assert widths and max(widths) <= 30  # not the 1000 columns
    beyond = np.where(scores > bound[:, None], scores, -np.inf)
    np.testing.assert_array_equal(index, _brute_top(beyond, 3)[0])
    np.testing.assert_array_equal(scores_kept, _brute_top(beyond, 3)[1])


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = LogisticRegression(C=0.1, tol=1e-10, max_iter=2000).fit(X[:250], y[:250])
    return model, X[:250], y[:250], X[600:700], y[600:700]


@pytest.mark.parametrize("n_test", [3, 40])  # fewer test points than classes, more
def test_score_products_match_the_dense_formula(digits, n_test):
    """Both ways of forming g_t^T H^-1 g_i (the (n, m, K) product reduced over
    k for a few test points; one GEMM with the gradient rows for many)."""
    model, X, y, X_test, y_test = digits
    ex = InfluenceExplainer(model, method="l-relatif").fit(X, y)
    expected, _ = _dense.scores(
        model, X, y, X_test[:n_test], y_test[:n_test], "l-relatif"
    )
    _dense.assert_close(ex.transform(X_test[:n_test], y_test[:n_test]), expected)


def test_streamed_top_k_equals_the_full_score_matrix(digits):
    """Tiny chunks: the running k-th bound filters every chunk after the first;
    the result is the sorted score matrix's top k (ties to the smaller index)."""
    model, X, y, X_test, y_test = digits
    ex = InfluenceExplainer(model, method="if").fit(X, y)
    full = ex.transform(X_test, y_test)
    with config_context(working_memory=0.02):
        e = ex.explain(X_test, y_test, k=6)
    for largest, index, scores in [
        (True, e.proponents, e.proponent_scores),
        (False, e.opponents, e.opponent_scores),
    ]:
        expected_index, expected = _brute_top(full, 6, largest)
        np.testing.assert_array_equal(index, expected_index)
        np.testing.assert_allclose(
            scores, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max()
        )

"""Linear datamodeling score (spec section 10), against independent retraining."""

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_wine,
    make_regression,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer
from skrelatif.validation import linear_datamodeling_score


def _ridge_closed_form(X, y, sample_weight, alpha):
    """Weighted ridge with an unpenalised intercept, by the normal equations
    on data centred at the weighted means (what ``Ridge`` minimises)."""
    sw = sample_weight / sample_weight.sum()
    x_mean, y_mean = sw @ X, sw @ y
    Xc, yc = X - x_mean, y - y_mean
    A = Xc.T @ (sample_weight[:, None] * Xc) + alpha * np.eye(X.shape[1])
    w = np.linalg.solve(A, Xc.T @ (sample_weight * yc))
    return w, y_mean - x_mean @ w


@pytest.fixture
def ridge_problem():
    X, y = make_regression(
        n_samples=52, n_features=4, noise=5.0, random_state=0, bias=3.0
    )
    sw = np.random.default_rng(1).uniform(0.5, 2.0, size=40)
    X_train, y_train, X_test, y_test = X[:40], y[:40], X[40:], y[40:]
    model = Ridge(alpha=2.0).fit(X_train, y_train, sample_weight=sw)
    explainer = InfluenceExplainer(model, method="if").fit(
        X_train, y_train, sample_weight=sw
    )
    rng = np.random.default_rng(2)
    subsets = rng.random((12, 40)) < 0.6
    subsets[:, 0] = True  # no subset is empty
    subsets[3] = True  # one keeps everything: its predicted change is 0
    return X_train, y_train, sw, X_test, y_test, explainer, subsets


@pytest.mark.parametrize("with_y", [True, False])
def test_ridge_explicit_subsets_match_closed_form(ridge_problem, with_y):
    X_train, y_train, sw, X_test, y_test, explainer, subsets = ridge_problem
    y_arg = y_test if with_y else None
    result = linear_datamodeling_score(explainer, X_test, y_arg, subsets=subsets)
    np.testing.assert_array_equal(result.subsets, subsets)

    # actual: an independent refit per subset, the tracked output itself
    expected = np.empty((len(subsets), len(X_test)))
    for s, keep in enumerate(subsets):
        w, b = _ridge_closed_form(X_train[keep], y_train[keep], sw[keep], 2.0)
        f = X_test @ w + b
        # the squared error (y - f)^2 with y; minus the prediction without
        expected[s] = (y_test - f) ** 2 if with_y else -f
    np.testing.assert_allclose(
        result.actual, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max()
    )

    # predicted: the sum of the removed examples' scores, by a loop
    scores = explainer.transform(X_test, y_arg)
    predicted = np.empty_like(expected)
    for s, keep in enumerate(subsets):
        predicted[s] = sum(
            (scores[:, i] for i in range(len(keep)) if not keep[i]),
            start=np.zeros(len(X_test)),
        )
    np.testing.assert_allclose(
        result.predicted, predicted, rtol=1e-12, atol=1e-12 * np.abs(predicted).max()
    )
    assert np.all(result.predicted[3] == 0)

    per_test = [
        stats.spearmanr(predicted[:, t], expected[:, t]).statistic
        for t in range(len(X_test))
    ]
    np.testing.assert_allclose(result.per_test, per_test, rtol=1e-12, atol=1e-12)
    assert result.score == pytest.approx(np.mean(per_test), rel=1e-12)
    # Ridge is linear in the data: the first-order prediction tracks the refit
    assert result.score > 0.5


def test_constant_column_gives_nan(ridge_problem):
    X_train, y_train, sw, X_test, y_test, explainer, _ = ridge_problem
    # every subset removes the same single example: predicted is constant
    subsets = np.ones((5, 40), dtype=bool)
    subsets[:, 7] = False
    result = linear_datamodeling_score(explainer, X_test, y_test, subsets=subsets)
    assert np.isnan(result.per_test).all()
    assert np.isnan(result.score)


@pytest.mark.parametrize(("alpha", "n_train"), [(0.5, 40), (0.3, 40), (0.77, 40)])
def test_drawn_subsets_size_and_reproducible(ridge_problem, alpha, n_train):
    _, _, _, X_test, y_test, explainer, _ = ridge_problem
    a = linear_datamodeling_score(
        explainer, X_test, y_test, n_subsets=7, alpha=alpha, random_state=3
    )
    b = linear_datamodeling_score(
        explainer, X_test, y_test, n_subsets=7, alpha=alpha, random_state=3,
        cache=False,
    )  # fmt: skip
    c = linear_datamodeling_score(
        explainer, X_test, y_test, n_subsets=7, alpha=alpha, random_state=4
    )
    assert a.subsets.shape == (7, n_train) and a.subsets.dtype == bool
    np.testing.assert_array_equal(a.subsets.sum(axis=1), round(alpha * n_train))
    np.testing.assert_array_equal(a.subsets, b.subsets)
    np.testing.assert_array_equal(a.actual, b.actual)
    assert not np.array_equal(a.subsets, c.subsets)
    assert len({row.tobytes() for row in a.subsets}) == 7


def test_drawn_subsets_are_uniform(ridge_problem):
    # each example is kept with probability alpha: over 200 subsets of 20 of
    # 40, each count is Binomial(200, 1/2) (sd 7.1); 6 sd bounds every one
    _, _, _, X_test, y_test, explainer, _ = ridge_problem
    result = linear_datamodeling_score(
        explainer, X_test[:2], y_test[:2], n_subsets=200, random_state=0
    )
    counts = result.subsets.sum(axis=0)
    assert np.abs(counts - 100).max() < 43


@pytest.fixture(scope="module")
def cancer_model():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X_train, y_train, X_test, y_test = X[:400], y[:400], X[400:430], y[400:430]
    model = LogisticRegression(C=0.1, tol=1e-12, max_iter=10_000)
    return model.fit(X_train, y_train), X_train, y_train, X_test, y_test


def test_logistic_lds_if_and_newton(cancer_model):
    model, X_train, y_train, X_test, y_test = cancer_model
    subsets = None
    scores = {}
    for method in ("if", "newton"):
        explainer = InfluenceExplainer(model, method=method).fit(X_train, y_train)
        result = linear_datamodeling_score(
            explainer,
            X_test,
            y_test,
            subsets=subsets,
            n_subsets=50,
            alpha=0.5,
            random_state=0,
        )
        subsets = result.subsets  # the same retrainings for both methods
        scores[method] = result.score
    # measured: "if" 0.9485, "newton" 0.9902
    assert scores["if"] >= 0.9
    assert scores["newton"] >= scores["if"]


def test_classifier_without_labels_tracks_predicted_labels(cancer_model):
    model, X_train, y_train, X_test, _ = cancer_model
    explainer = InfluenceExplainer(model, method="if").fit(X_train, y_train)
    rng = np.random.default_rng(0)
    subsets = rng.random((4, len(X_train))) < 0.5
    without = linear_datamodeling_score(explainer, X_test, subsets=subsets)
    labels = model.predict(X_test)
    with_labels = linear_datamodeling_score(explainer, X_test, labels, subsets=subsets)
    np.testing.assert_array_equal(without.actual, with_labels.actual)
    # the log-loss at the predicted labels, from the refit's own probabilities
    keep = subsets[0]
    refit = LogisticRegression(C=0.1, tol=1e-12, max_iter=10_000).fit(
        X_train[keep], y_train[keep]
    )
    proba = refit.predict_proba(X_test)[np.arange(len(X_test)), labels]
    np.testing.assert_allclose(without.actual[0], -np.log(proba), rtol=1e-6, atol=1e-9)


def test_subset_lacking_a_class_is_refused(cancer_model):
    model, X_train, y_train, X_test, y_test = cancer_model
    explainer = InfluenceExplainer(model, method="if").fit(X_train, y_train)
    subsets = np.ones((3, len(X_train)), dtype=bool)
    subsets[1] = y_train == 0
    with pytest.raises(ValueError, match=r"subsets \[1\] lack every example"):
        linear_datamodeling_score(explainer, X_test, y_test, subsets=subsets)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"subsets": np.ones((3, 41), dtype=bool)}, "shape"),
        ({"subsets": np.ones(40, dtype=bool)}, "shape"),
        ({"subsets": np.ones((1, 40), dtype=bool)}, "n_subsets >= 2"),
        ({"subsets": np.ones((3, 40), dtype=int)}, "boolean"),
        ({"subsets": np.vstack([np.ones(40), np.zeros(40)]).astype(bool)}, "keep no"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": 0.01}, "keeps round"),
        ({"n_subsets": 1}, "n_subsets"),
    ],
)
def test_bad_input(ridge_problem, kwargs, match):
    _, _, _, X_test, y_test, explainer, _ = ridge_problem
    with pytest.raises(ValueError, match=match):
        linear_datamodeling_score(explainer, X_test, y_test, **kwargs)


def test_results_do_not_depend_on_n_jobs(ridge_problem):
    from joblib import parallel_config

    _, _, _, X_test, y_test, explainer, subsets = ridge_problem
    one = linear_datamodeling_score(explainer, X_test, y_test, subsets=subsets)
    with parallel_config(backend="threading"):
        two = linear_datamodeling_score(
            explainer, X_test, y_test, subsets=subsets, n_jobs=2, cache=False
        )
    np.testing.assert_array_equal(one.actual, two.actual)
    np.testing.assert_array_equal(one.predicted, two.predicted)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["digits 0-4 vs 5-9", "wine"])
def test_logistic_lds_on_the_issue_s_other_datasets(task):
    # Issue 20's acceptance beside breast cancer (above) and 10-class digits
    # (benchmarks/bench_accuracy.py): exact "if" LDS >= 0.9 and the group
    # Newton step at least as good, on the same 50 refits.
    # measured: digits 0-4 vs 5-9 "if" 0.949, "newton" 0.996; wine 0.956, 0.992
    if task == "wine":
        X, y = load_wine(return_X_y=True)
    else:
        X, y = load_digits(return_X_y=True)
        y = (y >= 5).astype(int)
    X = StandardScaler().fit_transform(X)
    rng = np.random.RandomState(0)
    order = rng.permutation(len(y))
    n_train = min(600, int(0.75 * len(y)))
    train, test = order[:n_train], order[n_train : n_train + 30]
    model = LogisticRegression(C=0.05, tol=1e-12, max_iter=10_000)
    model.fit(X[train], y[train])
    subsets, scores = None, {}
    for method in ("if", "newton"):
        explainer = InfluenceExplainer(model, method=method).fit(X[train], y[train])
        result = linear_datamodeling_score(
            explainer, X[test], y[test], subsets=subsets, n_subsets=50,
            random_state=0,
        )  # fmt: skip
        subsets, scores[method] = result.subsets, result.score
    assert scores["if"] >= 0.9
    assert scores["newton"] >= scores["if"]

"""Removal curve (spec section 10, Brophy et al. 2023), against independent
retraining."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer
from skrelatif.validation import removal_curve

from .test_lds import _ridge_closed_form

FRACTIONS = (0.02, 0.05, 0.1, 0.25)


@pytest.fixture(scope="module")
def ridge_problem():
    X, y = make_regression(
        n_samples=46, n_features=4, noise=5.0, random_state=0, bias=3.0
    )
    sw = np.random.default_rng(1).uniform(0.5, 2.0, size=40)
    X_train, y_train, X_test, y_test = X[:40], y[:40], X[40:], y[40:]
    model = Ridge(alpha=2.0).fit(X_train, y_train, sample_weight=sw)
    explainer = InfluenceExplainer(model, method="if").fit(
        X_train, y_train, sample_weight=sw
    )
    return X_train, y_train, sw, X_test, y_test, explainer


@pytest.mark.parametrize("with_y", [True, False])
def test_ridge_matches_closed_form_refits(ridge_problem, with_y):
    X_train, y_train, sw, X_test, y_test, explainer = ridge_problem
    y_arg = y_test if with_y else None
    curve = removal_curve(explainer, X_test, y_arg, fractions=FRACTIONS, random_state=0)
    n_train, n_test = len(X_train), len(X_test)
    expected_sizes = [max(1, round(f * n_train)) for f in FRACTIONS]
    assert expected_sizes == [1, 2, 4, 10]
    np.testing.assert_array_equal(curve.sizes, expected_sizes)
    np.testing.assert_array_equal(curve.fractions, FRACTIONS)
    assert curve.change.shape == curve.random_change.shape == (n_test, 4)

    def output(keep):
        w, b = _ridge_closed_form(X_train[keep], y_train[keep], sw[keep], 2.0)
        f = X_test @ w + b
        return (y_test - f) ** 2 if with_y else -f

    reference = output(np.ones(n_train, dtype=bool))
    scores = explainer.transform(X_test, y_arg)
    expected = np.empty((n_test, 4))
    expected_random = np.empty((n_test, 4))
    for t in range(n_test):
        order = np.argsort(-scores[t], kind="stable")
        for j, size in enumerate(expected_sizes):
            # the removed set: exactly the top proponents, strongest first
            np.testing.assert_array_equal(curve.removed[t][j], order[:size])
            keep = np.ones(n_train, dtype=bool)
            keep[order[:size]] = False
            expected[t, j] = output(keep)[t] - reference[t]

            drop = np.asarray(curve.random_removed[t][j])
            assert drop.size == size == np.unique(drop).size
            keep = np.ones(n_train, dtype=bool)
            keep[drop] = False
            expected_random[t, j] = output(keep)[t] - reference[t]
        # random sets are nested, as the proponents are
        assert set(curve.random_removed[t][1]) <= set(curve.random_removed[t][3])
    for got, want in ((curve.change, expected), (curve.random_change, expected_random)):
        np.testing.assert_allclose(
            got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max()
        )
    # removing the proponents raises the tracked output more than random
    assert curve.change.mean() > curve.random_change.mean()


def test_random_sets_seeded(ridge_problem):
    _, _, _, X_test, y_test, explainer = ridge_problem
    a = removal_curve(
        explainer, X_test[:2], y_test[:2], fractions=(0.1,), random_state=3
    )
    b = removal_curve(
        explainer, X_test[:2], y_test[:2], fractions=(0.1,), random_state=3,
        cache=False,
    )  # fmt: skip
    c = removal_curve(
        explainer, X_test[:2], y_test[:2], fractions=(0.1,), random_state=4
    )
    np.testing.assert_array_equal(a.random_removed[0][0], b.random_removed[0][0])
    np.testing.assert_array_equal(a.random_change, b.random_change)
    assert not np.array_equal(a.random_removed[0][0], c.random_removed[0][0])
    # the fractions are kept in the order given
    d = removal_curve(explainer, X_test[:2], y_test[:2], fractions=(0.25, 0.05))
    np.testing.assert_array_equal(d.sizes, [10, 2])


def test_results_do_not_depend_on_n_jobs(ridge_problem):
    from joblib import parallel_config

    _, _, _, X_test, y_test, explainer = ridge_problem
    one = removal_curve(explainer, X_test, y_test, fractions=(0.05,), random_state=0)
    with parallel_config(backend="threading"):
        two = removal_curve(
            explainer, X_test, y_test, fractions=(0.05,), random_state=0, n_jobs=2,
            cache=False,
        )  # fmt: skip
    np.testing.assert_array_equal(one.change, two.change)
    np.testing.assert_array_equal(one.random_change, two.random_change)


def test_logistic_proponents_beat_random():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X_train, y_train, X_test, y_test = X[:300], y[:300], X[300:330], y[300:330]
    model = LogisticRegression(C=0.1, tol=1e-10, max_iter=10_000)
    model.fit(X_train, y_train)
    explainer = InfluenceExplainer(model, method="if").fit(X_train, y_train)
    curve = removal_curve(
        explainer, X_test, y_test, fractions=(0.01, 0.05), random_state=0
    )
    np.testing.assert_array_equal(curve.sizes, [3, 15])
    # independent check of one refit: sklearn's own fit without the set
    keep = np.ones(len(X_train), dtype=bool)
    keep[curve.removed[0][1]] = False
    refit = LogisticRegression(C=0.1, tol=1e-12, max_iter=10_000)
    refit.fit(X_train[keep], y_train[keep])
    full = LogisticRegression(C=0.1, tol=1e-12, max_iter=10_000).fit(X_train, y_train)

    def loss(m):
        return -np.log(m.predict_proba(X_test[:1])[0, y_test[0]])

    np.testing.assert_allclose(
        curve.change[0, 1], loss(refit) - loss(full), rtol=1e-5, atol=1e-8
    )
    top, rand = curve.change[:, 1].mean(), curve.random_change[:, 1].mean()
    print(f"mean test-loss change, 5% removed: top {top:.4g}, random {rand:.4g}")
    # measured: top 5% proponents 0.03373, random 5% 0.0007523 (30 test points)
    assert top > rand
    assert top > 10 * abs(rand)
    assert (curve.change[:, 1] >= curve.change[:, 0] - 1e-9).mean() > 0.8


@pytest.mark.parametrize(
    ("fractions", "match"),
    [
        ((), "at least one"),
        ((0.0, 0.1), r"\(0, 1\]"),
        ((-0.1,), r"\(0, 1\]"),
        ((1.5,), r"\(0, 1\]"),
        ((0.1, 0.1), "repeat"),
        ((1.0,), "remove all"),
        ((0.99,), "remove all"),
    ],
)
def test_bad_fractions(ridge_problem, fractions, match):
    _, _, _, X_test, y_test, explainer = ridge_problem
    with pytest.raises(ValueError, match=match):
        removal_curve(explainer, X_test, y_test, fractions=fractions)


def test_removal_dropping_a_class_is_refused():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = np.r_[np.zeros(28, dtype=int), np.ones(2, dtype=int)]
    X[y == 1] += 2.0
    model = LogisticRegression(tol=1e-10).fit(X, y)
    explainer = InfluenceExplainer(model, method="if").fit(X, y)
    # a point of class 1: its top proponents are the two class-1 examples
    with pytest.raises(
        ValueError,
        match="top 3 proponents for test point 0.*every example of a class",
    ):
        removal_curve(explainer, X[-1:], y[-1:], fractions=(0.1,), random_state=0)


def test_refits_that_do_not_converge_warn_once_at_the_caller(monkeypatch):
    """Both refit-based measures share one refit loop: a refit reported as
    not converged gives one ConvergenceWarning, pointing at the caller."""
    from sklearn.exceptions import ConvergenceWarning

    from skrelatif import validation
    from skrelatif.validation import linear_datamodeling_score

    X, y = make_regression(n_samples=40, n_features=3, noise=1.0, random_state=0)
    model = Ridge(alpha=1.0).fit(X[:30], y[:30])
    explainer = InfluenceExplainer(model, method="if").fit(X[:30], y[:30])
    fit_subset = validation._fit_subset

    def unconverged(*args):
        return fit_subset(*args)[0], False

    monkeypatch.setattr(validation, "_fit_subset", unconverged)
    for measure, kwargs in (
        (removal_curve, {"fractions": (0.1,)}),
        (linear_datamodeling_score, {"n_subsets": 3}),
    ):
        with pytest.warns(ConvergenceWarning, match="did not converge") as caught:
            measure(
                explainer, X[30:32], y[30:32], random_state=0, cache=False, **kwargs
            )
        assert len(caught) == 1 and caught[0].filename == __file__

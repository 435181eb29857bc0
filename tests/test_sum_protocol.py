"""The core's "sum over training examples" protocol (spec section 9), on a
toy family registered for these tests only: a weighted-mean regressor, whose
prediction ``f = sum_i s_i y_i / W`` is a sum over training examples with a
closed-form removal. Every figure is checked against refitting the toy
model, independently of the adapter."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.datasets import make_regression
from sklearn.linear_model import SGDRegressor

from skrelatif import InfluenceExplainer
from skrelatif._adapters._base import ModelAdapter, SumAdapter
from skrelatif.validation import leave_one_out


class WeightedMean(RegressorMixin, BaseEstimator):
    """Predicts the weighted mean of the training targets."""

    def fit(self, X, y, sample_weight=None):
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight)
        self.mean_ = float(np.sum(w * y) / np.sum(w))
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X):
        return np.full(np.asarray(X).shape[0], self.mean_)


def _newton_cross(state, f_removed):
    y, f = state
    if y is None:  # the prediction: positive = removing i lowers it
        return f - f_removed[None, :]
    return (y[:, None] - f_removed[None, :]) ** 2 - (y[:, None] - f) ** 2


def _first_order_cross(state, push):
    return np.outer(state, push)


@pytest.fixture
def mean_family(monkeypatch):
    """Register the toy family for one test only."""
    monkeypatch.setattr(ModelAdapter, "_registry", list(ModelAdapter._registry))

    class MeanAdapter(SumAdapter):
        estimator_types = (WeightedMean,)
        methods = ("if", "theta-relatif", "l-relatif", "newton")
        decomposes = "predict"
        tight_retraining = False

        def _candidates(self, X, y_encoded, sample_weight):
            self.baseline_ = 0.0
            return None

        @property
        def f(self):
            return self.estimator.mean_

        def predict_target(self, X):
            return self.estimator.predict(X)

        def losses(self, X, y_encoded):
            return (y_encoded - self.estimator.predict(X)) ** 2

        def self_products(self, rows):
            return ((self.y_[rows] - self.f) * self.sample_weight_[rows]) ** 2

        def test_state(self, X, y_encoded, method="if"):
            if method == "newton":
                return y_encoded, self.f
            # d l_t / d f (1 for the prediction itself)
            return (
                np.ones(X.shape[0]) if y_encoded is None else 2.0 * (y_encoded - self.f)
            )

        def payload(self, rows, method="if"):
            if method == "newton":
                return (self.loo_outputs()[rows, 0],)
            w = self.sample_weight_[rows]
            return ((self.y_[rows] - self.f) * w / self.weight_total_,)

        def cross_function(self, method):
            return _newton_cross if method == "newton" else _first_order_cross

        def outputs(self, X):
            return np.full((X.shape[0], 1), self.f)

        def output_losses(self, F, y_encoded):
            return (y_encoded - F[:, 0]) ** 2

        def removal_outputs(self, X, groups):
            W, s, y = self.weight_total_, self.sample_weight_, self.y_
            moved = [(W * self.f - s[g] @ y[g]) / (W - s[g].sum()) for g in groups]
            return np.tile(np.asarray(moved)[None, :, None], (X.shape[0], 1, 1))

        def loo_outputs(self):
            W, s, y = self.weight_total_, self.sample_weight_, self.y_
            return ((W * self.f - s * y) / (W - s))[:, None]

        def decompose(self, X):
            share = self.sample_weight_ * self.y_ / self.weight_total_
            return np.tile(share, (X.shape[0], 1))

    return MeanAdapter


@pytest.fixture
def data():
    X, y = make_regression(n_samples=40, n_features=3, random_state=0)
    weight = np.random.RandomState(1).uniform(0.5, 2.0, len(y))
    return X[:30], y[:30], weight[:30], X[30:], y[30:]


def _refit_mean(y, weight, drop):
    keep = np.setdiff1d(np.arange(len(y)), drop)
    return WeightedMean().fit(y[keep, None], y[keep], weight[keep]).mean_


def test_decompose_sums_to_the_prediction(mean_family, data):
    X, y, w, X_test, _ = data
    model = WeightedMean().fit(X, y, w)
    ex = InfluenceExplainer(model, method="if").fit(X, y, sample_weight=w)
    parts = ex.decompose(X_test)
    assert parts.shape == (len(X_test), len(y))
    scale = np.abs(y).max()
    np.testing.assert_allclose(
        parts.sum(axis=1) + ex.baseline_,
        model.predict(X_test),
        rtol=1e-12, atol=1e-12 * scale,
    )  # fmt: skip


def test_newton_removal_and_loo_loss_are_refits(mean_family, data):
    X, y, w, X_test, y_test = data
    model = WeightedMean().fit(X, y, w)
    ex = InfluenceExplainer(model, method="newton").fit(X, y, sample_weight=w)
    refit = np.array([_refit_mean(y, w, [i]) for i in range(len(y))])
    expected = (y_test[:, None] - refit[None, :]) ** 2 - (
        y_test[:, None] - model.mean_
    ) ** 2
    scale = np.abs(expected).max()
    np.testing.assert_allclose(
        ex.transform(X_test, y_test), expected, rtol=1e-10, atol=1e-12 * scale
    )
    # the prediction itself: positive = removing i lowers it
    np.testing.assert_allclose(
        ex.transform(X_test),
        np.tile(model.mean_ - refit, (len(X_test), 1)),
        rtol=1e-10,
        atol=1e-12 * np.abs(y).max(),
    )
    np.testing.assert_allclose(
        ex.loo_loss_, (y - refit) ** 2, rtol=1e-10, atol=1e-12 * scale
    )
    np.testing.assert_allclose(
        ex.self_influence_,
        (y - refit) ** 2 - (y - model.mean_) ** 2,
        rtol=1e-10,
        atol=1e-12 * scale,
    )


def test_predict_removal_groups(mean_family, data):
    X, y, w, X_test, y_test = data
    model = WeightedMean().fit(X, y, w)
    ex = InfluenceExplainer(model, method="if").fit(X, y, sample_weight=w)
    groups = [[0, 1, 2], [5], list(range(10, 25))]
    refit = np.array([_refit_mean(y, w, g) for g in groups])
    exact = (y_test[:, None] - refit) ** 2 - (y_test[:, None] - model.mean_) ** 2
    scale = np.abs(exact).max()
    np.testing.assert_allclose(
        ex.predict_removal(X_test, y_test, groups=groups),
        exact,
        rtol=1e-10,
        atol=1e-12 * scale,
    )
    # first order: the sum of the group's "if" scores, 2 (y_t - f)(y_i - f) s_i / W
    single = np.outer(2 * (y_test - model.mean_), (y - model.mean_) * w / w.sum())
    first = np.column_stack([single[:, g].sum(axis=1) for g in groups])
    np.testing.assert_allclose(
        ex.predict_removal(X_test, y_test, groups=groups, method="first-order"),
        first,
        rtol=1e-10,
        atol=1e-12 * np.abs(first).max(),
    )
    np.testing.assert_allclose(ex.transform(X_test, y_test), single, rtol=1e-10)
    # without y: minus the change of the prediction
    np.testing.assert_allclose(
        ex.predict_removal(X_test, groups=groups),
        np.tile(model.mean_ - refit, (len(X_test), 1)),
        rtol=1e-10,
        atol=1e-12 * np.abs(y).max(),
    )


def test_relatif_divides_by_the_self_product(mean_family, data):
    X, y, w, X_test, y_test = data
    model = WeightedMean().fit(X, y, w)
    scores = InfluenceExplainer(model, method="l-relatif").fit(X, y, w)
    norms = np.abs((y - model.mean_) * w)
    expected = np.outer(2 * (y_test - model.mean_), (y - model.mean_) * w / w.sum())
    np.testing.assert_allclose(
        scores.transform(X_test, y_test), expected / norms, rtol=1e-10
    )


def test_leave_one_out_refits_a_plain_clone(mean_family, data):
    X, y, w, X_test, y_test = data
    model = WeightedMean().fit(X, y, w)
    ex = InfluenceExplainer(model, method="newton").fit(X, y, sample_weight=w)
    result = leave_one_out(ex, X_test, y_test, [0, 3, 7])
    refit = np.array([_refit_mean(y, w, [i]) for i in (0, 3, 7)])
    expected = (y_test[:, None] - refit) ** 2 - (y_test[:, None] - model.mean_) ** 2
    np.testing.assert_allclose(
        result.test_loss_change,
        expected,
        rtol=1e-10,
        atol=1e-12 * np.abs(expected).max(),
    )


def test_methods_the_family_does_not_answer_are_refused(mean_family, data):
    X, y, w, X_test, _ = data
    model = WeightedMean().fit(X, y, w)
    ex = InfluenceExplainer(model, method="boostin")
    with pytest.raises(ValueError, match="method='boostin' does not apply to Weig"):
        ex.fit(X, y)
    assert not hasattr(ex, "_influence")
    fitted = InfluenceExplainer(model, method="if").fit(X, y, sample_weight=w)
    with pytest.raises(ValueError, match="flip_sets is not offered"):
        fitted.flip_sets(X_test)


def test_decompose_is_refused_where_not_offered():
    X, y = make_regression(n_samples=30, n_features=3, random_state=0)
    # SGD stops near its minimum, so its weights are not their representer sum
    y = y / y.std()
    model = SGDRegressor(random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match="not at a minimum"):
        ex = InfluenceExplainer(model, method="if").fit(X, y)
    with pytest.raises(ValueError, match="not offered as a sum over its training"):
        ex.decompose(X[:2])
    assert not hasattr(ex, "baseline_")

"""Tests of the nearest-neighbour baseline, NearestNeighborExplainer."""

import numpy as np
import pytest
from joblib import parallel_config
from scipy import sparse
from sklearn import config_context
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from skrelatif import Explanation, NearestNeighborExplainer


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X = X / X.max(axis=0)  # features in [0, 1]: the models converge quickly
    return X[:200], y[:200], X[200:220], y[200:220]


def _hand_distances(A, B):
    return np.sqrt(((A[:, None, :] - B[None, :, :]) ** 2).sum(axis=-1))


def test_scores_are_minus_distances_after_the_pipeline_transforms(cancer):
    X, y, X_test, _ = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    explainer = NearestNeighborExplainer(model).fit(X, y)
    scaler = model[0]
    expected = -_hand_distances(scaler.transform(X_test), scaler.transform(X))
    scores = explainer.transform(X_test)
    assert scores.shape == (len(X_test), len(X))
    np.testing.assert_allclose(scores, expected, rtol=1e-12, atol=1e-12)
    # The transforms matter: distances in the raw space give other neighbours.
    raw = np.argmin(_hand_distances(X_test, X), axis=1)
    assert (raw != np.argmax(expected, axis=1)).any()


def test_explain_returns_nearest_and_farthest(cancer):
    X, y, X_test, _ = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    explainer = NearestNeighborExplainer(model).fit(X, y)
    e = explainer.explain(X_test, k=4)
    assert isinstance(e, Explanation)
    assert e.method == "nearest-neighbor"
    distances = _hand_distances(model[0].transform(X_test), model[0].transform(X))
    order = np.argsort(distances, axis=1, kind="stable")
    np.testing.assert_array_equal(e.proponents, order[:, :4])
    np.testing.assert_array_equal(e.opponents, order[:, ::-1][:, :4])
    np.testing.assert_allclose(
        e.proponent_scores, -np.take_along_axis(distances, order[:, :4], 1)
    )
    np.testing.assert_allclose(
        e.opponent_scores, -np.take_along_axis(distances, order[:, ::-1][:, :4], 1)
    )
    assert (np.diff(e.proponent_scores, axis=1) <= 0).all()
    assert (np.diff(e.opponent_scores, axis=1) >= 0).all()
    np.testing.assert_array_equal(e.target, model.predict(X_test))
    np.testing.assert_array_equal(e.train_target, y)


def test_training_point_is_its_own_nearest_neighbour_and_ties_go_to_smaller_index():
    X, y = load_iris(return_X_y=True)
    X = np.vstack([X, X[[10]]])  # row 150 duplicates row 10
    y = np.append(y, y[10])
    explainer = NearestNeighborExplainer(LogisticRegression(max_iter=1000)).fit(X, y)
    e = explainer.explain(X[[0, 10, 150]], k=2)
    assert e.proponents[0, 0] == 0
    np.testing.assert_array_equal(e.proponents[1], [10, 150])
    np.testing.assert_array_equal(e.proponents[2], [10, 150])
    np.testing.assert_array_equal(e.proponent_scores[1:], 0.0)  # exact zeros
    assert (explainer.transform(X[:5]).max(axis=1) == 0).all()


def test_given_labels_change_target_not_neighbours(cancer):
    X, y, X_test, _ = cancer
    explainer = NearestNeighborExplainer(LogisticRegression(max_iter=5000)).fit(X, y)
    predicted = explainer.explain(X_test, k=3)
    flipped = explainer.explain(X_test, y=1 - predicted.target, k=3)
    np.testing.assert_array_equal(flipped.target, 1 - predicted.target)
    np.testing.assert_array_equal(flipped.proponents, predicted.proponents)
    with pytest.raises(ValueError, match="labels the model does not know"):
        explainer.explain(X_test, y=np.full(len(X_test), 5))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        explainer.transform(X_test, y=[0, 1])
    # Labels of another type get the same clear error, not a numpy traceback.
    with pytest.raises(ValueError, match=r"does not know: \['cat'\]"):
        explainer.explain(X_test[:2], y=["cat", "cat"])


def test_unknown_training_labels_are_rejected(cancer):
    X, y, _, _ = cancer
    model = LogisticRegression(max_iter=5000).fit(X, y)
    with pytest.raises(ValueError, match=r"does not know: \[7\]"):
        NearestNeighborExplainer(model).fit(X, np.where(y == 1, 7, y))


def test_fitted_model_is_used_as_is_and_unfitted_model_is_fitted(cancer):
    X, y, X_test, _ = cancer
    model = LogisticRegression(max_iter=5000).fit(X, y)
    coef = model.coef_.copy()
    explainer = NearestNeighborExplainer(model).fit(X[:100], y[:100])
    assert explainer.estimator_ is model
    np.testing.assert_array_equal(model.coef_, coef)
    np.testing.assert_array_equal(
        explainer.explain(X_test).target, model.predict(X_test)
    )

    unfitted = LogisticRegression(max_iter=5000)
    fitted = NearestNeighborExplainer(unfitted).fit(X, y)
    assert not hasattr(unfitted, "coef_")
    np.testing.assert_allclose(fitted.estimator_.coef_, model.coef_)
    frozen = NearestNeighborExplainer(FrozenEstimator(model)).fit(X, y)
    np.testing.assert_array_equal(frozen.transform(X_test), fitted.transform(X_test))
    np.testing.assert_array_equal(frozen.classes_, [0, 1])


def test_results_do_not_depend_on_chunking_or_n_jobs(cancer):
    X, y, X_test, _ = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    reference = NearestNeighborExplainer(model).fit(X, y)
    scores, e = reference.transform(X_test), reference.explain(X_test, k=3)
    with config_context(working_memory=0.002), parallel_config(backend="threading"):
        other = clone(reference).set_params(n_jobs=2).fit(X, y)
        np.testing.assert_array_equal(other.transform(X_test), scores)
        e2 = other.explain(X_test, k=3)
    np.testing.assert_array_equal(e2.proponents, e.proponents)
    np.testing.assert_array_equal(e2.opponent_scores, e.opponent_scores)


def test_sparse_input(cancer):
    X, y, X_test, _ = cancer
    dense = NearestNeighborExplainer(LogisticRegression(max_iter=5000)).fit(X, y)
    sp = NearestNeighborExplainer(LogisticRegression(max_iter=5000)).fit(
        sparse.csr_matrix(X), y
    )
    np.testing.assert_allclose(
        sp.transform(sparse.csr_matrix(X_test)), dense.transform(X_test), rtol=1e-6
    )


def test_bad_input(cancer):
    X, y, X_test, _ = cancer
    with pytest.raises(NotFittedError):
        NearestNeighborExplainer(LogisticRegression()).explain(X_test)
    explainer = NearestNeighborExplainer(LogisticRegression(max_iter=5000)).fit(X, y)
    for k in (0, len(X) + 1, 2.0, True):
        with pytest.raises(ValueError, match="k must be an integer"):
            explainer.explain(X_test, k=k)
    with pytest.raises(ValueError, match="features"):
        explainer.transform(X_test[:, :5])
    bad = X_test.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        explainer.transform(bad)
    with pytest.raises(ValueError, match="0 sample"):
        explainer.transform(X_test[:0])
    with pytest.raises(ValueError, match="requires y"):
        NearestNeighborExplainer(LogisticRegression()).fit(X, None)
    with pytest.raises(ValueError, match="model"):
        NearestNeighborExplainer("not a model").fit(X, y)


@pytest.mark.slow
def test_check_estimator():
    check_estimator(
        NearestNeighborExplainer(LogisticRegression()),
        expected_failed_checks={
            # One output column per training example: repeating a row (or
            # weighting it) changes the number of columns by design.
            "check_sample_weight_equivalence_on_dense_data": "one column per row",
            "check_sample_weight_equivalence_on_sparse_data": "one column per row",
        },
    )


def test_regressor_neighbours_need_no_labels():
    """A regressor's explanation: neighbours in its input space, its predictions
    as the target, float training targets, no label matching."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, -2.0, 0.5] + rng.normal(scale=0.1, size=40)
    model = LinearRegression().fit(X, y)
    explainer = NearestNeighborExplainer(model).fit(X, y)
    assert not hasattr(explainer, "classes_")
    e = explainer.explain(X[:3] + 0.01, k=2)
    np.testing.assert_array_equal(e.proponents[:, 0], [0, 1, 2])
    np.testing.assert_allclose(e.target, model.predict(X[:3] + 0.01))
    np.testing.assert_allclose(e.train_target[e.proponents[:, 0]], y[:3])
    # any float y is accepted (no label matching), with the neighbours unchanged
    given = explainer.explain(X[:3] + 0.01, y=[10.5, -3.0, 0.25], k=2)
    np.testing.assert_array_equal(given.proponents, e.proponents)
    np.testing.assert_allclose(given.target, [10.5, -3.0, 0.25])

"""The conformance suite: every registered adapter, through one set of checks.

Parametrised over the adapter registry (each estimator class a case from
``_families.py``), it checks the adapter contract of
:mod:`skrelatif._adapters._base` against independent computations:

- the adapter's predictions and per-example losses against the estimator's
  own outputs and its documented objective (``_families.py``);
- parametric families: gradients against central finite differences of
  those losses in the parameters, curvature-vector products against finite
  differences of the objective's gradient, and the dense curvature against
  its products;
- the explainer's scores against a dense formula built from those checked
  pieces (``np.linalg`` solves), for every first-order method;
- results independent of ``n_jobs`` and of chunk sizes;
- the bad inputs of spec section 4 get clear errors, and the model, X and y
  are never modified.

The adapters are used through their documented contract (``find_adapter``,
``bind``); the explainer through its public API only.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from sklearn import config_context
from sklearn.base import is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.utils import get_tags

from skrelatif import InfluenceExplainer
from skrelatif._adapters import ModelAdapter, find_adapter
from skrelatif._adapters._base import ParametricAdapter

from ._families import case

CLASSES = [t for adapter in ModelAdapter._registry for t in adapter.estimator_types]


def _ids(estimator_class):
    return estimator_class.__name__


def _bound(fixture):
    final = fixture.model
    adapter = find_adapter(final)(final)
    y_encoded = adapter.encode_target(fixture.y)
    return adapter.bind(fixture.X, y_encoded, None), y_encoded


def _close(actual, expected, rtol):
    """``actual == expected`` to ``rtol`` relative plus ``rtol`` times the
    largest expected magnitude (scale-aware near zero)."""
    scale = np.max(np.abs(expected)) if np.size(expected) else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("estimator_class", CLASSES, ids=_ids)
def test_every_registered_class_has_a_fixture(estimator_class):
    case(estimator_class)  # KeyError: add the class to _families.CASES


@pytest.mark.parametrize("estimator_class", CLASSES, ids=_ids)
def test_predictions_and_losses_are_the_estimator_s(estimator_class):
    fixture = case(estimator_class)
    adapter, y_encoded = _bound(fixture)
    predicted = adapter.decode_target(adapter.predict_target(fixture.X_test))
    expected = fixture.model.predict(fixture.X_test)
    if is_regressor(fixture.model):
        expected = fixture.prediction(fixture.model, fixture.X_test)
        _close(predicted, expected, 1e-10)
    else:
        np.testing.assert_array_equal(predicted, expected)
    if fixture.loss is not None:
        y_test = adapter.encode_target(fixture.y_test)
        _close(
            adapter.losses(fixture.X_test, y_test),
            fixture.loss(fixture.model, fixture.X_test, fixture.y_test),
            1e-8,
        )


def _parametric(estimator_class):
    adapter_class = find_adapter(case(estimator_class).model)
    if not issubclass(adapter_class, ParametricAdapter):
        pytest.skip("a sum over training examples has no parameters")


@pytest.mark.parametrize("estimator_class", CLASSES, ids=_ids)
def test_gradients_match_finite_differences(estimator_class):
    _parametric(estimator_class)
    fixture = case(estimator_class)
    adapter, y_encoded = _bound(fixture)
    X = fixture.X[:8]
    direction, norm = adapter.loss_gradients(X, y_encoded[:8])
    G = adapter.gradients(X, direction * norm[:, None])  # (8, P)
    theta = adapter.parameters()
    rng = np.random.RandomState(0)
    for _ in range(3):
        v = rng.standard_normal(theta.size)
        h = 1e-5 * max(1.0, np.linalg.norm(theta)) / np.linalg.norm(v)
        up = adapter.at(theta + h * v).losses(X, y_encoded[:8])
        down = adapter.at(theta - h * v).losses(X, y_encoded[:8])
        _close(G @ v, (up - down) / (2 * h), 1e-5)


@pytest.mark.parametrize("estimator_class", CLASSES, ids=_ids)
def test_curvature_matches_finite_differences(estimator_class):
    _parametric(estimator_class)
    fixture = case(estimator_class)
    adapter, y_encoded = _bound(fixture)
    X = fixture.X.astype(np.float64)
    weights = adapter.loss_scale * adapter.sample_weight_
    operator = adapter.hessian_operator(X, y_encoded, weights, curvature="exact")
    theta = adapter.parameters()
    rng = np.random.RandomState(1)
    V = operator.remove_null(rng.standard_normal((2, theta.size)))
    HV = operator.matvec(V)
    for v, hv in zip(V, HV):
        h = 1e-5 * max(1.0, np.linalg.norm(theta)) / np.linalg.norm(v)
        up = adapter.at(theta + h * v).objective_gradient(X, y_encoded, weights)[0]
        down = adapter.at(theta - h * v).objective_gradient(X, y_encoded, weights)[0]
        _close(hv, (up - down) / (2 * h), 1e-5)
    _close(V @ operator.dense(), HV, 1e-10)


@pytest.mark.parametrize("method", ["if", "theta-relatif", "l-relatif"])
@pytest.mark.parametrize("estimator_class", CLASSES, ids=_ids)
def test_scores_match_the_dense_formula(estimator_class, method):
    _parametric(estimator_class)
    fixture = case(estimator_class)
    adapter, y_encoded = _bound(fixture)
    X = fixture.X.astype(np.float64)
    weights = adapter.loss_scale * adapter.sample_weight_
    H = adapter.hessian_operator(X, y_encoded, weights, curvature="exact").dense()
    null = adapter.null_space()
    if null is not None:  # H^+ on the complement of the flat directions
        H = H + null @ null.T
    direction, norm = adapter.loss_gradients(X, y_encoded)
    G = adapter.gradients(X, direction * norm[:, None])
    y_test = adapter.encode_target(fixture.y_test)
    direction_t, norm_t = adapter.loss_gradients(fixture.X_test, y_test)
    Gt = adapter.gradients(fixture.X_test, direction_t * norm_t[:, None])
    solved = np.linalg.solve(H, G.T).T  # rows H^-1 g_i
    cross = Gt @ solved.T
    if method == "if":
        expected = cross * weights
    elif method == "theta-relatif":
        expected = cross / np.linalg.norm(solved, axis=1)
    else:
        expected = cross / np.sqrt(np.einsum("ij,ij->i", solved, G))
    explainer = InfluenceExplainer(
        fixture.model, method=method, hessian="exact", solver="cholesky", damping=0
    ).fit(fixture.X, fixture.y)
    _close(explainer.transform(fixture.X_test, fixture.y_test), expected, 1e-7)


@pytest.mark.parametrize("estimator_class", CLASSES, ids=_ids)
def test_results_do_not_depend_on_n_jobs_or_chunks(estimator_class):
    fixture = case(estimator_class)
    explainer = InfluenceExplainer(fixture.model).fit(fixture.X, fixture.y)
    expected = explainer.transform(fixture.X_test)
    with config_context(working_memory=0.001):
        small = InfluenceExplainer(fixture.model, n_jobs=2).fit(fixture.X, fixture.y)
        chunked = small.transform(fixture.X_test)
        top = small.explain(fixture.X_test, k=3)
    _close(chunked, expected, 1e-9)
    reference = explainer.explain(fixture.X_test, k=3)
    _close(top.proponent_scores, reference.proponent_scores, 1e-9)


@pytest.mark.parametrize("estimator_class", CLASSES, ids=_ids)
def test_bad_input_is_refused_and_nothing_changes(estimator_class):
    fixture = case(estimator_class)
    model_state = pickle.dumps(fixture.model)
    X, y = fixture.X.copy(), fixture.y.copy()
    explainer = InfluenceExplainer(fixture.model)
    with pytest.raises(NotFittedError):
        explainer.transform(fixture.X_test)
    bad_X = X.copy()
    bad_X[0, 0] = np.nan
    bad_inputs = [
        ((X[:, :-1], y), ValueError),  # wrong number of features
        ((X, y[:-1]), ValueError),  # X / y lengths
        ((X[:0], y[:0]), ValueError),  # empty
    ]
    if not get_tags(fixture.model).input_tags.allow_nan:  # NaN: a missing value
        bad_inputs.append(((bad_X, y), ValueError))
    for args, error in bad_inputs:
        with pytest.raises(error):
            InfluenceExplainer(fixture.model).fit(*args)
    explainer.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        explainer.transform(fixture.X_test[:, :-1])
    with pytest.raises(ValueError, match="k"):
        explainer.explain(fixture.X_test, k=0)
    if not is_regressor(fixture.model):
        with pytest.raises(ValueError, match="labels the model does not know"):
            explainer.transform(fixture.X_test[:2], ["no such label"] * 2)
    explainer.explain(fixture.X_test, k=2)
    np.testing.assert_array_equal(X, fixture.X)
    np.testing.assert_array_equal(y, fixture.y)
    assert pickle.dumps(fixture.model) == model_state  # the model untouched


def test_an_unregistered_subclass_is_refused():
    from sklearn.linear_model import Ridge

    class MyRidge(Ridge):
        pass

    with pytest.raises(TypeError, match="MyRidge is not supported"):
        find_adapter(MyRidge())
    assert copy.copy(CLASSES)  # the registry is not empty


@pytest.mark.parametrize("estimator_class", CLASSES, ids=_ids)
def test_binding_returns_a_copy_that_nothing_changes_afterwards(estimator_class):
    fixture = case(estimator_class)
    adapter = find_adapter(fixture.model)(fixture.model)
    y_encoded = adapter.encode_target(fixture.y)
    before = set(vars(adapter))
    bound = adapter.bind(fixture.X, y_encoded, None)
    assert bound is not adapter and set(vars(adapter)) == before
    with pytest.raises(RuntimeError, match="bound"):
        adapter._bound("weight_total_")
    state = {name: id(value) for name, value in vars(bound).items()}
    # what the core asks of a bound adapter sets nothing on it
    if fixture.loss is not None:
        bound.losses(fixture.X_test, adapter.encode_target(fixture.y_test))
    bound.predict_target(fixture.X_test)
    if isinstance(bound, ParametricAdapter):
        direction, _ = bound.loss_gradients(fixture.X, y_encoded)
        bound.gradients(fixture.X, direction)
        bound.penalty_shares()
        _ = bound.loss_scale
    else:
        bound.self_products(bound.candidates_)
    assert {name: id(value) for name, value in vars(bound).items()} == state

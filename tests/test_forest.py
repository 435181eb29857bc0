"""Random forests and extremely randomised trees (``skrelatif._adapters.forest``).

The references here are written from scratch: each tree's in-bag weights
from scikit-learn's public ``estimators_samples_`` (and the class weights
computed by hand), every node's weight and value from ``tree.decision_path``
over those weights, and a removal by recomputing every node without the
removed rows (an emptied leaf walking up the tree in a Python loop). First-
order scores are checked against central finite differences of those
recomputed leaf values in the removed example's weight.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

from skrelatif._adapters import find_adapter
from skrelatif._adapters.forest import EPS, ForestAdapter

N_TRAIN, N_TEST = 80, 12


def _close(actual, expected, rtol):
    scale = np.max(np.abs(expected)) if np.size(expected) else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


# -- data and models -----------------------------------------------------------------
def _data(kind, seed=0):
    if kind == "regression":
        X, y = make_regression(N_TRAIN + N_TEST, 4, noise=10.0, random_state=seed)
        y = y / y.std()
    else:
        n_classes = 2 if kind == "binary" else 3
        X, y = make_classification(
            N_TRAIN + N_TEST, 4, n_informative=4, n_redundant=0,
            n_classes=n_classes, n_clusters_per_class=1, flip_y=0.1,
            class_sep=0.8, weights=[0.6] + [0.4 / (n_classes - 1)] * (n_classes - 1),
            random_state=seed,
        )  # fmt: skip
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


def _weights(seed=1):
    return np.random.RandomState(seed).uniform(0.3, 2.0, N_TRAIN)


#: name -> (estimator, data kind, sample weights?)
CONFIGS = {
    "rf-clf": (RandomForestClassifier(n_estimators=6, min_samples_leaf=3), "multi", False),
    "rf-clf-full": (RandomForestClassifier(n_estimators=6), "binary", False),
    "rf-clf-weighted-balanced": (
        RandomForestClassifier(n_estimators=6, class_weight="balanced", max_depth=4),
        "multi", True,
    ),
    "rf-clf-subsample-float": (
        RandomForestClassifier(n_estimators=6, class_weight="balanced_subsample",
                               max_samples=0.6, min_samples_leaf=2),
        "multi", True,
    ),
    "rf-clf-dict-int": (
        RandomForestClassifier(n_estimators=6, class_weight={0: 1.0, 1: 3.0},
                               max_samples=50, max_leaf_nodes=8),
        "binary", False,
    ),
    "rf-reg": (RandomForestRegressor(n_estimators=6, min_samples_leaf=4), "regression", False),
    "rf-reg-full-weighted": (RandomForestRegressor(n_estimators=6), "regression", True),
    "rf-reg-nobootstrap": (
        RandomForestRegressor(n_estimators=5, bootstrap=False, max_features=2,
                              min_samples_leaf=3),
        "regression", True,
    ),
    "et-clf": (ExtraTreesClassifier(n_estimators=6, min_samples_leaf=2), "multi", True),
    "et-clf-bootstrap-subsample": (
        ExtraTreesClassifier(n_estimators=6, bootstrap=True,
                             class_weight="balanced_subsample", max_depth=5),
        "binary", False,
    ),
    "et-reg": (ExtraTreesRegressor(n_estimators=6, max_depth=5), "regression", False),
    "et-reg-bootstrap": (
        ExtraTreesRegressor(n_estimators=6, bootstrap=True, max_samples=0.7),
        "regression", True,
    ),
}  # fmt: skip


def _fitted(name, seed=0):
    estimator, kind, weighted = CONFIGS[name]
    X, y, X_test, y_test = _data(kind, seed)
    sample_weight = _weights() if weighted else None
    model = estimator.set_params(random_state=seed).fit(X, y, sample_weight=sample_weight)
    return model, X, y, X_test, y_test, sample_weight


def _bound(model, X, y, sample_weight):
    adapter = find_adapter(model)(model)
    return adapter.bind(X, adapter.encode_target(y), sample_weight)


# -- the reference ---------------------------------------------------------------------
def reference_weights(model, y, sample_weight):
    """(B, n) weights each tree was fitted with, from ``estimators_samples_``."""
    n = len(y)
    base = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    classifier = hasattr(model, "classes_")
    class_weight = model.class_weight if classifier else None
    label = np.searchsorted(model.classes_, y) if classifier else None
    per_row = np.ones(n)
    if isinstance(class_weight, dict):
        per_row = np.array([class_weight.get(c, 1.0) for c in y])
    elif class_weight == "balanced" or (
        class_weight == "balanced_subsample" and not model.bootstrap
    ):
        totals = np.bincount(label, weights=base)
        per_row = (base.sum() / (len(totals) * totals))[label]
    weights = []
    for drawn in model.estimators_samples_:
        if not model.bootstrap:
            weights.append(base * per_row)
            continue
        u = np.bincount(drawn, minlength=n).astype(float)
        if class_weight == "balanced_subsample":
            counts = np.bincount(label[drawn], minlength=len(model.classes_))
            present = counts > 0
            share = np.zeros(len(counts))
            share[present] = len(drawn) / (present.sum() * counts[present])
            u = u * share[label]
        weights.append(u)
    return np.array(weights)


def _targets(model, y):
    if hasattr(model, "classes_"):
        return (y[:, None] == model.classes_[None, :]).astype(float)
    return np.asarray(y, float)[:, None]


def reference_nodes(tree, X, u, Y):
    """Every node's weight, value and positive-weight row count, by decision paths."""
    path = tree.decision_path(X.astype(np.float32)).toarray()  # (n, nodes)
    W = path.T @ u
    S = path.T @ (u[:, None] * Y)
    count = path.T @ (u > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return W, S / W[:, None], count


def _parent_of(tree):
    parent = {}
    for node in range(tree.node_count):
        for child in (tree.children_left[node], tree.children_right[node]):
            if child >= 0:
                parent[child] = node
    return parent


def reference_outputs(model, X, Y, U, X_test, removed=()):
    """The forest's outputs on ``X_test`` with the rows ``removed`` given weight
    0 in every tree and each tree's leaf values recomputed (structure fixed;
    an emptied leaf takes its nearest ancestor's value that keeps rows)."""
    outputs = np.zeros((X_test.shape[0], Y.shape[1]))
    for b, estimator in enumerate(model.estimators_):
        tree = estimator.tree_
        u = U[b].copy()
        _, fitted, _ = reference_nodes(tree, X, u, Y)
        u[list(removed)] = 0.0
        W, value, count = reference_nodes(tree, X, u, Y)
        parent = _parent_of(tree)
        for t, leaf in enumerate(estimator.apply(X_test.astype(np.float32))):
            node = leaf
            while count[node] == 0 and node in parent:
                node = parent[node]
            outputs[t] += fitted[leaf] if count[node] == 0 else value[node]
    return outputs / len(model.estimators_)


def _loss(model, outputs, label):
    """Reference test losses: clipped log-loss or squared error."""
    if hasattr(model, "classes_"):
        return -np.log(np.maximum(outputs[np.arange(len(label)), label], EPS))
    return (label - outputs[:, 0]) ** 2


# -- the weights and every node ------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_in_bag_weights_and_every_node_are_reconstructed(name):
    model, X, y, _, _, sample_weight = _fitted(name)
    adapter = _bound(model, X, y, sample_weight)
    U = reference_weights(model, y, sample_weight)
    _close(adapter.U_, U, 1e-12)
    Y = _targets(model, y)
    for b, estimator in enumerate(model.estimators_):
        tree = estimator.tree_
        W, value, count = reference_nodes(tree, X, U[b], Y)
        nodes = slice(adapter.offsets_[b], adapter.offsets_[b] + tree.node_count)
        _close(value, tree.value[:, 0, :], 1e-10)  # every leaf and inner node
        _close(W, tree.weighted_n_node_samples, 1e-10)
        _close(adapter.node_value_[nodes], value, 1e-10)
        np.testing.assert_array_equal(adapter.node_count_[nodes], count)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_decomposition_sums_to_the_output_and_matches_the_dense_formula(name):
    model, X, y, X_test, _, sample_weight = _fitted(name)
    adapter = _bound(model, X, y, sample_weight)
    parts = adapter.decompose(X_test)
    if hasattr(model, "classes_"):
        expected_total = model.predict_proba(X_test)
    else:
        expected_total = model.predict(X_test)
    _close(parts.sum(axis=1) + adapter.baseline_, expected_total, 1e-10)
    # A(x, i) = 1/B sum_b [same leaf] u_bi / W_bL, times y_i
    U = reference_weights(model, y, sample_weight)
    A = np.zeros((len(X_test), len(X)))
    for b, estimator in enumerate(model.estimators_):
        test_leaf = estimator.apply(X_test.astype(np.float32))
        train_leaf = estimator.apply(X.astype(np.float32))
        W = estimator.tree_.weighted_n_node_samples
        same = test_leaf[:, None] == train_leaf[None, :]
        A += same * U[b][None, :] / W[test_leaf][:, None]
    A /= len(model.estimators_)
    Y = _targets(model, y)
    expected = A * Y[:, 0] if parts.ndim == 2 else A[:, :, None] * Y[None]
    _close(parts, expected, 1e-10)

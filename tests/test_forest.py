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

import functools

import numpy as np
import pytest
import sklearn
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import Ridge
from sklearn.utils.fixes import parse_version

from skrelatif import InfluenceExplainer
from skrelatif._adapters import find_adapter
from skrelatif._adapters.forest import EPS

N_TRAIN, N_TEST = 80, 12
#: scikit-learn >= 1.9 draws bootstraps in proportion to the sample weights
WEIGHTED_DRAWS = parse_version(sklearn.__version__).release >= (1, 9)


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
    "rf-clf": (
        RandomForestClassifier(n_estimators=6, min_samples_leaf=3), "multi", False
    ),
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
    "rf-reg": (
        RandomForestRegressor(n_estimators=6, min_samples_leaf=4), "regression", False
    ),
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
    model = estimator.set_params(random_state=seed).fit(
        X, y, sample_weight=sample_weight
    )
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
        # scikit-learn >= 1.9 counts the classes with the sample weights
        counted = base if WEIGHTED_DRAWS else np.ones(n)
        totals = np.bincount(label, weights=counted)
        per_row = (counted.sum() / (len(totals) * totals))[label]
    weights = []
    for drawn in model.estimators_samples_:
        if not model.bootstrap:
            weights.append(base * per_row)
            continue
        u = np.bincount(drawn, minlength=n).astype(float)
        if not WEIGHTED_DRAWS:  # uniform draws, their counts times the weights
            u = u * base * per_row
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


class Reference:
    """A fitted forest recomputed from scratch: every node's weight and value
    from decision paths over the in-bag weights ``U`` (see the module
    docstring), with any weights changed."""

    def __init__(self, model, X, y, sample_weight):
        self.model, self.X = model, X.astype(np.float32)
        self.U = reference_weights(model, y, sample_weight)
        self.Y = _targets(model, y)
        self.trees = [estimator.tree_ for estimator in model.estimators_]
        self.paths = [
            e.decision_path(self.X).toarray().astype(float) for e in model.estimators_
        ]
        self.parents = [_parent_of(tree) for tree in self.trees]
        self.fitted = [self.nodes(b, u) for b, u in enumerate(self.U)]
        self._applied = {}

    def apply(self, X_test):
        """Each tree's leaf of each row of ``X_test`` (cached)."""
        key = X_test.tobytes()
        if key not in self._applied:
            X_test = X_test.astype(np.float32)
            self._applied[key] = [e.apply(X_test) for e in self.model.estimators_]
        return self._applied[key]

    def nodes(self, b, u):
        """Weight, value (nodes, K) and positive-weight row count of every node."""

        def total(a):  # path^T a (float BLAS, real and imaginary parts apart)
            if np.iscomplexobj(a):
                return self.paths[b].T @ a.real + 1j * (self.paths[b].T @ a.imag)
            return self.paths[b].T @ a

        W = total(u)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = total(u[:, None] * self.Y) / W[:, None]
        return W, value, total((u != 0).astype(float))

    def outputs(self, X_test, removed=(), scale=None):
        """Outputs on ``X_test`` with the rows ``removed`` given weight 0 (or
        every weight multiplied by ``scale``, (n,) possibly complex), each
        tree's leaf values recomputed (structure fixed; an emptied leaf takes
        its nearest ancestor's value that keeps rows, a tree whose whole bag
        is removed its fitted values)."""
        dtype = complex if scale is not None and np.iscomplexobj(scale) else float
        outputs = np.zeros((X_test.shape[0], self.Y.shape[1]), dtype=dtype)
        for b, test_leaves in enumerate(self.apply(X_test)):
            _, fitted, _ = self.fitted[b]
            u = self.U[b] * (1.0 if scale is None else scale)
            u[list(removed)] = 0.0
            W, value, count = self.nodes(b, u)
            parent = self.parents[b]
            for t, leaf in enumerate(test_leaves):
                node = leaf
                while count[node] == 0 and node in parent:
                    node = parent[node]
                outputs[t] += fitted[leaf] if count[node] == 0 else value[node]
        return outputs / len(self.trees)

    def leaf_derivatives(self, i, h=1e-20):
        """d(leaf values)/d(eps) (per tree: (n_leaves, K)) when example i's
        weights are multiplied by ``1 - eps``, by the complex step, with each
        leaf's weight."""
        scale = np.ones(len(self.Y), dtype=complex)
        scale[i] = 1.0 - 1j * h
        derivatives = []
        for b, tree in enumerate(self.trees):
            leaves = tree.children_left == -1
            W, _, _ = self.fitted[b]
            _, value, _ = self.nodes(b, self.U[b] * scale)
            derivatives.append((value[leaves].imag / h, W[leaves]))
        return derivatives


def _parent_of(tree):
    parent = {}
    for node in range(tree.node_count):
        for child in (tree.children_left[node], tree.children_right[node]):
            if child >= 0:
                parent[child] = node
    return parent


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
    reference = Reference(model, X, y, sample_weight)
    _close(adapter.U_, reference.U, 1e-12)
    for b, tree in enumerate(reference.trees):
        W, value, count = reference.nodes(b, reference.U[b])
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


# -- exact removal --------------------------------------------------------------------
def _groups(n, seed=0):
    rng = np.random.RandomState(seed)
    return [np.array([i]) for i in range(0, n, 7)] + [
        rng.choice(n, size, replace=False) for size in (3, 10, 40, n)
    ]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_exact_removal_equals_refitting_the_leaf_values(name):
    model, X, y, X_test, y_test, sample_weight = _fitted(name)
    adapter = _bound(model, X, y, sample_weight)
    reference = Reference(model, X, y, sample_weight)
    groups = _groups(len(X))  # singletons, groups, and the whole training set
    moved = adapter.removal_outputs(X_test, groups)
    for g, group in enumerate(groups):
        _close(moved[:, g], reference.outputs(X_test, removed=group), 1e-10)
    # each example's own outputs without it (loo_outputs)
    rows = np.arange(0, len(X), 3)
    own = np.array([reference.outputs(X[i : i + 1], removed=[i])[0] for i in rows])
    _close(adapter.loo_outputs()[rows], own, 1e-10)


# -- scores through the explainer ---------------------------------------------------
METHODS = ("if", "theta-relatif", "l-relatif", "newton")


def _explained(model, X_test, y_test, outputs):
    """(labels or targets, ∇l_t) of the explained test points: ``y_test``,
    or (None, -1) for a regressor's prediction."""
    if y_test is None:
        return None, -np.ones(len(X_test))
    if hasattr(model, "classes_"):
        label = np.searchsorted(model.classes_, y_test)
        p = outputs[np.arange(len(label)), label]
        return label, -1.0 / np.maximum(p, EPS)
    return y_test, -2.0 * (y_test - outputs[:, 0])


@functools.cache
def reference_scores(name, with_labels):
    """{method: (n_test, n_train) scores} and the "if" self-influence, from
    refits of the leaf values (``"newton"``) and complex-step derivatives in
    each example's weight (the first-order methods)."""
    model, X, y, X_test, y_test, sample_weight = _fitted(name)
    reference = Reference(model, X, y, sample_weight)
    y_test = y_test if with_labels else None
    if y_test is None and hasattr(model, "classes_"):
        y_test = model.predict(X_test)
    outputs = reference.outputs(X_test)
    target, gradient = _explained(model, X_test, y_test, outputs)
    n, h = len(X), 1e-20
    scores = {method: np.zeros((len(X_test), n)) for method in METHODS}
    self_influence = np.zeros(n)
    norms = np.zeros((2, n))
    for i in range(n):
        # exact removal: the loss after minus the loss now (or -Δf)
        removed = reference.outputs(X_test, removed=[i])
        if target is None:
            scores["newton"][:, i] = -(removed[:, 0] - outputs[:, 0])
        else:
            scores["newton"][:, i] = _loss(model, removed, target) - _loss(
                model, outputs, target
            )
        # first order: d/d eps of the outputs, weights times (1 - eps)
        scale = np.ones(n, dtype=complex)
        scale[i] = 1.0 - 1j * h
        derivative = reference.outputs(X_test, scale=scale).imag / h
        column = 0 if target is None or not hasattr(model, "classes_") else target
        if hasattr(model, "classes_"):
            change = derivative[np.arange(len(X_test)), column]
        else:
            change = derivative[:, 0]
        scores["if"][:, i] = gradient * change
        leaves = reference.leaf_derivatives(i, h)
        norms[0, i] = np.sqrt(sum((d**2).sum() for d, _ in leaves))
        norms[1, i] = np.sqrt(sum((W[:, None] * d**2).sum() for d, W in leaves))
        own_output = reference.outputs(X[i : i + 1])
        own_target, own_gradient = _explained(
            model, X[i : i + 1], y[i : i + 1], own_output
        )
        own_derivative = reference.outputs(X[i : i + 1], scale=scale).imag[0] / h
        own_column = own_target[0] if hasattr(model, "classes_") else 0
        self_influence[i] = own_gradient[0] * own_derivative[own_column]
    # a zero gradient (pure leaves) is 0 here up to the complex step's rounding
    norms[norms <= 1e-12 * np.abs(reference.Y).max()] = 0.0
    for method, norm in zip(("theta-relatif", "l-relatif"), norms):
        safe = np.where(norm > 0, norm, 1.0)
        scores[method] = np.where(norm > 0, scores["if"] / safe, 0.0)
    return scores, self_influence


SCORED = [
    "rf-clf", "rf-clf-subsample-float", "rf-reg", "rf-reg-full-weighted",
    "et-clf-bootstrap-subsample", "et-reg-bootstrap", "rf-reg-nobootstrap",
]  # fmt: skip


@pytest.mark.parametrize("with_labels", [True, False], ids=["labels", "predicted"])
@pytest.mark.parametrize("name", SCORED)
def test_scores_equal_refits_and_derivatives_of_the_leaf_values(name, with_labels):
    model, X, y, X_test, y_test, sample_weight = _fitted(name)
    expected, self_influence = reference_scores(name, with_labels)
    # the complex step's rounding where a gradient is exactly 0 (pure leaves)
    # is measured against the size of the exact changes
    size = np.abs(expected["newton"]).max()
    for method in METHODS:
        explainer = InfluenceExplainer(model, method=method)
        explainer.fit(X, y, sample_weight=sample_weight)
        actual = explainer.transform(X_test, y_test if with_labels else None)
        assert np.all(np.isfinite(actual))
        scale = max(np.abs(expected[method]).max(), size if method == "if" else 0)
        np.testing.assert_allclose(
            actual, expected[method], rtol=1e-9, atol=1e-9 * scale
        )
    explainer = InfluenceExplainer(model, method="if").fit(
        X, y, sample_weight=sample_weight
    )
    scale = max(np.abs(self_influence).max(), size)
    np.testing.assert_allclose(
        explainer.self_influence_, self_influence, rtol=1e-9, atol=1e-9 * scale
    )


@pytest.mark.parametrize("name", ["rf-clf", "rf-reg-full-weighted", "et-clf"])
def test_predict_removal_loo_loss_and_decompose_through_the_explainer(name):
    model, X, y, X_test, y_test, sample_weight = _fitted(name)
    reference = Reference(model, X, y, sample_weight)
    explainer = InfluenceExplainer(model, method="newton")
    explainer.fit(X, y, sample_weight=sample_weight)
    target = (
        np.searchsorted(model.classes_, y_test)
        if name != "rf-reg-full-weighted"
        else y_test
    )
    now = reference.outputs(X_test)
    groups = _groups(len(X), seed=3)[:-1]  # the core refuses removing everything
    changes = explainer.predict_removal(X_test, y_test, groups=groups, method="newton")
    for g, group in enumerate(groups):
        after = reference.outputs(X_test, removed=group)
        expected = _loss(model, after, target) - _loss(model, now, target)
        _close(changes[:, g], expected, 1e-10)
    own_target = np.searchsorted(model.classes_, y) if hasattr(model, "classes_") else y
    rows = np.arange(0, len(X), 4)
    own = np.array([reference.outputs(X[i : i + 1], removed=[i])[0] for i in rows])
    _close(explainer.loo_loss_[rows], _loss(model, own, own_target[rows]), 1e-10)
    total = explainer.decompose(X_test).sum(axis=1) + explainer.baseline_
    raw = (
        model.predict_proba(X_test)
        if hasattr(model, "classes_")
        else model.predict(X_test)
    )
    _close(total, raw, 1e-10)


@pytest.mark.parametrize(
    "estimator, kind",
    [
        (RandomForestClassifier(n_estimators=20, min_samples_leaf=5), "multi"),
        (RandomForestClassifier(n_estimators=20, min_samples_leaf=5), "binary"),
        (RandomForestRegressor(n_estimators=20, min_samples_leaf=5), "regression"),
        (ExtraTreesRegressor(n_estimators=20, min_samples_leaf=5), "regression"),
    ],
    ids=["rf-multi", "rf-binary", "rf-regression", "et-regression"],
)
def test_first_order_scores_track_exact_removal(estimator, kind, record_property):
    """Pearson r of "if" against the exact removal over every (test, train)
    pair, on forests whose leaves hold several examples (in fully grown
    trees most gradients are exactly 0: see the module docstring)."""
    X, y, X_test, y_test = _data(kind, seed=2)
    model = estimator.set_params(random_state=0).fit(X, y)
    scores = {
        method: InfluenceExplainer(model, method=method)
        .fit(X, y)
        .transform(X_test, y_test)
        for method in ("if", "newton")
    }
    r = np.corrcoef(scores["if"].ravel(), scores["newton"].ravel())[0, 1]
    record_property("pearson_r", r)
    print(f"Pearson r(if, newton) = {r:.4f}")
    assert r > 0.9


def test_examples_out_of_a_tree_s_bag_do_not_change_it():
    X, y, X_test, _ = _data("regression")
    model = RandomForestRegressor(n_estimators=1, random_state=0).fit(X, y)
    out_of_bag = np.setdiff1d(np.arange(len(X)), model.estimators_samples_[0])
    assert out_of_bag.size
    explainer = InfluenceExplainer(model, method="newton").fit(X, y)
    changes = explainer.predict_removal(X_test, groups=[out_of_bag], method="newton")
    np.testing.assert_array_equal(changes, 0.0)
    for method in METHODS:
        scores = InfluenceExplainer(model, method=method).fit(X, y).transform(X_test)
        np.testing.assert_array_equal(scores[:, out_of_bag], 0.0)
    assert np.all(InfluenceExplainer(model).fit(X, y).self_influence_[out_of_bag] == 0)


def test_a_label_of_probability_zero_scores_finitely():
    X, y, X_test, _ = _data("multi")
    model = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)
    proba = model.predict_proba(X_test)
    t, c = np.argwhere(proba == 0)[0]  # a test point and a class it never reaches
    labels = np.full(len(X_test), model.classes_[c])
    for method in METHODS:
        scores = (
            InfluenceExplainer(model, method=method).fit(X, y).transform(X_test, labels)
        )
        assert np.all(np.isfinite(scores))
    explainer = InfluenceExplainer(model, method="newton").fit(X, y)
    change = explainer.predict_removal(X_test[[t]], labels[[t]], groups=[np.arange(5)])
    assert np.isfinite(change).all()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", ["rf-clf-subsample-float", "et-reg-bootstrap"])
def test_results_do_not_depend_on_n_jobs_or_working_memory(name, method):
    from sklearn import config_context

    model, X, y, X_test, y_test, sample_weight = _fitted(name)
    expected = (
        InfluenceExplainer(model, method=method)
        .fit(X, y, sample_weight=sample_weight)
        .transform(X_test, y_test)
    )
    with config_context(working_memory=0.001):
        explainer = InfluenceExplainer(model, method=method, n_jobs=2)
        chunked = explainer.fit(X, y, sample_weight=sample_weight).transform(
            X_test, y_test
        )
        top = explainer.explain(X_test, y_test, k=3)
    _close(chunked, expected, 1e-12)
    _close(top.proponent_scores, -np.sort(-expected, axis=1)[:, :3], 1e-12)


def test_unsupported_forests_and_foreign_data_are_refused():
    import pickle

    X, y, _, _ = _data("regression")
    for model, match in [
        (RandomForestRegressor(n_estimators=2).fit(X, np.column_stack([y, y])),
         "outputs"),
        (RandomForestRegressor(n_estimators=2, criterion="absolute_error").fit(X, y),
         "criterion"),
        (RandomForestRegressor(n_estimators=2, monotonic_cst=[1, 0, 0, 0]).fit(X, y),
         "monotonic_cst"),
    ]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            InfluenceExplainer(model).fit(X, y)
    model = RandomForestRegressor(n_estimators=3, random_state=0).fit(X, y)
    state = pickle.dumps(model)
    weights = _weights()
    for args, kwargs in [
        ((X[::-1], y[::-1]), {}),  # another order
        ((X, y), {"sample_weight": weights}),  # not the model's weights
        ((X[:-1], y[:-1]), {}),  # other rows
    ]:
        with pytest.raises(ValueError, match="does not match"):
            InfluenceExplainer(model).fit(*args, **kwargs)
    assert pickle.dumps(model) == state


@pytest.mark.skipif(
    not WEIGHTED_DRAWS,
    reason="scikit-learn < 1.9 can route a missing value at prediction other "
    "than in training (the adapter then refuses the model: its node check)",
)
def test_missing_values_are_routed_as_the_forest_routes_them():
    # Forests accept NaN (their tags allow it), so the explainer does too;
    # exact removal through the explainer equals refitting the leaf values
    # over the model's own decision paths, which route NaN as it does.
    X, y = make_regression(n_samples=90, n_features=4, noise=1.0, random_state=3)
    X[np.random.RandomState(4).rand(*X.shape) < 0.15] = np.nan
    X_train, y_train, X_test = X[:70], y[:70], X[70:]
    model = RandomForestRegressor(
        n_estimators=6, min_samples_leaf=3, random_state=0
    ).fit(X_train, y_train)
    ex = InfluenceExplainer(model, method="newton").fit(X_train, y_train)
    reference = Reference(model, X_train, y_train, None)
    groups = [np.array([0]), np.arange(5, 25)]
    expected = np.column_stack(
        [
            model.predict(X_test) - reference.outputs(X_test, removed=g)[:, 0]
            for g in groups
        ]
    )
    _close(ex.predict_removal(X_test, groups=groups), expected, 1e-10)
    _close(ex.decompose(X_test).sum(axis=1), model.predict(X_test), 1e-10)
    # a model that does not handle missing values still refuses them
    ridge = InfluenceExplainer(Ridge().fit(np.nan_to_num(X_train), y_train))
    with pytest.raises(ValueError, match="NaN"):
        ridge.fit(X_train, y_train)

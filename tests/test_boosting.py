"""Gradient-boosted trees (spec section 9), checked against a second, slow
implementation written here from scikit-learn's documented training rule:
rows routed through each tree node by node (HistGradientBoosting: on the
binned data, missing values and categorical bitsets as in its predictor),
the loss's gradient and Hessian written out per loss, and every leaf value
recomputed per iteration with a loop over leaves. It is independent of the
adapter's replay (sparse sums, scikit-learn's loss objects, the
predictors' own routing) and of its linearisation ((I - A)^-1)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from scipy.special import expit, softmax
from sklearn.datasets import load_diabetes, make_classification
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from skrelatif import InfluenceExplainer
from skrelatif._adapters import find_adapter

HGB = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)


def _close(actual, expected, rtol):
    scale = np.max(np.abs(expected)) if np.size(expected) else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


# -- the datasets ------------------------------------------------------------------
def _classes(n=240, n_classes=2, seed=0):
    X, y = make_classification(
        n_samples=n, n_features=5, n_informative=4, n_redundant=0,
        n_classes=n_classes, n_clusters_per_class=1, flip_y=0.05, random_state=seed,
    )  # fmt: skip
    return X, y


def _dataset(name):
    """(model, X, y, sample_weight) of each named dataset, fitted."""
    rng = np.random.RandomState(0)
    sw = None
    if name == "binary-nan":
        X, y = _classes()
        X[rng.rand(*X.shape) < 0.1] = np.nan
        model = HistGradientBoostingClassifier(max_iter=12, max_leaf_nodes=6)
    elif name == "multiclass-balanced":
        X, y = _classes(n_classes=3)
        y[y == 2] = np.where(rng.rand((y == 2).sum()) < 0.6, 0, 2)  # imbalanced
        model = HistGradientBoostingClassifier(
            max_iter=8, max_leaf_nodes=5, l2_regularization=1.0, class_weight="balanced"
        )
    elif name == "categorical":
        X, y = _classes()
        X[:, 0] = rng.randint(0, 6, len(y))
        y = np.where(rng.rand(len(y)) < 0.3, X[:, 0] % 2, y).astype(int)
        X[rng.rand(len(y)) < 0.05, 0] = np.nan
        model = HistGradientBoostingClassifier(
            max_iter=10, max_leaf_nodes=6, categorical_features=[0]
        )
    elif name == "regression-weights":
        X, y = load_diabetes(return_X_y=True)
        X, y = X[:200], y[:200] / 100
        sw = rng.uniform(0.5, 2.0, len(y))
        model = HistGradientBoostingRegressor(
            max_iter=10, max_leaf_nodes=6, l2_regularization=0.5
        )
    elif name == "poisson":
        X, _ = _classes()
        y = rng.poisson(np.exp(0.5 * X[:, 0]))
        model = HistGradientBoostingRegressor(
            loss="poisson", max_iter=8, max_leaf_nodes=5
        )
    elif name == "gamma":
        X, _ = _classes()
        y = rng.gamma(2.0, np.exp(0.3 * X[:, 1]) / 2.0)
        model = HistGradientBoostingRegressor(
            loss="gamma", max_iter=8, max_leaf_nodes=5
        )
    elif name == "gb-subsample":
        X, y = _classes()
        model = GradientBoostingClassifier(
            n_estimators=8, max_depth=2, subsample=0.7, random_state=3
        )
    elif name == "gb-multiclass":
        X, y = _classes(n=150, n_classes=3)
        model = GradientBoostingClassifier(n_estimators=5, max_depth=2)
    elif name == "gb-exponential":
        X, y = _classes()
        sw = rng.uniform(0.5, 2.0, len(y))
        model = GradientBoostingClassifier(
            loss="exponential", n_estimators=6, max_depth=2
        )
    elif name == "gb-early-stopping":
        X, y = _classes(n=300)
        model = GradientBoostingClassifier(
            n_estimators=30, max_depth=2, n_iter_no_change=2, random_state=1
        )
    elif name == "gb-regression":
        X, y = load_diabetes(return_X_y=True)
        X, y = X[:150], y[:150] / 100
        model = GradientBoostingRegressor(n_estimators=8, max_depth=2)
    with threadpool_limits(1, user_api="openmp"):
        model.fit(X, y, sample_weight=sw)
    return model, X, y, sw


DATASETS = [
    "binary-nan", "multiclass-balanced", "categorical", "regression-weights",
    "poisson", "gamma", "gb-subsample", "gb-multiclass", "gb-exponential",
    "gb-early-stopping", "gb-regression",
]  # fmt: skip
_FITTED = {}


def fitted(name):
    if name not in _FITTED:
        _FITTED[name] = _dataset(name)
    return _FITTED[name]


def _bound(name):
    model, X, y, sw = fitted(name)
    adapter = find_adapter(model)(model)
    y_encoded = adapter.encode_target(y)
    return adapter.bind(X, y_encoded, sw), y_encoded


# -- the slow, independent implementation -----------------------------------------
def _route_binned(predictor, Xb, missing_bin):
    """Leaf node of every row, node by node (HistGradientBoosting)."""
    nodes = predictor.nodes
    out = np.empty(len(Xb), dtype=int)
    for r, row in enumerate(Xb):
        i = 0
        while not nodes["is_leaf"][i]:
            value = int(row[nodes["feature_idx"][i]])
            if value == missing_bin:
                left = nodes["missing_go_to_left"][i]
            elif nodes["is_categorical"][i]:
                bits = predictor.binned_left_cat_bitsets[nodes["bitset_idx"][i]]
                left = (int(bits[value // 32]) >> (value % 32)) & 1
            else:
                left = value <= nodes["bin_threshold"][i]
            i = nodes["left"][i] if left else nodes["right"][i]
        out[r] = i
    return out


def _grad_hess(kind, y, F):
    """Gradient and Hessian (n, K) of the loss per output, written out."""
    if kind == "log_loss" and F.shape[1] > 1:
        p = softmax(F, axis=1)
        onehot = np.eye(F.shape[1])[y.astype(int)]
        return p - onehot, p * (1 - p)
    f = F[:, 0]
    if kind == "log_loss":
        p = expit(f)
        g, h = p - y, p * (1 - p)
    elif kind == "exponential":
        g = -y * np.exp(-f) + (1 - y) * np.exp(f)
        h = y * np.exp(-f) + (1 - y) * np.exp(f)
    elif kind == "poisson":
        g, h = np.exp(f) - y, np.exp(f)
    elif kind == "gamma":
        g, h = 1 - y * np.exp(-f), y * np.exp(-f)
    else:  # squared_error
        g, h = f - y, np.ones_like(f)
    return g[:, None], h[:, None]


def _loss(kind, y, F):
    if kind == "log_loss" and F.shape[1] > 1:
        z = F - F.max(axis=1, keepdims=True)
        return np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y.astype(int)]
    f = F[:, 0]
    if kind == "log_loss":
        return np.logaddexp(0, f) - y * f
    if kind == "exponential":
        return y * np.exp(-f) + (1 - y) * np.exp(f)
    if kind == "poisson":
        return np.exp(f) - y * f + (y * np.log(np.where(y > 0, y, 1.0)) - y)
    if kind == "gamma":  # the half gamma deviance
        return f + y * np.exp(-f) - np.log(y) - 1
    return 0.5 * (y - f) ** 2


class Slow:
    """The model's training replayed row by row and leaf by leaf."""

    def __init__(self, model, X, y, sw):
        self.model, self.kind = model, model.loss
        self.hgb = isinstance(model, HGB)
        n = len(y)
        w = np.ones(n) if sw is None else np.asarray(sw, dtype=float)
        if hasattr(model, "classes_"):
            y = np.searchsorted(model.classes_, y).astype(float)
            if getattr(model, "class_weight", None) == "balanced":
                counts = np.bincount(y.astype(int))
                w = w * (n / (len(counts) * counts))[y.astype(int)]
        self.y, self.w = np.asarray(y, dtype=float), w
        self.rows = np.arange(n)
        if self.hgb:
            if model.do_early_stopping_:
                stratify = self.y if hasattr(model, "classes_") else None
                self.rows = np.sort(
                    train_test_split(
                        self.rows, test_size=model.validation_fraction,
                        stratify=stratify, random_state=model._random_seed,
                    )[0]
                )  # fmt: skip
            self.trees = [p for iteration in model._predictors for p in iteration]
            self.K = model.n_trees_per_iteration_
            Xb = model._bin_mapper.transform(model._preprocess_X(X, reset=False))
            missing = model._bin_mapper.missing_values_bin_idx_
            self.nodes = np.column_stack(
                [_route_binned(p, Xb, missing) for p in self.trees]
            )
            self.stored = [p.nodes["value"] for p in self.trees]
            self.baseline = model._baseline_prediction.ravel()
            self.bags = np.ones((n, len(model._predictors)), dtype=bool)
        else:
            self.trees = list(model.estimators_.ravel())
            self.K = model.estimators_.shape[1]
            X32 = np.asarray(X, dtype=np.float32)
            self.nodes = np.column_stack([t.tree_.apply(X32) for t in self.trees])
            self.stored = [
                model.learning_rate * t.tree_.value[:, 0, 0] for t in self.trees
            ]
            self.baseline = model._raw_predict_init(X32[:1])[0]
            self.bags = np.ones((n, len(model.estimators_)), dtype=bool)
            if model.n_iter_no_change is not None:
                self.rows = np.sort(
                    train_test_split(
                        self.rows, test_size=model.validation_fraction,
                        stratify=self.y, random_state=model.random_state,
                    )[0]
                )  # fmt: skip
            if model.subsample < 1:  # scikit-learn's draws, in its order
                from sklearn.ensemble._gradient_boosting import _random_sample_mask

                rng = np.random.RandomState(model.random_state)
                for m in range(self.bags.shape[1]):
                    self.bags[:, m] = _random_sample_mask(
                        n, max(1, int(model.subsample * n)), rng
                    )
                    for _ in range(self.K):
                        rng.randint(0, 2147483647)

    def values(self, removed=(), weights=None, rounding=True):
        """Every tree's leaf values {node: value} replayed without the rows
        ``removed`` (or with ``weights``), and the final training outputs."""
        model, K = self.model, self.K
        w = np.zeros_like(self.w)
        w[self.rows] = self.w[self.rows] if weights is None else weights[self.rows]
        w[list(removed)] = 0.0
        F = np.tile(self.baseline, (len(w), 1)).astype(float)
        values = []
        for m in range(len(self.trees) // K):
            g, h = _grad_hess(self.kind, self.y, F)
            wm = w * self.bags[:, m]
            wg, wh = wm[:, None] * g, wm[:, None] * h
            if self.hgb and rounding:  # as HistGradientBoosting stores them
                wg = wg.astype(np.float32).astype(float)
                wh = wh.astype(np.float32).astype(float)
            for k in range(K):
                tau = m * K + k
                tree_values = {}
                for node in np.unique(self.nodes[:, tau]):
                    inside = self.nodes[:, tau] == node
                    G, H = wg[inside, k].sum(), wh[inside, k].sum()
                    if self.hgb:
                        if len(self.stored[tau]) == 1:  # an unsplit root
                            value = 0.0
                        else:
                            l2 = model.l2_regularization
                            value = -G / (H + l2 + 1e-15) * model.learning_rate
                    else:
                        factor = (K - 1) / K if K > 1 else 1.0
                        value = 0.0 if abs(H) < 1e-150 else -G / H * factor
                        value *= model.learning_rate
                    tree_values[node] = value
                values.append(tree_values)
            for k in range(K):
                tau = m * K + k
                F[:, k] += [values[tau][node] for node in self.nodes[:, tau]]
        return values, F

    def outputs(self, X_nodes, values):
        """Raw outputs of test rows (their node per tree) under ``values``."""
        F = np.tile(self.baseline, (len(X_nodes), 1)).astype(float)
        for tau, tree_values in enumerate(values):
            F[:, tau % self.K] += [tree_values[node] for node in X_nodes[:, tau]]
        return F

    def test_nodes(self, X):
        if self.hgb:
            Xb = self.model._bin_mapper.transform(
                self.model._preprocess_X(X, reset=False)
            )
            missing = self.model._bin_mapper.missing_values_bin_idx_
            return np.column_stack([_route_binned(p, Xb, missing) for p in self.trees])
        X32 = np.asarray(X, dtype=np.float32)
        return np.column_stack([t.tree_.apply(X32) for t in self.trees])


def _raw(model, X):
    if hasattr(model, "decision_function"):
        return model.decision_function(X)
    return model._raw_predict(np.asarray(X, dtype=np.float32)).ravel()


def _slow(name):
    return Slow(*fitted(name))


# -- the tests ------------------------------------------------------------------
@pytest.mark.parametrize("name", DATASETS)
def test_every_leaf_value_is_reconstructed(name):
    slow = _slow(name)
    values, _ = slow.values()
    for tau, tree_values in enumerate(values):
        nodes = np.array(sorted(tree_values))
        expected = slow.stored[tau][nodes]
        _close([tree_values[node] for node in nodes], expected, 1e-8)
    adapter, _ = _bound(name)
    assert adapter.replay_error_ <= 1e-8


@pytest.mark.parametrize("name", DATASETS)
def test_decomposition_sums_to_the_raw_output(name):
    model, X, y, sw = fitted(name)
    adapter, _ = _bound(name)
    X_test = X[:25]
    D = adapter.decompose(X_test)
    _close(D.sum(axis=1) + adapter.baseline_, _raw(model, X_test), 1e-10)


def test_decomposition_through_the_explainer():
    model, X, y, sw = fitted("multiclass-balanced")
    explainer = InfluenceExplainer(model, method="boostin").fit(X, y)
    D = explainer.decompose(X[:10])
    assert D.shape == (10, len(y), 3)
    _close(D.sum(axis=1) + explainer.baseline_, model.decision_function(X[:10]), 1e-10)


@pytest.mark.parametrize("name", DATASETS)
def test_newton_is_the_exact_removal_with_the_structure_fixed(name):
    model, X, y, sw = fitted(name)
    slow = _slow(name)
    adapter, y_encoded = _bound(name)
    X_test, y_test = X[-6:], y_encoded[-6:]
    test_nodes = slow.test_nodes(X_test)
    groups = [np.array([0]), np.array([3, 4, 5]), np.arange(10, 40)]
    moved = adapter.removal_outputs(X_test, groups)
    for j, group in enumerate(groups):
        values, _ = slow.values(removed=group)
        _close(moved[:, j], slow.outputs(test_nodes, values), 1e-10)
    # the "newton" scores: change of the test loss for each single removal
    rows = np.arange(8)
    state = adapter.test_state(X_test, y_test, "newton")
    scores = adapter.cross_function("newton")(state, *adapter.payload(rows, "newton"))
    before = _loss(
        slow.kind, y_test.astype(float), slow.outputs(test_nodes, slow.values()[0])
    )
    for i in rows:
        after = _loss(
            slow.kind,
            y_test.astype(float),
            slow.outputs(test_nodes, slow.values([i])[0]),
        )
        _close(scores[:, i], after - before, 1e-9)


@pytest.mark.parametrize("name", ["binary-nan", "multiclass-balanced", "gb-regression"])
def test_loo_outputs_are_replays_without_each_row(name):
    slow = _slow(name)
    adapter, _ = _bound(name)
    loo = adapter.loo_outputs()
    for i in [0, 7, 19]:
        _, F = slow.values(removed=[i])
        _close(loo[i], F[i], 1e-10)


def _weight_derivative(slow, X_test, y_test, i, step=1e-4):
    """d l_t / d w_i by central differences of the slow replay (float64)."""
    nodes = slow.test_nodes(X_test)
    losses = []
    for sign in (1, -1):
        weights = slow.w.copy()
        weights[i] += sign * step
        values, _ = slow.values(weights=weights, rounding=False)
        F = slow.outputs(nodes, values)
        losses.append(-F[:, 0] if y_test is None else _loss(slow.kind, y_test, F))
    return (losses[0] - losses[1]) / (2 * step)


@pytest.mark.parametrize("name", DATASETS)
def test_if_is_the_first_order_removal_propagated_through_later_trees(name):
    model, X, y, sw = fitted(name)
    slow = _slow(name)
    adapter, y_encoded = _bound(name)
    X_test, y_test = X[-5:], y_encoded[-5:].astype(float)
    explained = None if model.loss in ("squared_error",) else y_test
    state = adapter.test_state(X_test, explained, "if")
    rows = np.array([1, 2, 30])
    scores = adapter.cross_function("if")(state, *adapter.payload(rows, "if"))
    scores = scores * adapter.train_scale("if")[rows]
    for j, i in enumerate(rows):
        expected = -slow.w[i] * _weight_derivative(slow, X_test, explained, i)
        _close(scores[:, j], expected, 2e-5)


@pytest.mark.parametrize("name", ["binary-nan", "multiclass-balanced", "poisson"])
def test_boostin_is_the_per_iteration_leaf_derivative(name):
    model, X, y, sw = fitted(name)
    slow = _slow(name)
    adapter, y_encoded = _bound(name)
    X_test, y_test = X[-4:], y_encoded[-4:].astype(float)
    nodes = slow.test_nodes(X_test)
    values, _ = slow.values()
    K = slow.K
    # per-iteration outputs of train and test rows, and the leaf derivatives
    F_train = np.tile(slow.baseline, (len(slow.y), 1)).astype(float)
    F_test = np.tile(slow.baseline, (len(y_test), 1)).astype(float)
    expected = np.zeros((len(y_test), len(slow.y)))
    for m in range(len(values) // K):
        g, h = _grad_hess(slow.kind, slow.y, F_train)
        gt, _ = _grad_hess(slow.kind, y_test, F_test)
        for k in range(K):
            tau = m * K + k
            for node, value in values[tau].items():
                inside = slow.nodes[:, tau] == node
                H = (slow.w[inside] * h[inside, k]).sum()
                if slow.hgb:
                    H += model.l2_regularization + 1e-15
                v = value / model.learning_rate
                # removal moves the leaf by +lr s_i (g_i + v h_i) / (H + l2)
                push = model.learning_rate * slow.w * (g[:, k] + v * h[:, k]) / H
                match = (nodes[:, tau] == node)[:, None] & inside[None, :]
                expected += match * gt[:, k][:, None] * push[None, :]
        for k in range(K):
            tau = m * K + k
            F_train[:, k] += [values[tau][node] for node in slow.nodes[:, tau]]
            F_test[:, k] += [values[tau][node] for node in nodes[:, tau]]
    state = adapter.test_state(X_test, y_test, "boostin")
    rows = np.arange(len(slow.y))
    scores = adapter.cross_function("boostin")(state, *adapter.payload(rows, "boostin"))
    _close(scores * adapter.train_scale("boostin"), expected, 1e-6)


@pytest.mark.parametrize("name", ["binary-nan", "gb-multiclass"])
def test_relatif_normalisers_are_the_example_s_own_effects(name):
    slow = _slow(name)
    adapter, y_encoded = _bound(name)
    theta_scale = adapter.train_scale("theta-relatif")
    l_scale = adapter.train_scale("l-relatif")
    own = adapter.self_influence()
    step = 1e-4
    for i in [2, 11]:
        thetas, losses = [], []
        for sign in (1, -1):
            weights = slow.w.copy()
            weights[i] += sign * step
            values, F = slow.values(weights=weights, rounding=False)
            thetas.append(np.concatenate([list(v.values()) for v in values]))
            losses.append(_loss(slow.kind, slow.y[i : i + 1], F[i : i + 1]))
        dtheta = (thetas[0] - thetas[1]) / (2 * step)
        dloss = float((losses[0] - losses[1])[0] / (2 * step))
        _close(1 / theta_scale[i], np.linalg.norm(dtheta), 1e-5)
        _close(1 / l_scale[i], np.sqrt(abs(dloss)), 1e-5)
        _close(own[i], -slow.w[i] * dloss, 1e-5)


def test_explainer_methods_agree_with_the_adapter_and_newton():
    model, X, y, sw = fitted("gb-subsample")
    results = {}
    for method in ("if", "newton", "boostin"):
        explainer = InfluenceExplainer(model, method=method).fit(X, y)
        results[method] = explainer.transform(X[:5], y[:5])
    r = np.corrcoef(results["if"].ravel(), results["newton"].ravel())[0, 1]
    assert r > 0.95
    assert np.all(results["if"][:, explainer._influence.train_scale_ == 0] == 0)


@pytest.mark.slow
def test_early_stopping_replays_the_internal_split():
    X, y = make_classification(n_samples=10_400, n_features=6, random_state=0)
    with threadpool_limits(1, user_api="openmp"):
        model = HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(X, y)
    assert model.do_early_stopping_
    adapter = find_adapter(model)(model)
    y_encoded = adapter.encode_target(y)
    bound = adapter.bind(X, y_encoded, None)
    assert bound.replay_error_ <= 1e-8
    train = np.sort(
        train_test_split(
            np.arange(len(y)),
            test_size=0.1,
            stratify=y,
            random_state=model._random_seed,
        )[0]
    )
    np.testing.assert_array_equal(bound.candidates_, train)
    validation = np.setdiff1d(np.arange(len(y)), train)
    D = bound.decompose(X[:20])
    assert np.all(D[:, validation] == 0)
    _close(D.sum(axis=1) + bound.baseline_, model.decision_function(X[:20]), 1e-10)
    assert np.all(bound.train_scale("if")[validation] == 0)
    # "if" of trained rows: the derivative of the slow replay on the split
    slow = Slow(model, X, y, None)
    rows = train[[0, 5]]
    state = bound.test_state(X[:3], y_encoded[:3], "if")
    scores = bound.cross_function("if")(state, *bound.payload(rows, "if"))
    for j, i in enumerate(rows):
        expected = -_weight_derivative(slow, X[:3], y[:3].astype(float), i)
        _close(scores[:, j], expected, 2e-5)


@threadpool_limits.wrap(1, user_api="openmp")
def test_bad_models_and_data_are_refused():
    X, y = _classes()
    model = HistGradientBoostingRegressor(loss="absolute_error", max_iter=3).fit(X, y)
    with pytest.raises(ValueError, match="smooth loss"):
        InfluenceExplainer(model).fit(X, y)
    model = GradientBoostingClassifier(n_estimators=3, subsample=0.5).fit(X, y)
    with pytest.raises(ValueError, match="integer random_state"):
        InfluenceExplainer(model).fit(X, y)
    model = HistGradientBoostingClassifier(max_iter=3).fit(X, y)
    with pytest.raises(ValueError, match="does not reproduce"):
        InfluenceExplainer(model).fit(X[::-1], y)
    model = HistGradientBoostingClassifier(max_iter=3, monotonic_cst=[1, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="monotonic_cst"):
        InfluenceExplainer(model.fit(X, y)).fit(X, y)


@threadpool_limits.wrap(1, user_api="openmp")
def test_validation_data_dataframes_and_zero_init():
    import warnings

    pd = pytest.importorskip("pandas")
    X, y = _classes(n=300)
    # early stopping on given validation data (scikit-learn >= 1.7): every
    # row of X is trained on
    if "X_val" in inspect.signature(HistGradientBoostingClassifier.fit).parameters:
        model = HistGradientBoostingClassifier(max_iter=30, early_stopping=True)
        model.fit(X[:200], y[:200], X_val=X[200:], y_val=y[200:])
        explainer = InfluenceExplainer(model, method="if").fit(X[:200], y[:200])
        assert explainer._influence.adapter.replay_error_ <= 1e-8
        assert len(explainer._influence.adapter.candidates_) == 200
    # a model fitted on a DataFrame: no feature-name warnings from the replay
    frame = pd.DataFrame(X, columns=list("abcde"))
    model = HistGradientBoostingClassifier(max_iter=5).fit(frame, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explainer = InfluenceExplainer(model, method="boostin").fit(frame, y)
        D = explainer.decompose(frame.iloc[:4])
    _close(
        D.sum(axis=1) + explainer.baseline_, model.decision_function(frame[:4]), 1e-10
    )
    # init="zero": the baseline is 0
    model = GradientBoostingClassifier(n_estimators=5, init="zero").fit(X, y)
    explainer = InfluenceExplainer(model, method="if").fit(X, y)
    assert explainer.baseline_ == 0.0
    _close(
        explainer.decompose(X[:4]).sum(axis=1), model.decision_function(X[:4]), 1e-10
    )


def test_missing_values_through_the_explainer():
    model, X, y, sw = fitted("binary-nan")
    slow = _slow("binary-nan")
    explainer = InfluenceExplainer(model, method="newton").fit(X, y)
    X_test = X[-4:]  # rows with NaN among them
    assert np.isnan(X_test).any()
    _close(explainer.decompose(X_test).sum(axis=1) + explainer.baseline_,
           model.decision_function(X_test), 1e-10)  # fmt: skip
    scores = explainer.transform(X_test, y[-4:])
    nodes = slow.test_nodes(X_test)
    before = _loss(
        slow.kind, y[-4:].astype(float), slow.outputs(nodes, slow.values()[0])
    )
    for i in [0, 9]:
        after = _loss(
            slow.kind, y[-4:].astype(float), slow.outputs(nodes, slow.values([i])[0])
        )
        _close(scores[:, i], after - before, 1e-9)

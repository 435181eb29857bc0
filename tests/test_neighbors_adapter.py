"""k-nearest neighbours explained as sums over training examples, with exact
removal (``skrelatif._adapters.neighbors``).

Every reference is independent of the adapter: decompositions against the
model's own ``predict`` / ``predict_proba``, removals against refitting the
model without the removed rows (scikit-learn's own fit and predict), and the
first-order and RelatIF scores against a dense formula built from those
refits.
"""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer

EPS = np.finfo(np.float64).eps


def _data(seed=0, n=40, n_test=9, n_classes=3):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, 3))
    y = X[:, 0] + 0.5 * rng.standard_normal(n)
    labels = rng.randint(0, n_classes, n)
    return X, y, labels, rng.standard_normal((n_test, 3)), rng.standard_normal(n_test)


def _close(actual, expected, rtol=1e-10):
    scale = np.max(np.abs(expected)) if np.size(expected) else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def _outputs(model, X, n_classes):
    """``predict`` (n, 1) or ``predict_proba`` on the original classes (a
    refit that lost a class gets a zero column)."""
    if n_classes is None:
        return model.predict(X)[:, None]
    out = np.zeros((X.shape[0], n_classes))
    out[:, model.classes_] = model.predict_proba(X)
    return out


def _loss(F, y, n_classes):
    if n_classes is None:
        return (y - F[:, 0]) ** 2
    return -np.log(np.maximum(F[np.arange(len(y)), y], EPS))


def _refits(model, X, y, queries, groups):
    """Outputs of ``queries`` (each an array) under refits without each group."""
    n_classes = None if not hasattr(model, "classes_") else len(model.classes_)
    precomputed = model.metric == "precomputed"  # X: distances to the rows
    results = []
    for group in groups:
        keep = np.setdiff1d(np.arange(len(y)), group)
        refit = clone(model).fit(X[keep][:, keep] if precomputed else X[keep], y[keep])
        results.append(
            [
                _outputs(refit, Q[:, keep] if precomputed else Q, n_classes)
                for Q in queries
            ]
        )
    return results, n_classes


def _brute_scores(model, X, y, X_test, y_test):
    """Every method's scores from refits without each example."""
    n = len(y)
    refits, n_classes = _refits(model, X, y, (X_test, X), [[i] for i in range(n)])
    F_t = _outputs(model, X_test, n_classes)
    F = _outputs(model, X, n_classes)
    moved_t = np.stack([r[0] for r in refits], axis=1) - F_t[:, None]  # (t, i, K)
    moved = np.stack([r[1] for r in refits], axis=1) - F[:, None]  # (j, i, K)
    if y_test is None:
        g_t = -np.ones_like(F_t)
        newton = -moved_t[:, :, 0]
    else:
        after = np.stack(
            [_loss(F_t + moved_t[:, i], y_test, n_classes) for i in range(n)], axis=1
        )
        newton = after - _loss(F_t, y_test, n_classes)[:, None]
        g_t = _gradient(F_t, y_test, n_classes)
    first = np.einsum("tk,tik->ti", g_t, moved_t)
    g = _gradient(F, y, n_classes)
    own = np.einsum("ik,iik->i", g, moved)  # g_i . Δ_i f(x_i)
    norms = np.sqrt(np.sum(moved**2, axis=(0, 2)))
    loo = np.array([_loss(r[1][i : i + 1], y[i : i + 1], n_classes)[0]
                    for i, r in enumerate(refits)])  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.where(norms > 0, first / norms, 0.0)
        root = np.sqrt(np.abs(own))
        ell = np.where(root > 0, first / root, 0.0)
    scores = {"if": first, "newton": newton, "theta-relatif": theta, "l-relatif": ell}
    return scores, own, loo


def _gradient(F, y, n_classes):
    if n_classes is None:
        return 2.0 * (F - y[:, None])
    g = np.zeros_like(F)
    rows = np.arange(len(y))
    g[rows, y] = -1.0 / np.maximum(F[rows, y], EPS)
    return g


MODELS = [
    KNeighborsRegressor(n_neighbors=4),
    KNeighborsRegressor(n_neighbors=3, weights="distance", metric="manhattan"),
    KNeighborsRegressor(n_neighbors=5, weights=lambda d: np.exp(-d), p=3),
    KNeighborsClassifier(n_neighbors=5),
    KNeighborsClassifier(n_neighbors=4, weights="distance", metric="cosine"),
    KNeighborsClassifier(n_neighbors=3, algorithm="brute", metric="chebyshev"),
]


def _fitted(model, seed=0):
    X, y, labels, X_test, y_test = _data(seed)
    target = labels if hasattr(model, "predict_proba") else y
    return clone(model).fit(X, target), X, target, X_test, y_test


@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_decompose_sums_to_the_output(model):
    model, X, y, X_test, _ = _fitted(model)
    ex = InfluenceExplainer(model).fit(X, y)
    parts = ex.decompose(X_test)
    if hasattr(model, "predict_proba"):
        assert parts.shape == (len(X_test), len(y), len(model.classes_))
        _close(parts.sum(axis=1) + ex.baseline_, model.predict_proba(X_test))
    else:
        assert parts.shape == (len(X_test), len(y))
        _close(parts.sum(axis=1) + ex.baseline_, model.predict(X_test))
    # only the k neighbours contribute
    neighbours = model.kneighbors(X_test, return_distance=False)
    touched = np.abs(parts).reshape(len(X_test), len(y), -1).sum(axis=2) > 0
    assert np.all(touched.sum(axis=1) <= model.n_neighbors)
    assert np.all(np.isin(np.flatnonzero(touched[0]), neighbours[0]))


@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_scores_removals_and_loo_match_refits(model):
    model, X, y, X_test, y_test = _fitted(model)
    classifier = hasattr(model, "predict_proba")
    # classifiers explain given labels too: some have probability 0 (clipped)
    if classifier:
        explained = [model.classes_[np.arange(len(X_test)) % len(model.classes_)]]
    else:
        explained = [None, y_test]
    for target in explained:
        scores, own, loo = _brute_scores(model, X, y, X_test, target)
        for method, expected in scores.items():
            ex = InfluenceExplainer(model, method=method).fit(X, y)
            actual = ex.transform(X_test, target)
            assert np.all(np.isfinite(actual))
            _close(actual, expected)
        ex = InfluenceExplainer(model, method="if").fit(X, y)
        _close(ex.self_influence_, own)
        _close(ex.loo_loss_, loo)


@pytest.mark.parametrize("model", MODELS[:1] + MODELS[3:4], ids=repr)
def test_group_removal_matches_refits(model):
    model, X, y, X_test, y_test = _fitted(model)
    ex = InfluenceExplainer(model, method="newton").fit(X, y)
    neighbours = model.kneighbors(X_test[:1], return_distance=False)[0]
    groups = [neighbours[:2], neighbours, np.array([0, 5, 7, 30]), np.array([3])]
    refits, n_classes = _refits(model, X, y, (X_test,), groups)
    moved = np.stack([r[0] for r in refits], axis=1)  # (t, g, K)
    F_t = _outputs(model, X_test, n_classes)
    if n_classes is None:
        _close(ex.predict_removal(X_test, groups=groups), F_t[:, :1] - moved[:, :, 0])
        target = y_test
    else:
        target = model.predict(X_test)
    after = np.stack(
        [_loss(moved[:, g], target, n_classes) for g in range(len(groups))], axis=1
    )
    expected = after - _loss(F_t, target, n_classes)[:, None]
    _close(ex.predict_removal(X_test, target, groups=groups), expected)
    # first order: the sum of the group's "if" scores
    first = InfluenceExplainer(model, method="if").fit(X, y)
    S = first.transform(X_test, target)
    _close(
        first.predict_removal(X_test, target, groups=groups, method="first-order"),
        np.stack([S[:, g].sum(axis=1) for g in groups], axis=1),
    )


def test_a_training_point_is_its_own_neighbour():
    """Training outputs are what ``predict(X_train)`` gives (the point among
    its neighbours); leave-one-out ones are ``kneighbors()`` without it."""
    model, X, y, _, _ = _fitted(KNeighborsRegressor(n_neighbors=3, weights="distance"))
    ex = InfluenceExplainer(model, method="newton").fit(X, y)
    # distance weights: the point itself (distance 0) takes all the weight
    _close(model.predict(X), y)
    index = model.kneighbors(return_distance=False)  # the others
    distance = model.kneighbors()[0]
    w = 1.0 / distance
    loo = (w * y[index]).sum(axis=1) / w.sum(axis=1)
    _close(ex.loo_loss_, (y - loo) ** 2)
    _close(ex.self_influence_, (y - loo) ** 2)  # its loss was 0


def test_duplicates_and_zero_distances():
    """A test point on a training point (distance weights: it takes all the
    weight), duplicated training rows, and a precomputed metric."""
    X, y, labels, X_test, _ = _data(1)
    X = np.vstack([X, X[:3]])
    labels = np.concatenate([labels, (labels[:3] + 1) % 3])
    X_test = np.vstack([X_test, X[5:6], X[0:1]])
    for model, train, test in [
        (KNeighborsClassifier(4, weights="distance"), X, X_test),
        (
            KNeighborsClassifier(4, weights="distance", metric="precomputed"),
            pairwise_distances(X),
            pairwise_distances(X_test, X),
        ),
    ]:
        model = model.fit(train, labels)
        ex = InfluenceExplainer(model, method="newton").fit(train, labels)
        _close(ex.decompose(test).sum(axis=1), model.predict_proba(test))
        scores, _, loo = _brute_scores(model, train, labels, test, model.predict(test))
        _close(ex.transform(test), scores["newton"])
        _close(ex.loo_loss_, loo)


def test_a_label_no_neighbour_has_costs_minus_log_eps():
    model, X, y, X_test, _ = _fitted(KNeighborsClassifier(n_neighbors=1))
    ex = InfluenceExplainer(model, method="newton").fit(X, y)
    other = model.classes_[
        (np.searchsorted(model.classes_, model.predict(X_test)) + 1) % 3
    ]
    S = ex.transform(X_test, other)
    assert np.all(np.isfinite(S))
    # removing the only neighbour brings in the second: its label or not
    second = model.kneighbors(X_test, n_neighbors=2, return_distance=False)
    first = second[:, 0]
    expected = np.where(y[second[:, 1]] == other, np.log(EPS), 0.0)
    _close(S[np.arange(len(X_test)), first], expected)
    rows = np.arange(len(X_test))
    for method in ("if", "theta-relatif", "l-relatif"):
        scores = (
            InfluenceExplainer(model, method=method).fit(X, y).transform(X_test, other)
        )
        assert np.all(np.isfinite(scores))
        assert np.all(scores[rows, first] <= 0)  # opponents or nothing


def test_through_a_pipeline_and_the_model_is_untouched():
    X, y, _, X_test, _ = _data(2)
    pipe = make_pipeline(StandardScaler(), KNeighborsRegressor(4)).fit(X, y)
    expected = pipe.predict(X_test)
    state = pickle.dumps(pipe)
    ex = InfluenceExplainer(pipe, method="newton").fit(X, y)
    _close(ex.decompose(X_test).sum(axis=1), expected)
    ex.explain(X_test, k=3)
    assert ex.loo_loss_.shape == (len(y),)
    assert pickle.dumps(pipe) == state  # its search tree was never queried


def test_bad_input():
    model, X, y, X_test, _ = _fitted(MODELS[0])
    with pytest.raises(ValueError, match="no sample weights"):
        InfluenceExplainer(model).fit(X, y, sample_weight=np.ones(len(y)))
    with pytest.raises(ValueError, match="does not match"):
        InfluenceExplainer(model).fit(X, y[::-1])
    with pytest.raises(ValueError, match="fitted on 40 samples"):
        InfluenceExplainer(model).fit(X[:-1], y[:-1])
    with pytest.raises(ValueError, match="2-d target"):
        InfluenceExplainer(KNeighborsRegressor(3).fit(X, np.c_[y, y])).fit(X, y)
    with pytest.raises(ValueError, match="flip_sets is not offered"):
        InfluenceExplainer(_fitted(MODELS[3])[0]).fit(
            X, _fitted(MODELS[3])[2]
        ).flip_sets(X_test)
    tiny = KNeighborsRegressor(n_neighbors=4).fit(X[:4], y[:4])
    ex = InfluenceExplainer(tiny, method="if").fit(X[:4], y[:4])
    _close(ex.decompose(X_test).sum(axis=1), tiny.predict(X_test))
    with pytest.raises(ValueError, match="fewer than n_neighbors=4"):
        ex.transform(X_test)

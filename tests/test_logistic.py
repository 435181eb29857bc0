"""InfluenceExplainer on LogisticRegression against a dense brute-force reference."""

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer
from skrelatif._adapters import _linear_curvature

from . import _dense
from ._dense import assert_close

METHODS = ["if", "theta-relatif", "l-relatif"]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weights", [None, "sample", "class", "both"])
@pytest.mark.parametrize("damping", [0.0, 0.3])
def test_scores_match_dense_reference(
    classification, n_classes, fit_intercept, weights, damping
):
    X, y, X_test, _ = classification(n_classes)
    rng = np.random.RandomState(1)
    sw = rng.uniform(0.2, 3, len(y)) if weights in ("sample", "both") else None
    class_weight = None
    if weights == "class":
        class_weight = "balanced"
    elif weights == "both":
        class_weight = dict(zip(range(n_classes), [1.0, 2.5, 0.7][:n_classes]))
    model = LogisticRegression(
        C=0.7,
        fit_intercept=fit_intercept,
        class_weight=class_weight,
        tol=1e-10,
        max_iter=10_000,
    ).fit(X, y, sample_weight=sw)
    y_explained = model.predict(X_test)
    for method in METHODS:
        ex = InfluenceExplainer(model, method=method, damping=damping)
        ex.fit(X, y, sample_weight=sw)
        expected, self_influence = _dense.scores(
            model, X, y, X_test, y_explained, method, sw, damping
        )
        assert_close(ex.transform(X_test), expected)
        assert_close(ex.self_influence_, self_influence)


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("method", METHODS)
def test_identity_hessian_and_given_labels(classification, n_classes, method):
    X, y, X_test, y_test = classification(n_classes, seed=3)
    model = LogisticRegression(tol=1e-10).fit(X, y)
    ex = InfluenceExplainer(model, method=method, hessian="identity", damping=0.5)
    ex.fit(X, y)
    expected, _ = _dense.scores(
        model, X, y, X_test, y_test, method, damping=0.5, identity=True
    )
    assert_close(ex.transform(X_test, y_test), expected)


def test_hessian_matches_finite_differences(classification):
    """The assembled Hessian is the derivative of the objective's gradient."""
    X, y, _, _ = classification(3, seed=5)
    sw = np.random.RandomState(0).uniform(0.5, 2, len(y))
    model = LogisticRegression(C=2.0, tol=1e-10).fit(X, y, sample_weight=sw)
    ex = InfluenceExplainer(model).fit(X, y, sample_weight=sw)
    influence = ex._influence
    H = influence.adapter.hessian_operator(X, y, influence.weights_).dense()

    def objective_gradient(theta):
        fitted = LogisticRegression(C=model.C)
        fitted.classes_ = model.classes_
        fitted.class_weight = None
        theta = theta.reshape(3, -1)
        fitted.coef_, fitted.intercept_ = theta[:, :-1], theta[:, -1]
        fitted.fit_intercept = True
        G = _dense.gradients(fitted, X, y)
        penalty = np.hstack([theta[:, :-1], np.zeros((3, 1))]).ravel()
        return model.C * (sw @ G) + penalty

    theta = np.column_stack([model.coef_, model.intercept_]).ravel()
    eps = 1e-6
    numeric = np.array(
        [
            (objective_gradient(theta + eps * e) - objective_gradient(theta - eps * e))
            / (2 * eps)
            for e in np.eye(len(theta))
        ]
    )
    np.testing.assert_allclose(H, numeric, rtol=1e-6, atol=1e-6 * np.abs(H).max())


@pytest.mark.parametrize("block_rows", [1, 9, 70])
def test_hessian_in_row_blocks_matches_the_dense_reference(
    classification, monkeypatch, block_rows
):
    """Without cross terms (binary) the Hessian takes its rows in blocks of
    ``_BLOCK_BYTES``: any block size gives the dense sum over all rows."""
    X, y, _, _ = classification(2, seed=4)
    sw = np.random.RandomState(1).uniform(0.5, 2, len(y))
    model = LogisticRegression(C=0.7, tol=1e-10).fit(X, y, sample_weight=sw)
    monkeypatch.setattr(
        _linear_curvature, "_BLOCK_BYTES", 8 * (X.shape[1] + 1) * block_rows
    )
    influence = InfluenceExplainer(model).fit(X, y, sample_weight=sw)._influence
    H = influence.adapter.hessian_operator(X, y, influence.weights_).dense()
    expected = _dense.hessian(model, X, y, sw)
    np.testing.assert_allclose(
        H, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max()
    )


def test_no_penalty_and_liblinear(classification):
    X, y, X_test, _ = classification(2, seed=7)
    for model, damping in [
        (LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000), 0.0),
        (LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000), 0.2),
        (LogisticRegression(solver="liblinear", intercept_scaling=3.0, tol=1e-12), 0.0),
    ]:
        model.fit(X, y)
        ex = InfluenceExplainer(model, method="if", damping=damping).fit(X, y)
        expected, self_influence = _dense.scores(
            model, X, y, X_test, model.predict(X_test), "if", damping=damping
        )
        assert_close(ex.transform(X_test), expected, rtol=1e-7)
        assert_close(ex.self_influence_, self_influence, rtol=1e-7)


def test_unpenalised_multinomial_null_space_is_exact(classification):
    """C=inf softmax: every (class-shift) null direction is projected out exactly."""
    X, y, X_test, _ = classification(3, n_samples=150, seed=11)
    X = X + np.random.RandomState(0).normal(scale=2.0, size=X.shape)  # not separable
    model = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, y)
    ex = InfluenceExplainer(model, method="l-relatif").fit(X, y)
    expected, _ = _dense.scores(model, X, y, X_test, model.predict(X_test), "l-relatif")
    assert_close(ex.transform(X_test), expected, rtol=1e-6)


def _loo_agreement(X, y, X_test, n_removed, C, seed=0):
    model = LogisticRegression(C=C, tol=1e-12, max_iter=100_000).fit(X, y)
    ex = InfluenceExplainer(model, method="if").fit(X, y)
    predicted = ex.transform(X_test)
    y_test = model.predict(X_test)
    adapter = ex._influence.adapter

    def test_loss(m):
        return adapter.output_losses(
            m.decision_function(X_test).reshape(len(X_test), -1),
            np.searchsorted(m.classes_, y_test),
        )

    base = test_loss(model)
    removed = np.random.RandomState(seed).choice(len(y), n_removed, replace=False)
    actual = np.empty((len(X_test), n_removed))
    for j, i in enumerate(removed):
        refit = LogisticRegression(C=C, tol=1e-12, max_iter=100_000)
        refit.fit(np.delete(X, i, axis=0), np.delete(y, i))
        actual[:, j] = test_loss(refit) - base
    return pearsonr(predicted[:, removed].ravel(), actual.ravel())[0]


@pytest.mark.slow
def test_if_matches_leave_one_out_breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    r = _loo_agreement(X[:450], y[:450], X[450:456], n_removed=40, C=0.02)
    assert r >= 0.99, r


@pytest.mark.slow
def test_if_matches_leave_one_out_digits_multinomial():
    X, y = load_digits(n_class=4, return_X_y=True)
    X = StandardScaler().fit_transform(X[:400])
    X = X[:, X.std(axis=0) > 0]
    r = _loo_agreement(X[:350], y[:350], X[350:354], n_removed=30, C=0.05)
    assert r >= 0.99, r


def test_sign_duplicate_is_proponent_flipped_copy_is_opponent(classification):
    X, y, X_test, _ = classification(2, seed=2)
    x_new = X_test[:1]
    label = LogisticRegression().fit(X, y).predict(x_new)[0]
    X_aug = np.vstack([X, x_new, x_new])
    y_aug = np.append(y, [label, 1 - label])
    model = LogisticRegression(tol=1e-10).fit(X_aug, y_aug)
    for method in METHODS:
        scores = (
            InfluenceExplainer(model, method=method)
            .fit(X_aug, y_aug)
            .transform(x_new, [label])[0]
        )
        assert scores[-2] > 0 > scores[-1]


def test_tiny_gradients_give_finite_relatif_scores(classification):
    """Examples fitted with near certainty keep a finite, non-zero RelatIF score."""
    X, y, X_test, _ = classification(2, seed=4)
    model = LogisticRegression(tol=1e-10).fit(X, y)
    direction = model.coef_[0] / np.linalg.norm(model.coef_[0]) ** 2
    far = 900.0 * direction  # f ~ 900: expit(-f) underflows to 0 in float64
    X_aug, y_aug = np.vstack([X, far, -far]), np.append(y, [1, 0])
    model = LogisticRegression(tol=1e-10).fit(X_aug, y_aug)
    for method in ["theta-relatif", "l-relatif"]:
        ex = InfluenceExplainer(model, method=method).fit(X_aug, y_aug)
        scores = ex.transform(X_test)
        assert np.isfinite(scores).all()
        assert (np.abs(scores[:, -2:]) > 0).all()
        # The limit: the score of the unit gradient direction.
        unit_x = np.append(far, 1.0)
        G = -unit_x[None, :]
        H = _dense.hessian(model, X_aug, y_aug)
        Gt = _dense.gradients(model, X_test, model.predict(X_test))
        solved = np.linalg.solve(H, G.T).T
        norm = (
            np.sqrt(solved @ G.T) if method == "l-relatif" else np.linalg.norm(solved)
        )
        assert_close(scores[:, -2], (Gt @ solved.T).ravel() / np.ravel(norm))
    assert np.isfinite(ex.self_influence_).all()


def test_zero_gradient_example_scores_zero(classification):
    X, y, X_test, _ = classification(2, seed=6)
    X_aug, y_aug = np.vstack([X, np.zeros(X.shape[1])]), np.append(y, 1)
    model = LogisticRegression(fit_intercept=False, tol=1e-10).fit(X_aug, y_aug)
    for method in METHODS:
        scores = (
            InfluenceExplainer(model, method=method).fit(X_aug, y_aug).transform(X_test)
        )
        assert np.all(scores[:, -1] == 0)
        assert np.all(np.isfinite(scores))


def test_explain_is_top_k_of_transform(classification):
    X, y, X_test, _ = classification(3, seed=8)
    model = LogisticRegression(tol=1e-10).fit(X, y)
    ex = InfluenceExplainer(model).fit(X, y)
    scores = ex.transform(X_test)
    e = ex.explain(X_test, k=4)
    order = np.argsort(-scores, axis=1, kind="stable")
    np.testing.assert_array_equal(e.proponents, order[:, :4])
    np.testing.assert_array_equal(
        e.opponents, np.argsort(scores, axis=1, kind="stable")[:, :4]
    )
    np.testing.assert_allclose(
        e.proponent_scores, np.take_along_axis(scores, order[:, :4], 1)
    )
    assert (np.diff(e.proponent_scores, axis=1) <= 0).all()
    assert (np.diff(e.opponent_scores, axis=1) >= 0).all()
    np.testing.assert_array_equal(e.target, model.predict(X_test))
    np.testing.assert_array_equal(e.train_target, y)
    runner_up = model.classes_[
        np.argsort(model.decision_function(X_test), axis=1)[:, -2]
    ]
    e2 = ex.explain(X_test, y=runner_up, k=2)
    np.testing.assert_array_equal(e2.target, runner_up)
    np.testing.assert_array_equal(
        e2.proponents,
        np.argsort(-ex.transform(X_test, runner_up), 1, kind="stable")[:, :2],
    )


def test_explanation_to_frame(classification):
    pytest.importorskip("pandas")
    X, y, X_test, _ = classification(2)
    ex = InfluenceExplainer(LogisticRegression()).fit(X, y)
    e = ex.explain(X_test[:3], k=2)
    frame = e.to_frame()
    assert len(frame) == 3 * 2 * 2
    first = frame[
        (frame.test_index == 1) & (frame.kind == "proponent") & (frame["rank"] == 1)
    ]
    assert first.train_index.item() == e.proponents[1, 0]
    assert first.score.item() == e.proponent_scores[1, 0]
    assert first.train_target.item() == y[e.proponents[1, 0]]

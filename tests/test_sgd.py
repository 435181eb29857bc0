"""SGDClassifier(loss="log_loss") and SGDRegressor(loss="squared_error") against a
dense reference written from scikit-learn's documented SGD objective.

SGD is seldom run to the exact optimum, so the reference is built from the
fitted model's own coef_ / intercept_ (the scores are a function of the fitted
parameters): explicit per-example gradients and the explicit Hessian of

    F = 1/n sum_i s_i l_i + alpha/2 ||w||^2   (the intercept unpenalised)
"""

import re
import warnings

import numpy as np
import pytest
from scipy import sparse
from scipy.special import expit
from scipy.stats import pearsonr
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer

from . import _dense
from ._dense import assert_close, fitted_state

METHODS = ["if", "theta-relatif", "l-relatif"]
# A small constant step for a fixed number of epochs (tol=None: no early stop,
# no ConvergenceWarning): within about 1e-3 of the optimum, so the "not at a
# minimum" warning stays quiet (the references themselves do not need it).
TIGHT = {"learning_rate": "constant", "eta0": 0.001, "tol": None, "max_iter": 3000}


def _classification(n_classes, n=70, d=5, seed=0):
    X, y = make_classification(
        n_samples=n + 15, n_features=d, n_informative=4, n_redundant=0,
        n_classes=n_classes, n_clusters_per_class=1, flip_y=0.1, random_state=seed,
        weights=[0.6, 0.4] if n_classes == 2 else [0.5, 0.3, 0.2],  # unbalanced
    )  # fmt: skip
    X = StandardScaler().fit_transform(X)
    return X[:n], y[:n], X[n:], y[n:]


def _regression(n=60, d=4, seed=0):
    X, y = make_regression(n_samples=n + 10, n_features=d, noise=5.0, random_state=seed)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    return X[:n], y[:n], X[n:], y[n:]


def _fit(model, X, y, sample_weight=None):
    """Fit without warnings: the settings converge."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
        return model.fit(X, y, **kwargs)


def _design(model, X):
    return np.hstack([X, np.ones((len(X), 1))]) if model.fit_intercept else X


def _penalty(model, n_design, n_outputs):
    alpha = 0.0 if model.penalty is None else model.alpha
    pen = np.full(n_design, alpha)
    if model.fit_intercept:
        pen[-1] = 0.0
    return np.diag(np.tile(pen, n_outputs))


def _classifier_reference(model, X, y, sw, Xt, yt):
    """G, Gt, H, s for SGDClassifier: binary logistic loss with y in {-1, +1};
    one-vs-rest for K > 2, class weight class_weight[k] on the positives of
    output k and 1 on its negatives (part of the loss, also for the test)."""
    n, K = len(y), model.coef_.shape[0]
    classes = model.classes_
    cw = np.ones(len(classes))
    if model.class_weight == "balanced":
        cw = len(y) / (len(classes) * np.bincount(y))  # no sample weights
    elif isinstance(model.class_weight, dict):
        cw = np.array([model.class_weight.get(c, 1.0) for c in classes])
    s = np.ones(n) if sw is None else np.asarray(sw, float)

    def per_example(X_, y_):
        F = model.decision_function(X_).reshape(len(X_), K)
        if K == 1:
            Y = (y_ == 1)[:, None]
            weights = np.ones((len(X_), 1))
        else:
            Y = np.eye(K, dtype=bool)[y_]
            weights = np.where(Y, cw, 1.0)
        R = weights * (expit(F) - Y)
        D = weights * expit(F) * (1 - expit(F))
        design = _design(model, X_)
        return np.array([np.kron(r, x) for r, x in zip(R, design)]), D, design

    G, D, design = per_example(X, y)
    Gt, _, _ = per_example(Xt, yt)
    if K == 1:
        s = s * cw[y]
    H = sum(
        si / n * np.kron(np.diag(di), np.outer(x, x)) for si, di, x in zip(s, D, design)
    )
    H = H + _penalty(model, design.shape[1], K)
    return G, Gt, H, s / n


def _regressor_reference(model, X, y, sw, Xt, yt=None):
    n = len(y)
    s = np.ones(n) if sw is None else np.asarray(sw, float)
    design, design_t = _design(model, X), _design(model, Xt)
    G = (model.predict(X) - y)[:, None] * design
    # no y: minus the gradient of the prediction (positive = pushes it up)
    Gt = -design_t if yt is None else (model.predict(Xt) - yt)[:, None] * design_t
    H = (design.T * (s / n)) @ design + _penalty(model, design.shape[1], 1)
    return G, Gt, H, s / n


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weights", [None, "sample", "class", "both"])
def test_classifier_matches_dense_reference(n_classes, fit_intercept, weights):
    X, y, Xt, yt = _classification(n_classes)
    sw, class_weight = _dense.weights_case(weights, len(y), n_classes, 0.3)
    model = SGDClassifier(
        loss="log_loss", alpha=0.01, fit_intercept=fit_intercept,
        class_weight=class_weight, random_state=0, **TIGHT,
    )  # fmt: skip
    _fit(model, X, y, sw)
    pred = model.predict(Xt)
    for yt_explained, given in ((pred, None), (yt, yt)):
        G, Gt, H, w = _classifier_reference(model, X, y, sw, Xt, yt_explained)
        for method in METHODS:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # converged: no warning
                ex = InfluenceExplainer(model, method=method).fit(X, y, sw)
            expected, self_influence = _dense.scores_from(G, Gt, H, w, method)
            assert_close(ex.transform(Xt, given), expected)
            assert_close(ex.self_influence_, self_influence)
    np.testing.assert_array_equal(
        InfluenceExplainer(model).fit(X, y, sw).explain(Xt).target, pred
    )


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("given_y", [False, True])
@pytest.mark.parametrize("average", [False, True])
def test_regressor_matches_dense_reference(fit_intercept, weighted, given_y, average):
    """With y: the test loss 1/2 (y - f)^2; without: the prediction
    (positive = pushes it up; Explanation.target = the predictions).
    average=True (not at a minimum here) is explained as fitted."""
    X, y, Xt, yt = _regression()
    sw = np.random.RandomState(2).uniform(0.3, 3, len(y)) if weighted else None
    model = SGDRegressor(
        alpha=0.01, fit_intercept=fit_intercept, average=average, random_state=0,
        **TIGHT,
    )  # fmt: skip
    _fit(model, X, y, sw)
    target = yt if given_y else None
    G, Gt, H, w = _regressor_reference(model, X, y, sw, Xt, target)
    for method in METHODS:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "SGDRegressor is not at a minimum")
            ex = InfluenceExplainer(model, method=method).fit(X, y, sample_weight=sw)
        expected, self_influence = _dense.scores_from(G, Gt, H, w, method)
        assert_close(ex.transform(Xt, target), expected)
        assert_close(ex.self_influence_, self_influence)
        e = ex.explain(Xt, target, k=3)
        np.testing.assert_allclose(e.target, yt if given_y else model.predict(Xt))


def test_regressor_prediction_sign():
    """No y: "if" is minus the first-order change of the prediction when i is
    removed, i.e. c s_i x̃_t^T H^-1 x̃_i (f_i - y_i) with the sign such that an
    example above the fit (f_i < y_i) pulls the prediction up: positive."""
    X, y, Xt, _ = _regression(seed=3)
    model = _fit(SGDRegressor(alpha=0.1, random_state=0, **TIGHT), X, y)
    scores = InfluenceExplainer(model, method="if").fit(X, y).transform(Xt)
    design, design_t = _design(model, X), _design(model, Xt)
    H = design.T @ design / len(y) + _penalty(model, design.shape[1], 1)
    change = (design_t @ np.linalg.solve(H, design.T)) * (y - model.predict(X)) / len(y)
    assert_close(scores, change)  # removing i changes f by -change: + = pushes up


@pytest.mark.parametrize("n_classes", [2, 3])
def test_penalty_none_and_elasticnet_without_l1(n_classes):
    X, y, Xt, _ = _classification(n_classes, seed=4)
    l2 = _fit(SGDClassifier(loss="log_loss", alpha=0.01, random_state=0, **TIGHT), X, y)
    net = SGDClassifier(
        loss="log_loss", penalty="elasticnet", l1_ratio=0.0, alpha=0.01,
        random_state=0, **TIGHT,
    )  # fmt: skip
    _fit(net, X, y)
    none = SGDClassifier(
        loss="log_loss", penalty=None, random_state=0, **{**TIGHT, "eta0": 0.01}
    )
    _fit(none, X, y)
    for model in (l2, net, none):
        G, Gt, H, w = _classifier_reference(model, X, y, None, Xt, model.predict(Xt))
        for method in METHODS:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "SGDClassifier is not at a minimum")
                ex = InfluenceExplainer(model, method=method).fit(X, y)
            expected, _ = _dense.scores_from(G, Gt, H, w, method)
            assert_close(ex.transform(Xt), expected)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "model",
    [
        SGDClassifier(loss="log_loss", max_iter=2, random_state=0),
        SGDRegressor(max_iter=1, random_state=0),
    ],
    ids=["classifier", "regressor"],
)
def test_not_at_minimum_warning_says_how_far_and_what_to_do(model):
    if isinstance(model, SGDRegressor):
        X, y, _, _ = _regression()
    else:
        X, y, _, _ = _classification(3)
    model.fit(X, y)
    with pytest.warns(UserWarning, match="not at a minimum") as record:
        ex = InfluenceExplainer(model).fit(X, y)
    message = str(record[0].message)
    gap = re.search(r"the objective's gradient is ([0-9.]+)% of its size", message)
    assert gap is not None, message
    np.testing.assert_allclose(
        float(gap.group(1)), 100 * fitted_state(ex).optimality_gap_, rtol=0, atol=0.051
    )
    assert "refit with a smaller tol, a larger max_iter, or average=True" in message


@pytest.mark.parametrize(
    "model, match",
    [
        (SGDClassifier(), "loss='hinge' is not supported"),
        (SGDClassifier(loss="modified_huber"), "loss='modified_huber'"),
        (SGDClassifier(loss="perceptron"), "loss='perceptron'"),
        (SGDClassifier(loss="squared_error"), "loss='squared_error'"),
        (SGDRegressor(loss="huber"), "loss='huber' is not supported"),
        (SGDRegressor(loss="epsilon_insensitive"), "loss='epsilon_insensitive'"),
        (SGDClassifier(loss="log_loss", penalty="l1"), "penalty='l1'"),
        (
            SGDClassifier(loss="log_loss", penalty="elasticnet"),
            "penalty='elasticnet', l1_ratio=0.15",
        ),
        (SGDRegressor(penalty="l1"), "L1 penalty"),
        (SGDRegressor(early_stopping=True), "early_stopping=False"),
        (SGDClassifier(loss="log_loss", early_stopping=True), "early_stopping"),
    ],
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_unsupported_settings_get_clear_errors(model, match):
    if isinstance(model, SGDRegressor):
        X, y, _, _ = _regression()
    else:
        X, y, _, _ = _classification(2)
    model.set_params(random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=match) as info:
        InfluenceExplainer(model).fit(X, y)
    assert "Supported:" in str(info.value) or "early_stopping" in str(info.value)


def test_pipeline_sparse_float32_and_unfitted():
    X, y, Xt, _ = _classification(3, n=120, d=6, seed=5)
    pipe = make_pipeline(
        StandardScaler(),
        SGDClassifier(loss="log_loss", alpha=0.01, random_state=0, **TIGHT),
    )
    _fit(pipe, X, y)
    final = pipe[-1]
    Xs, Xts = pipe[0].transform(X), pipe[0].transform(Xt)
    ref = InfluenceExplainer(final).fit(Xs, y)
    assert_close(InfluenceExplainer(pipe).fit(X, y).transform(Xt), ref.transform(Xts))
    # an unfitted pipeline is fitted by the explainer (same random_state: same model)
    unfitted = make_pipeline(
        StandardScaler(),
        SGDClassifier(loss="log_loss", alpha=0.01, random_state=0, **TIGHT),
    )
    assert_close(
        InfluenceExplainer(unfitted).fit(X, y).transform(Xt), ref.transform(Xts)
    )
    for method in METHODS:
        dense = InfluenceExplainer(final, method=method).fit(Xs, y)
        sp = InfluenceExplainer(final, method=method).fit(sparse.csr_matrix(Xs), y)
        assert_close(sp.transform(sparse.csr_matrix(Xts)), dense.transform(Xts))
        assert_close(sp.self_influence_, dense.self_influence_)
        f32 = InfluenceExplainer(final, method=method).fit(Xs.astype(np.float32), y)
        assert_close(
            f32.transform(Xts.astype(np.float32)), dense.transform(Xts), rtol=1e-4
        )


@pytest.mark.parametrize("n_classes", [2, 3])
def test_hessian_options(n_classes):
    """cg agrees with exact; one-vs-rest has no cross-output curvature, so the
    block-diagonal Hessian is exact; identity is H = I; lissa approximates."""
    X, y, Xt, _ = _classification(n_classes, n=200, seed=6)
    model = _fit(
        SGDClassifier(loss="log_loss", alpha=0.05, random_state=0, **TIGHT), X, y
    )
    exact = InfluenceExplainer(model, method="if").fit(X, y).transform(Xt)
    cg = InfluenceExplainer(model, method="if", solver="cg").fit(X, y)
    assert_close(cg.transform(Xt), exact, rtol=1e-6)
    block = InfluenceExplainer(model, method="if", solver="block-diagonal").fit(X, y)
    assert_close(block.transform(Xt), exact, rtol=1e-8 if n_classes > 2 else 1e-10)
    G, Gt, H, w = _classifier_reference(model, X, y, None, Xt, model.predict(Xt))
    identity = InfluenceExplainer(model, method="if", hessian="identity").fit(X, y)
    expected, _ = _dense.scores_from(G, Gt, np.eye(len(H)), w, "if")
    assert_close(identity.transform(Xt), expected)
    lissa = InfluenceExplainer(
        model, method="if", solver="lissa", random_state=0,
        solver_options={"depth": 500, "repeats": 2, "batch_size": 50},
    ).fit(X, y)  # fmt: skip
    assert pearsonr(lissa.transform(Xt).ravel(), exact.ravel())[0] > 0.99


def test_multiclass_residual_direction_survives_underflow():
    """Every output's residual underflows (confident, far-away points): the
    RelatIF scores stay finite and non-zero (the direction is computed in
    the log domain)."""
    X, y, Xt, _ = _classification(3, seed=7)
    model = _fit(
        SGDClassifier(loss="log_loss", alpha=0.01, random_state=0, **TIGHT), X, y
    )
    far = np.vstack([X, 1e4 * model.coef_[0]])
    y_far = np.r_[y, 0]
    assert model.predict(far[-1:])[0] == 0
    F = model.decision_function(far[-1:])[0]
    naive = expit(F) - np.eye(3)[0]  # every component underflows (or cancels)
    assert np.all(np.abs(naive) == 0), F
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "SGDClassifier is not at a minimum")
        ex = InfluenceExplainer(model, method="l-relatif").fit(far, y_far)
    scores = ex.transform(Xt)
    assert np.isfinite(scores).all()
    assert np.all(scores[:, -1] != 0)


def test_removal_renormalises_like_a_refit_on_fewer_rows():
    """SGD's objective is a mean: a refit on n - 1 rows minimises
    ``1/(n-1) sum_{j != i} 1/2 (y_j - f_j)^2 + alpha/2 ||w||^2``, i.e. ridge with
    ``alpha_ridge = (n - 1) alpha``. With the parameters at the exact minimum,
    exact leave-one-out (Newton iterations) equals that closed form, and
    method="newton" is within the documented O(1/n) of it."""
    from sklearn.linear_model import Ridge

    from skrelatif.validation import leave_one_out

    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4))
    y = X @ [1.0, -2.0, 0.5, 0.0] + rng.normal(scale=0.5, size=60)
    Xt, yt = rng.normal(size=(5, 4)), rng.normal(size=5)
    alpha, n = 0.05, len(y)
    model = SGDRegressor(alpha=alpha, max_iter=5, tol=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    exact = Ridge(alpha=n * alpha).fit(X, y)  # the exact minimum of SGD's objective
    model.coef_, model.intercept_ = exact.coef_.copy(), np.atleast_1d(exact.intercept_)
    removed = np.arange(0, n, 6)
    ex = InfluenceExplainer(model, method="newton").fit(X, y)
    loo = leave_one_out(ex, Xt, yt, removed)
    newton = ex.transform(Xt, yt)[:, removed]
    actual = np.empty((len(yt), len(removed)))
    for j, i in enumerate(removed):
        refit = Ridge(alpha=(n - 1) * alpha).fit(np.delete(X, i, 0), np.delete(y, i))
        actual[:, j] = (
            0.5 * (yt - refit.predict(Xt)) ** 2 - 0.5 * (yt - exact.predict(Xt)) ** 2
        )
    np.testing.assert_allclose(loo.test_loss_change, actual, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(
        newton, actual, rtol=0, atol=2 / n * np.abs(actual).max()
    )

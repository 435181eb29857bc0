"""Support-vector influence and RelatIF for SVC, NuSVC and LinearSVC.

The reference scores are computed here from scratch with numpy (kernel
matrices written out, ``gamma`` resolved by hand, per-machine support vectors
from independent binary refits or from the margins), following the appendix F
formulas of Barshan et al. (2020) and the multiclass rule of
``skrelatif._adapters.svm``.
"""

import tracemalloc
import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn import config_context
from sklearn.datasets import make_blobs
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC, NuSVC

from skrelatif import InfluenceExplainer

from ._dense import fitted_state

METHODS = ("if", "theta-relatif", "l-relatif")
KERNELS = ("linear", "poly", "rbf", "sigmoid")
GAMMAS = (0.3, "scale", "auto")
DEGREE, COEF0 = 3, 0.5


# -- reference implementation --------------------------------------------------------
def resolve_gamma(gamma, X):
    if gamma == "scale":
        return 1.0 / (X.shape[1] * X.var())
    if gamma == "auto":
        return 1.0 / X.shape[1]
    return gamma


def brute_kernel(A, B, kernel, gamma, degree=DEGREE, coef0=COEF0):
    dot = A @ B.T
    if kernel == "linear":
        return dot
    if kernel == "poly":
        return (gamma * dot + coef0) ** degree
    if kernel == "rbf":
        return np.exp(-gamma * ((A[:, None, :] - B[None, :, :]) ** 2).sum(axis=-1))
    if kernel == "sigmoid":
        return np.tanh(gamma * dot + coef0)
    raise AssertionError(kernel)


def reference_scores(K_test, K_diag, machines, test_label, train_label):
    """Scores for explicit machines.

    ``K_test``: (n_test, n_train) kernel values; ``K_diag``: (n_train,) the
    ``K(x_i, x_i)``; ``machines``: list of (support mask (n_train,), side)
    where ``side`` maps a label to +1/-1 (or 0 when the machine ignores it).
    Returns ({method: scores}, self_influence).
    """
    n_test, n_train = K_test.shape
    m = np.zeros((n_test, n_train))
    n_active = np.zeros(n_train)
    for support, side in machines:
        y_t = np.array([side(c) for c in test_label])
        y_i = np.array([side(c) for c in train_label]) * support
        m += y_t[:, None] * y_i[None, :]
        n_active += support
    if_scores = m * K_test
    norm = np.sqrt(n_active * np.abs(K_diag))
    with np.errstate(divide="ignore", invalid="ignore"):
        relatif = np.where(norm > 0, if_scores / norm, 0.0)
    scores = {"if": if_scores, "theta-relatif": relatif, "l-relatif": relatif}
    return scores, n_active * K_diag


def binary_machine(support_index, n_train, positive):
    mask = np.zeros(n_train)
    mask[support_index] = 1
    return mask, lambda c: 1 if c == positive else -1


def svc_machines(Model, params, X, y):
    """One binary model per pair of classes, refitted independently."""
    classes = np.unique(y)
    machines = []
    for a_pos, a in enumerate(classes):
        for b in classes[a_pos + 1 :]:
            pair = np.flatnonzero((y == a) | (y == b))
            binary = Model(**params).fit(X[pair], y[pair])
            mask = np.zeros(len(y))
            mask[pair[binary.support_]] = 1
            machines.append(
                (mask, lambda c, a=a, b=b: 1 if c == a else (-1 if c == b else 0))
            )
    return machines


def assert_explainer_matches(model, X, y, X_test, K_test, K_diag, machines, labels):
    for method in METHODS:
        explainer = InfluenceExplainer(model, method=method).fit(X, y)
        expected, self_influence = reference_scores(K_test, K_diag, machines, labels, y)
        np.testing.assert_allclose(
            explainer.transform(X_test, labels),
            expected[method],
            rtol=1e-9,
            atol=1e-10,
            err_msg=method,
        )
        np.testing.assert_allclose(
            explainer.self_influence_, self_influence, rtol=1e-9, atol=1e-12
        )


def data(n_classes, n_samples=45, seed=0):
    X, y = make_blobs(
        n_samples, n_features=3, centers=n_classes, cluster_std=3.0, random_state=seed
    )
    X = StandardScaler().fit_transform(X)
    return X[:-6], y[:-6], X[-6:]


# -- binary and multiclass SVC / NuSVC, every kernel -----------------------------------
MODELS = [(SVC, {"C": 1.0}), (NuSVC, {"nu": 0.4})]


@pytest.mark.parametrize("Model, extra", MODELS, ids=["SVC", "NuSVC"])
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_scores_match_appendix_f(Model, extra, kernel, gamma, n_classes):
    X, y, X_test = data(n_classes)
    params = dict(kernel=kernel, degree=DEGREE, coef0=COEF0, **extra)
    model = Model(gamma=gamma, **params).fit(X, y)
    g = resolve_gamma(gamma, X)
    K_test = brute_kernel(X_test, X, kernel, g)
    K_diag = np.diag(brute_kernel(X, X, kernel, g))
    if n_classes == 2:
        machines = [binary_machine(model.support_, len(y), model.classes_[1])]
    else:
        machines = svc_machines(Model, dict(gamma=g, **params), X, y)
    # Explain the predictions and, for a multiclass model, every other label too.
    labels = [model.predict(X_test)] + [np.full(len(X_test), c) for c in model.classes_]
    for label in labels:
        assert_explainer_matches(model, X, y, X_test, K_test, K_diag, machines, label)


def test_multiclass_reduces_to_binary_machines():
    """Against label c, an example of class j scores as in the binary (c, j) model."""
    X, y, X_test = data(3)
    model = SVC(kernel="poly", degree=2, gamma="scale").fit(X, y)
    multi = InfluenceExplainer(model, method="if").fit(X, y)
    for c in range(3):
        scores = multi.transform(X_test, np.full(len(X_test), c))
        for j in set(range(3)) - {c}:
            pair = np.flatnonzero((y == c) | (y == j))
            binary_model = SVC(kernel="poly", degree=2, gamma=model._gamma)
            binary_model.fit(X[pair], y[pair])
            binary = InfluenceExplainer(binary_model, method="if").fit(X[pair], y[pair])
            expected = binary.transform(X_test, np.full(len(X_test), c))
            of_j = y[pair] == j
            np.testing.assert_allclose(scores[:, pair[of_j]], expected[:, of_j])
            # Class-c support vectors add up their binary scores over machines.
            assert np.all(
                (scores[:, pair[~of_j]] >= expected[:, ~of_j] - 1e-12)
                | (expected[:, ~of_j] < 0)
            )


def test_binary_string_labels_sign():
    """y = +1 is classes_[1]; proponents of a label are its own support vectors."""
    X, y, X_test = data(2)
    labels = np.array(["cat", "dog"])[y]
    model = SVC(kernel="rbf").fit(X, labels)
    explainer = InfluenceExplainer(model, method="if").fit(X, labels)
    for label in ("cat", "dog"):
        scores = explainer.transform(X_test, np.full(len(X_test), label))
        support = model.support_
        sign = np.where(labels[support] == label, 1.0, -1.0)
        K = brute_kernel(X_test, X[support], "rbf", resolve_gamma("scale", X))
        np.testing.assert_allclose(scores[:, support], sign * K)


# -- other kernels ---------------------------------------------------------------------
def quadratic_kernel(A, B):
    return (A @ B.T + 1.0) ** 2


@pytest.mark.parametrize("n_classes", [2, 3])
def test_callable_kernel(n_classes):
    X, y, X_test = data(n_classes)
    model = SVC(kernel=quadratic_kernel).fit(X, y)
    K_test = (X_test @ X.T + 1.0) ** 2
    K_diag = ((X**2).sum(axis=1) + 1.0) ** 2
    if n_classes == 2:
        machines = [binary_machine(model.support_, len(y), 1)]
    else:
        machines = svc_machines(SVC, dict(kernel=quadratic_kernel), X, y)
    labels = model.predict(X_test)
    assert_explainer_matches(model, X, y, X_test, K_test, K_diag, machines, labels)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_precomputed_kernel(n_classes):
    X, y, X_test = data(n_classes)
    gram = brute_kernel(X, X, "poly", 0.5)
    K_test = brute_kernel(X_test, X, "poly", 0.5)
    model = SVC(kernel="precomputed").fit(gram, y)
    if n_classes == 2:
        machines = [binary_machine(model.support_, len(y), 1)]
    else:
        # The pair refits need their own sub-Gram matrices.
        machines = []
        for a, b in ((0, 1), (0, 2), (1, 2)):
            pair = np.flatnonzero((y == a) | (y == b))
            binary = SVC(kernel="precomputed").fit(gram[np.ix_(pair, pair)], y[pair])
            mask = np.zeros(len(y))
            mask[pair[binary.support_]] = 1
            machines.append(
                (mask, lambda c, a=a, b=b: 1 if c == a else (-1 if c == b else 0))
            )
    labels = model.predict(K_test)
    assert_explainer_matches(
        model, gram, y, K_test, K_test, np.diag(gram), machines, labels
    )


def test_sparse_input():
    X, y, X_test = data(3)
    model = SVC(kernel="rbf", gamma=0.7).fit(sparse.csr_matrix(X), y)
    explainer = InfluenceExplainer(model).fit(sparse.csr_matrix(X), y)
    dense = InfluenceExplainer(SVC(kernel="rbf", gamma=0.7).fit(X, y)).fit(X, y)
    np.testing.assert_allclose(
        explainer.transform(sparse.csr_matrix(X_test)), dense.transform(X_test)
    )


# -- LinearSVC -------------------------------------------------------------------------
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("loss", ["hinge", "squared_hinge"])
def test_linear_svc(n_classes, fit_intercept, loss):
    X, y, X_test = data(n_classes, n_samples=80, seed=1)
    model = LinearSVC(
        loss=loss,
        fit_intercept=fit_intercept,
        intercept_scaling=2.0,
        tol=1e-6,
        max_iter=100_000,
    ).fit(X, y)
    decision = X @ model.coef_.T + model.intercept_
    offset = 4.0 if fit_intercept else 0.0  # intercept_scaling ** 2
    K_test = X_test @ X.T + offset
    K_diag = (X**2).sum(axis=1) + offset
    positives = [1] if n_classes == 2 else list(range(n_classes))
    machines = []
    for k, positive in enumerate(positives):
        y_k = np.where(y == positive, 1.0, -1.0)
        support = np.flatnonzero(y_k * decision[:, k] <= 1 + 1e-3)
        machines.append(binary_machine(support, len(y), positive))
    assert 0 < sum(mask.sum() for mask, _ in machines) < len(machines) * len(y)
    labels = [model.predict(X_test)] + [
        np.full(len(X_test), c) for c in range(n_classes)
    ]
    for label in labels:
        assert_explainer_matches(model, X, y, X_test, K_test, K_diag, machines, label)


# -- RelatIF versus IF -----------------------------------------------------------------
def poly_toy():
    """Two classes and a far outlier labelled +1 inside the other class."""
    rng = np.random.RandomState(0)
    X = np.vstack(
        [
            rng.normal([1.5, 1.5], 0.5, (20, 2)),
            rng.normal([-1.5, -1.5], 0.5, (20, 2)),
            [[-6.0, -5.0]],
        ]
    )
    y = np.r_[np.ones(20), np.zeros(20), 1].astype(int)
    return X, y


def test_relatif_prefers_near_small_norm_support_vector():
    X, y = poly_toy()
    model = SVC(kernel="poly", degree=2, gamma=1.0, coef0=1.0).fit(X, y)
    outlier = 40
    x_test = np.array([[0.7, 0.9]])
    assert model.predict(x_test)[0] == 1
    assert outlier in model.support_
    near = model.support_[(y[model.support_] == 1) & (model.support_ != outlier)]
    # The nearby support vectors are closer and of smaller norm in feature space.
    K_diag = (np.sum(X**2, axis=1) + 1.0) ** 2
    assert np.all(K_diag[near] < K_diag[outlier] / 10)
    if_top = InfluenceExplainer(model, method="if").fit(X, y).explain(x_test, k=1)
    assert if_top.proponents[0, 0] == outlier
    for method in ("theta-relatif", "l-relatif"):
        explainer = InfluenceExplainer(model, method=method).fit(X, y)
        top = explainer.explain(x_test, k=1).proponents[0, 0]
        assert top in near
        scores = explainer.transform(x_test)[0]
        assert scores[top] > scores[outlier] > 0


def test_rbf_rankings_coincide():
    """K(x, x) = 1 for the RBF kernel: RelatIF and IF give the same scores."""
    X, y, X_test = data(3)
    model = SVC(kernel="rbf").fit(X, y)
    scores = [
        InfluenceExplainer(model, method=m).fit(X, y).transform(X_test) for m in METHODS
    ]
    n_machines = fitted_state(InfluenceExplainer(model).fit(X, y)).adapter.n_machines_
    assert np.any(n_machines > 1)
    np.testing.assert_allclose(scores[1], scores[2])
    # Multiclass RelatIF divides by sqrt(n_i): the number of machines of i.
    support = np.sort(model.support_)
    np.testing.assert_allclose(
        scores[1][:, support], scores[0][:, support] / np.sqrt(n_machines)
    )


def test_non_positive_self_kernel():
    """Sigmoid kernels can give K(x_i, x_i) <= 0: RelatIF uses |K|, never NaN."""
    X, y, X_test = data(2)
    model = SVC(kernel="sigmoid", gamma=0.5, coef0=-1.0).fit(X, y)
    K_diag = np.tanh(0.5 * (X**2).sum(axis=1) - 1.0)
    support = model.support_
    assert np.any(K_diag[support] < 0) and np.any(K_diag[support] > 0)
    explainer = InfluenceExplainer(model, method="l-relatif").fit(X, y)
    scores = explainer.transform(X_test)
    assert np.all(np.isfinite(scores))
    K_test = np.tanh(0.5 * X_test @ X[support].T - 1.0)
    sign = (
        np.where(y[support] == 1, 1, -1)
        * np.where(model.predict(X_test) == 1, 1, -1)[:, None]
    )
    np.testing.assert_allclose(
        scores[:, support], sign * K_test / np.sqrt(np.abs(K_diag[support]))
    )
    np.testing.assert_allclose(explainer.self_influence_[support], K_diag[support])


def test_zero_self_kernel_scores_zero():
    """A support vector with K(x_i, x_i) = 0 scores 0 under RelatIF."""
    X, y, X_test = data(2)
    X = np.vstack([X, np.zeros((1, X.shape[1]))])
    y = np.r_[y, 0]
    gram = X @ X.T  # linear kernel: the last row and column are zero
    model = SVC(kernel="precomputed", C=10.0).fit(gram, y)
    assert len(y) - 1 in model.support_
    K_test = X_test @ X.T
    explainer = InfluenceExplainer(model, method="theta-relatif").fit(gram, y)
    scores = explainer.transform(K_test)
    assert np.all(np.isfinite(scores))
    assert np.all(scores[:, -1] == 0)
    assert np.count_nonzero(scores[:, model.support_]) > 0


# -- pipelines -------------------------------------------------------------------------
def test_fitted_pipeline():
    X, y, X_test = data(3, seed=2)
    X, X_test = 3 * X + 1, 3 * X_test + 1
    pipe = make_pipeline(StandardScaler(), SVC(kernel="poly", degree=2)).fit(X, y)
    scaler = pipe[0]
    Xs, Xs_test = scaler.transform(X), scaler.transform(X_test)
    svc = pipe[-1]
    g = resolve_gamma("scale", Xs)
    K_test = brute_kernel(Xs_test, Xs, "poly", g, degree=2, coef0=0.0)
    K_diag = np.diag(brute_kernel(Xs, Xs, "poly", g, degree=2, coef0=0.0))
    machines = svc_machines(SVC, dict(kernel="poly", degree=2, gamma=g), Xs, y)
    labels = pipe.predict(X_test)
    assert_explainer_matches(pipe, X, y, X_test, K_test, K_diag, machines, labels)
    explainer = InfluenceExplainer(pipe).fit(X, y)
    assert explainer.estimator_ is pipe
    assert svc.support_vectors_ is pipe[-1].support_vectors_  # not refitted


def test_explainer_as_pipeline_step():
    X, y, X_test = data(2, seed=3)
    X, X_test = 2 * X - 1, 2 * X_test - 1
    pipe = make_pipeline(StandardScaler(), InfluenceExplainer(SVC(kernel="poly")))
    scores = pipe.fit(X, y).transform(X_test)
    scaler = StandardScaler().fit(X)
    model = SVC(kernel="poly").fit(scaler.transform(X), y)
    direct = InfluenceExplainer(model).fit(scaler.transform(X), y)
    np.testing.assert_allclose(scores, direct.transform(scaler.transform(X_test)))
    assert np.count_nonzero(scores[0]) == len(model.support_)


# -- explain ---------------------------------------------------------------------------
def test_explain_label_other_than_prediction():
    X, y, X_test = data(3, seed=4)
    model = SVC(kernel="rbf", C=3.0).fit(X, y)
    predicted = model.predict(X_test)
    other = (predicted + 1) % 3
    explainer = InfluenceExplainer(model, method="l-relatif").fit(X, y)
    e = explainer.explain(X_test, y=other, k=3)
    np.testing.assert_array_equal(e.target, other)
    scores = explainer.transform(X_test, other)
    np.testing.assert_allclose(e.proponent_scores, -np.sort(-scores, axis=1)[:, :3])
    np.testing.assert_allclose(e.opponent_scores, np.sort(scores, axis=1)[:, :3])
    # Positive scores come from support vectors of the explained class only.
    positive = e.proponent_scores > 0
    assert positive.all()
    np.testing.assert_array_equal(y[e.proponents], np.repeat(other[:, None], 3, 1))
    assert not np.allclose(scores, explainer.transform(X_test))


def test_explain_returns_support_vectors_only():
    X, y, X_test = data(3, n_samples=80, seed=5)
    model = SVC(kernel="linear", C=0.5).fit(X, y)
    n_support = len(model.support_)
    assert n_support < len(y)
    explainer = InfluenceExplainer(model).fit(X, y)
    e = explainer.explain(X_test, k=n_support)
    assert np.isin(e.proponents, model.support_).all()
    assert np.isin(e.opponents, model.support_).all()
    with pytest.raises(ValueError, match="k must be"):
        explainer.explain(X_test, k=n_support + 1)


def test_only_support_vectors_are_scored():
    X, y, X_test = data(2, n_samples=80, seed=6)
    model = SVC(kernel="poly", C=0.5).fit(X, y)
    explainer = InfluenceExplainer(model).fit(X, y)
    influence = fitted_state(explainer)
    seen = []
    train_chunk = influence.train_chunk

    def spy(rows):
        seen.append(np.arange(len(y))[rows])
        return train_chunk(rows)

    influence.train_chunk = spy
    with config_context(working_memory=1e-3):
        explainer.explain(X_test, k=2)
        explainer.transform(X_test)
    assert len(seen) > 2  # several chunks
    scored = np.concatenate(seen)
    assert np.isin(scored, model.support_).all()
    scores = explainer.transform(X_test)
    non_support = np.setdiff1d(np.arange(len(y)), model.support_)
    assert np.all(scores[:, non_support] == 0)
    assert np.all(explainer.self_influence_[non_support] == 0)


@pytest.mark.parametrize(
    "kernel", ["rbf", quadratic_kernel, "precomputed"], ids=["rbf", "callable", "pre"]
)
def test_chunks_and_n_jobs_do_not_change_results(kernel):
    X, y, X_test = data(3, seed=7)
    if kernel == "precomputed":
        X, X_test = X @ X.T, X_test @ X.T
    model = SVC(kernel=kernel).fit(X, y)
    reference = InfluenceExplainer(model).fit(X, y)
    expected = reference.transform(X_test)
    expected_e = reference.explain(X_test, k=4)
    with config_context(working_memory=2e-4):  # 1 to 6 support vectors per chunk
        explainer = InfluenceExplainer(model, n_jobs=2).fit(X, y)
        atol = 1e-12 * np.abs(expected).max()
        np.testing.assert_allclose(
            explainer.transform(X_test), expected, rtol=1e-12, atol=atol
        )
        e = explainer.explain(X_test, k=4)
    np.testing.assert_allclose(explainer.self_influence_, reference.self_influence_)
    np.testing.assert_array_equal(e.proponents, expected_e.proponents)
    np.testing.assert_array_equal(e.opponents, expected_e.opponents)
    np.testing.assert_allclose(e.proponent_scores, expected_e.proponent_scores)


def test_memory_is_bounded_for_100k_training_points():
    rng = np.random.RandomState(0)
    n = 100_000
    y = rng.randint(2, size=n)
    X = rng.normal(size=(n, 2)) + 1.5 * y[:, None]  # overlapping: many SVs
    model = LinearSVC(dual=False).fit(X, y)
    X_test = X[:30]
    with config_context(working_memory=1):
        tracemalloc.start()
        explainer = InfluenceExplainer(model).fit(X, y)
        _, fit_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        e = explainer.explain(X_test, k=3)
        _, explain_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    n_support = len(fitted_state(explainer).candidates_)
    assert n_support > 10_000
    # fit keeps a few numbers per training example, never a kernel matrix ...
    assert fit_peak < 200 * n
    # ... and explain never holds the (n_test, n_SV) scores (8 * 30 * n_SV bytes).
    assert explain_peak < 8 * len(X_test) * n_support / 2
    assert e.proponents.shape == (30, 3)
    assert np.isin(e.proponents, fitted_state(explainer).candidates_).all()


# -- bad input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options, match",
    [
        ({"hessian": "identity"}, "SVC is explained as a sum over its training"),
        ({"damping": 0.1}, "hessian, solver and damping do not apply"),
        ({"solver": "cg"}, "hessian, solver and damping do not apply"),
        ({"method": "newton"}, "method='newton' needs the curvature"),
    ],
)
def test_hessian_and_damping_are_rejected(options, match):
    X, y, _ = data(2)
    model = SVC().fit(X, y)
    explainer = InfluenceExplainer(model, **options)
    with pytest.raises(ValueError, match=match):
        explainer.fit(X, y)
    assert not hasattr(explainer, "estimator_")


def test_unsupported_linear_svc_options():
    X, y, _ = data(3)
    l1 = LinearSVC(penalty="l1", dual=False).fit(X, y)
    with pytest.raises(ValueError, match="penalty='l1' is not supported"):
        InfluenceExplainer(l1).fit(X, y)
    cs = LinearSVC(multi_class="crammer_singer").fit(X, y)
    with pytest.raises(ValueError, match="crammer_singer"):
        InfluenceExplainer(cs).fit(X, y)


def test_unknown_labels():
    X, y, X_test = data(3)
    explainer = InfluenceExplainer(SVC().fit(X, y)).fit(X, y)
    with pytest.raises(ValueError, match="labels the model does not know"):
        explainer.explain(X_test, y=np.full(len(X_test), 7))
    with pytest.raises(ValueError, match="labels the model does not know"):
        explainer.transform(X_test, np.full(len(X_test), 7))


@pytest.mark.parametrize("kernel", ["rbf", quadratic_kernel], ids=["rbf", "callable"])
def test_other_training_data_warns(kernel):
    X, y, _ = data(3)
    model = SVC(kernel=kernel).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        InfluenceExplainer(model).fit(X, y)  # the training data: no warning
    rng = np.random.RandomState(0)
    shuffled = np.arange(len(y))
    for c in range(3):  # shuffle within each class: y[shuffled] == y
        rows = np.flatnonzero(y == c)
        shuffled[rows] = rng.permutation(rows)
    with pytest.warns(UserWarning, match="does not match the X"):
        InfluenceExplainer(model).fit(X[shuffled], y[shuffled])
    flipped = y.copy()
    flipped[model.support_[0]] = (flipped[model.support_[0]] + 1) % 3
    with pytest.warns(UserWarning, match="y differs"):
        InfluenceExplainer(model).fit(X, flipped)
    with pytest.raises(ValueError, match="Pass the data the model was trained on"):
        InfluenceExplainer(model).fit(X[:5], y[:5])


def test_warning_points_at_the_caller():
    X, y, _ = data(2)
    model = SVC().fit(X, y)
    with pytest.warns(UserWarning, match="does not match the X") as record:
        InfluenceExplainer(model).fit(X[::-1], y[::-1])
    assert record[0].filename == __file__


def test_zero_sample_weights():
    """libsvm drops examples of weight 0; support_ then indexes the others."""
    X, y, X_test = data(3)
    sample_weight = np.ones(len(y))
    sample_weight[::4] = 0
    sample_weight[1::4] = 3
    model = SVC(gamma=0.5).fit(X, y, sample_weight=sample_weight)
    kept = np.flatnonzero(sample_weight > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explainer = InfluenceExplainer(model, method="if")
        explainer.fit(X, y, sample_weight=sample_weight)
    support = fitted_state(explainer).candidates_
    np.testing.assert_array_equal(support, np.sort(kept[model.support_]))
    scores = explainer.transform(X_test)
    assert np.all(scores[:, sample_weight == 0] == 0)
    # The same as the model trained without the examples of weight 0.
    reduced = SVC(gamma=0.5).fit(X[kept], y[kept], sample_weight=sample_weight[kept])
    reference = InfluenceExplainer(reduced, method="if").fit(X[kept], y[kept])
    np.testing.assert_allclose(scores[:, kept], reference.transform(X_test))
    # Without the weights, the model's support vectors do not match X.
    with pytest.warns(UserWarning, match="does not match the X"):
        InfluenceExplainer(model).fit(X, y)


def test_zero_sample_weights_callable_kernel_warns():
    """scikit-learn's SVC with a callable kernel and weights 0 predicts with the
    wrong kernel columns: the explainer says so and scores the right examples."""
    X, y, X_test = data(2)
    sample_weight = np.where(np.arange(len(y)) % 4 == 0, 0.0, 1.0)
    model = SVC(kernel=quadratic_kernel).fit(X, y, sample_weight=sample_weight)
    kept = np.flatnonzero(sample_weight > 0)
    with pytest.warns(UserWarning, match="sample weight 0"):
        explainer = InfluenceExplainer(model).fit(X, y, sample_weight=sample_weight)
    support = fitted_state(explainer).candidates_
    np.testing.assert_array_equal(support, np.sort(kept[model.support_]))


def test_linear_svc_zero_weights_are_not_support_vectors():
    X, y, X_test = data(2, n_samples=80, seed=1)
    sample_weight = np.where(np.arange(len(y)) % 3 == 0, 0.0, 1.0)
    model = LinearSVC(tol=1e-6).fit(X, y, sample_weight=sample_weight)
    explainer = InfluenceExplainer(model).fit(X, y, sample_weight=sample_weight)
    unweighted = InfluenceExplainer(model).fit(X, y)
    support = fitted_state(explainer).candidates_
    assert np.all(sample_weight[support] > 0)
    assert np.any(sample_weight[fitted_state(unweighted).candidates_] == 0)
    np.testing.assert_array_equal(
        support, np.intersect1d(fitted_state(unweighted).candidates_, support)
    )


def test_non_symmetric_gram_warns():
    X, y, _ = data(2)
    gram = X @ X.T
    model = SVC(kernel="precomputed").fit(gram, y)
    other = gram + np.triu(np.ones_like(gram))
    with pytest.warns(UserWarning, match="symmetric Gram matrix"):
        InfluenceExplainer(model).fit(other, y)


# -- decomposition of the decision function --------------------------------------------
@pytest.mark.parametrize("Model, extra", MODELS, ids=["SVC", "NuSVC"])
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("n_classes", [2, 3, 4])
def test_decompose_sums_to_the_decision_function(Model, extra, kernel, n_classes):
    X, y, X_test = data(n_classes)
    model = Model(kernel=kernel, gamma=0.3, degree=DEGREE, coef0=COEF0, **extra)
    model.fit(X, y)
    explainer = InfluenceExplainer(model, method="if").fit(X, y)
    parts = explainer.decompose(X_test)
    ovo = SVC(**model.get_params()) if Model is SVC else NuSVC(**model.get_params())
    ovo.set_params(decision_function_shape="ovo").fit(X, y)
    expected = ovo.decision_function(X_test)
    n_machines = n_classes * (n_classes - 1) // 2
    assert parts.shape == (len(X_test), len(y), n_machines)[: 2 + (n_machines > 1)]
    total = parts.sum(axis=1) + explainer.baseline_
    scale = np.abs(expected).max()
    np.testing.assert_allclose(total, expected, rtol=1e-10, atol=1e-10 * scale)
    # only support vectors contribute, as dual coefficient times kernel value
    K = brute_kernel(X_test, X, kernel, 0.3)
    coefficient = (
        parts.reshape(len(X_test), len(y), -1) / np.where(K == 0, 1, K)[:, :, None]
    )
    non_support = np.setdiff1d(np.arange(len(y)), model.support_)
    assert np.all(parts.reshape(len(X_test), len(y), -1)[:, non_support] == 0)
    np.testing.assert_allclose(coefficient[0], coefficient[-1], atol=1e-10)


def test_decompose_precomputed_and_zero_weights():
    """libsvm drops the examples of weight 0; the decomposition is that of
    the model trained without them (which, with a precomputed kernel,
    scikit-learn's own decision_function is not: its support_ indexes the
    remaining rows, scikit-learn PR #27763)."""
    X, y, X_test = data(3)
    sample_weight = np.ones(len(y))
    sample_weight[::5] = 0
    kept = np.flatnonzero(sample_weight > 0)
    gram, gram_test = (
        brute_kernel(X, X, "rbf", 0.5),
        brute_kernel(X_test, X, "rbf", 0.5),
    )
    for kernel, train, test in [("rbf", X, X_test), ("precomputed", gram, gram_test)]:
        model = SVC(kernel=kernel, gamma=0.5, decision_function_shape="ovo")
        model.fit(train, y, sample_weight=sample_weight)
        explainer = InfluenceExplainer(model).fit(train, y, sample_weight=sample_weight)
        parts = explainer.decompose(test)
        assert np.all(parts[:, sample_weight == 0] == 0)
        reduced = SVC(kernel=kernel, gamma=0.5, decision_function_shape="ovo")
        if kernel == "precomputed":
            reduced.fit(train[kept][:, kept], y[kept])
            expected = reduced.decision_function(test[:, kept])
        else:
            expected = reduced.fit(train[kept], y[kept]).decision_function(test)
        np.testing.assert_allclose(
            parts.sum(axis=1) + explainer.baseline_, expected, rtol=1e-10, atol=1e-12
        )


def test_linear_svc_has_no_decomposition():
    X, y, X_test = data(2)
    explainer = InfluenceExplainer(LinearSVC().fit(X, y)).fit(X, y)
    with pytest.raises(ValueError, match="does not store its dual coefficients"):
        explainer.decompose(X_test)

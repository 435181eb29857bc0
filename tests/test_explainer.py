"""Estimator behaviour: pipelines, cloning, pickling, parallelism and bad input."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
from scipy import sparse
from sklearn import config_context
from sklearn.base import clone
from sklearn.datasets import load_iris, make_classification
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import check_estimator

from skrelatif import InfluenceExplainer
from skrelatif.exceptions import FeatureCountError, SingularCurvatureError

from . import _dense


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=120,
        n_features=6,
        n_informative=4,
        n_classes=3,
        n_clusters_per_class=1,
        random_state=0,
    )
    X[:, 0] *= 10.0  # so that scaling in a pipeline matters
    return X[:100], y[:100], X[100:], y[100:]


def test_fitted_pipeline_equals_manual_transform(data):
    X, y, X_test, _ = data
    pipe = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-10)).fit(X, y)
    scaler, model = pipe[0], pipe[-1]
    via_pipe = InfluenceExplainer(pipe).fit(X, y).transform(X_test)
    direct = (
        InfluenceExplainer(model)
        .fit(scaler.transform(X), y)
        .transform(scaler.transform(X_test))
    )
    np.testing.assert_allclose(via_pipe, direct, rtol=1e-12, atol=1e-14)


def test_unfitted_model_is_cloned_and_fitted(data):
    X, y, X_test, _ = data
    pipe = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-10))
    ex = InfluenceExplainer(pipe).fit(X, y)
    assert ex.estimator_ is not pipe
    with pytest.raises(NotFittedError):
        pipe.predict(X)  # the user's model is left untouched
    fitted = clone(pipe).fit(X, y)
    np.testing.assert_allclose(
        ex.transform(X_test), InfluenceExplainer(fitted).fit(X, y).transform(X_test)
    )


def test_sample_weight_reaches_unfitted_pipeline(data):
    X, y, X_test, _ = data
    sw = np.random.RandomState(0).uniform(0.1, 2, len(y))
    pipe = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-10))
    ex = InfluenceExplainer(pipe).fit(X, y, sample_weight=sw)
    fitted = clone(pipe).fit(X, y, logisticregression__sample_weight=sw)
    np.testing.assert_allclose(ex.estimator_[-1].coef_, fitted[-1].coef_)


def test_explainer_as_last_pipeline_step(data):
    X, y, X_test, _ = data
    pipe = make_pipeline(
        StandardScaler(), InfluenceExplainer(LogisticRegression(tol=1e-10))
    )
    scores = pipe.fit(X, y).transform(X_test)
    scaler = StandardScaler().fit(X)
    model = LogisticRegression(tol=1e-10).fit(scaler.transform(X), y)
    expected = (
        InfluenceExplainer(model)
        .fit(scaler.transform(X), y)
        .transform(scaler.transform(X_test))
    )
    np.testing.assert_allclose(scores, expected, rtol=1e-10, atol=1e-12)
    assert pipe.get_feature_names_out().shape == (len(X),)


def test_sparse_pipeline_output_and_sparse_input():
    texts = [
        "good movie",
        "bad movie",
        "great film",
        "awful film",
        "good film",
        "bad acting",
        "great acting",
        "awful movie",
    ] * 5
    labels = np.array([1, 0, 1, 0, 1, 0, 1, 0] * 5)
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(tol=1e-10)).fit(
        texts, labels
    )
    ex = InfluenceExplainer(pipe).fit(texts, labels)
    Xt = pipe[0].transform(texts)
    assert sparse.issparse(Xt)
    dense = InfluenceExplainer(
        LogisticRegression(tol=1e-10).fit(Xt.toarray(), labels)
    ).fit(Xt.toarray(), labels)
    np.testing.assert_allclose(
        ex.transform(["good acting", "awful"]),
        dense.transform(pipe[0].transform(["good acting", "awful"]).toarray()),
        rtol=1e-6,
        atol=1e-10,
    )
    # Sparse X straight into the explainer (CSC is accepted as well).
    sparse_ex = InfluenceExplainer(pipe[-1]).fit(Xt.tocsc(), labels)
    np.testing.assert_allclose(sparse_ex.transform(Xt[:3]), ex.transform(texts[:3]))


def test_one_hot_pipeline_with_dataframe():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"colour": list("rgbrgbrrgb") * 3, "size": np.arange(30) % 7})
    y = np.array(frame["size"] > 3, dtype=int)
    y[:3] = 1 - y[:3]
    pipe = make_pipeline(OneHotEncoder(), LogisticRegression(C=0.5, tol=1e-10)).fit(
        frame, y
    )
    ex = InfluenceExplainer(pipe).fit(frame, y)
    assert list(ex.feature_names_in_) == ["colour", "size"]
    assert ex.explain(frame.iloc[:4], k=3).proponents.shape == (4, 3)


def test_frozen_estimator_means_fitted_model(data):
    X, y, X_test, _ = data
    model = LogisticRegression(tol=1e-10).fit(X, y)
    frozen = InfluenceExplainer(FrozenEstimator(model)).fit(X, y)
    plain = InfluenceExplainer(model).fit(X, y)
    assert frozen.estimator_.estimator is model
    np.testing.assert_allclose(frozen.transform(X_test), plain.transform(X_test))


def test_clone_pickle_and_grid_search(data):
    X, y, X_test, y_test = data
    ex = InfluenceExplainer(LogisticRegression(tol=1e-10), method="theta-relatif")
    fitted = clone(ex).fit(X, y)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(X_test), fitted.transform(X_test))
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    search = GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0]}, cv=3).fit(X, y)
    ex = InfluenceExplainer(search.best_estimator_).fit(X, y)
    assert ex.transform(X_test).shape == (len(X_test), len(X))


@pytest.mark.parametrize("method", ["if", "theta-relatif", "l-relatif"])
def test_n_jobs_and_chunk_size_do_not_change_results(data, method):
    X, y, X_test, _ = data
    model = LogisticRegression(tol=1e-10).fit(X, y)
    reference = InfluenceExplainer(model, method=method).fit(X, y)
    expected, e_ref = reference.transform(X_test), reference.explain(X_test, k=7)
    with config_context(working_memory=0.001):  # ~1 KiB: many tiny chunks
        chunked = InfluenceExplainer(model, method=method, n_jobs=2).fit(X, y)
        np.testing.assert_allclose(
            chunked.self_influence_,
            reference.self_influence_,
            rtol=1e-10,
            atol=1e-12 * np.abs(reference.self_influence_).max(),
        )
        np.testing.assert_allclose(
            chunked.transform(X_test), expected, rtol=1e-10, atol=1e-13
        )
        e = chunked.explain(X_test, k=7)
    np.testing.assert_array_equal(e.proponents, e_ref.proponents)
    np.testing.assert_array_equal(e.opponents, e_ref.opponents)
    np.testing.assert_allclose(
        e.proponent_scores,
        e_ref.proponent_scores,
        rtol=1e-10,
        atol=1e-12 * np.abs(e_ref.proponent_scores).max(),
    )


def test_ties_resolve_to_smaller_index_for_any_chunking():
    X, y = load_iris(return_X_y=True)
    X, y = np.vstack([X, X]), np.concatenate([y, y])  # every example twice
    model = LogisticRegression(tol=1e-10, max_iter=1000).fit(X, y)
    ex = InfluenceExplainer(model, method="l-relatif").fit(X, y)
    e = ex.explain(X[:5], k=4)
    with config_context(working_memory=0.002):
        e_chunked = ex.explain(X[:5], k=4)
    np.testing.assert_array_equal(e.proponents, e_chunked.proponents)
    # Duplicates tie: the pair (i, i + 150) appears with i first.
    first, second = e.proponents[:, 0], e.proponents[:, 1]
    np.testing.assert_array_equal(second, first + 150)


# The output has one column per training example, so refitting on repeated rows
# changes its shape: weights-as-repetitions equivalence cannot hold by design
# (sample weights do enter the scores, checked against the dense reference).
EXPECTED_FAILED_CHECKS = {
    check: "transform has one column per training example; repeating rows adds columns"
    for check in [
        "check_sample_weight_equivalence_on_dense_data",
        "check_sample_weight_equivalence_on_sparse_data",
    ]
}


@pytest.mark.slow
def test_sklearn_check_estimator():
    check_estimator(
        InfluenceExplainer(LogisticRegression()),
        expected_failed_checks=EXPECTED_FAILED_CHECKS,
    )


def test_failed_fit_leaves_fitted_state_unchanged(data):
    X, y, X_test, _ = data
    ex = InfluenceExplainer(LogisticRegression(tol=1e-8).fit(X, y)).fit(X, y)
    before = ex.transform(X_test)
    with pytest.raises(FeatureCountError, match="expecting 6 features"):
        ex.fit(X[:, :3], y)
    assert ex.n_features_in_ == X.shape[1]
    np.testing.assert_array_equal(ex.transform(X_test), before)


# -- bad input: a clear error, nothing changed --------------------------------------
def test_unsupported_model_lists_supported_ones(data):
    X, y, _, _ = data
    tree = DecisionTreeClassifier()
    match = "DecisionTreeClassifier is not supported.*LogisticRegression.*Ridge"
    with pytest.raises(TypeError, match=match):
        InfluenceExplainer(tree).fit(X, y)
    with pytest.raises(TypeError, match="DecisionTreeClassifier is not supported"):
        InfluenceExplainer(make_pipeline(StandardScaler(), tree)).fit(X, y)


def test_dispatch_is_on_exact_types(data):
    """A subclass of a supported estimator may change its objective: it gets
    the clear TypeError, not the parent's adapter."""

    class MyLogisticRegression(LogisticRegression):
        pass

    X, y, _, _ = data
    model = MyLogisticRegression().fit(X, y)
    with pytest.raises(TypeError, match="MyLogisticRegression is not supported"):
        InfluenceExplainer(model).fit(X, y)


# scikit-learn >= 1.8 reads the penalty from l1_ratio; older versions from penalty.
_NEW_PENALTY_API = LogisticRegression().penalty == "deprecated"


@pytest.mark.parametrize(
    "model",
    [
        LogisticRegression(l1_ratio=1.0, solver="saga")
        if _NEW_PENALTY_API
        else LogisticRegression(penalty="l1", solver="saga"),
        LogisticRegression(l1_ratio=0.5, solver="saga")
        if _NEW_PENALTY_API
        else LogisticRegression(penalty="elasticnet", l1_ratio=0.5, solver="saga"),
    ],
)
def test_unsupported_penalty(data, model):
    X, y, _, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    with pytest.raises(ValueError, match="L1 .*not twice differentiable"):
        InfluenceExplainer(model).fit(X, y)


def test_bad_input_errors(data):
    X, y, X_test, _ = data
    model = LogisticRegression().fit(X, y)
    ex = InfluenceExplainer(model)
    X_nan = X.copy()
    X_nan[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ex.fit(X_nan, y)
    X_inf = X.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        ex.fit(X_inf, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        ex.fit(X, y[:-1])
    with pytest.raises(ValueError, match="0 sample"):
        ex.fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="labels the model does not know: \\[7\\]"):
        ex.fit(X, np.where(y == 2, 7, y))
    with pytest.raises(NotFittedError):
        ex.transform(X_test)
    with pytest.raises(NotFittedError):
        ex.explain(X_test)
    with pytest.raises(ValueError, match="6 features"):
        InfluenceExplainer(model).fit(X[:, :5], y)
    ex.fit(X, y)
    with pytest.raises(ValueError, match="X has 4 features, but InfluenceExplainer is"):
        ex.transform(X_test[:, :4])
    with pytest.raises(ValueError, match="NaN"):
        ex.transform(np.full((1, 6), np.nan))
    with pytest.raises(ValueError, match="does not know"):
        ex.transform(X_test, ["a"] * len(X_test))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        ex.transform(X_test, y[:2])
    with pytest.raises(ValueError, match="0 sample"):
        ex.transform(X_test[:0])
    for k in [0, -1, 101, 2.5, True]:
        with pytest.raises(ValueError, match="k must be an integer between 1 and"):
            ex.explain(X_test, k=k)
    with pytest.raises(ValueError, match="method"):
        InfluenceExplainer(model, method="relatif").fit(X, y)
    with pytest.raises(ValueError, match="damping"):
        InfluenceExplainer(model, damping=-1.0).fit(X, y)


def test_singular_hessian_asks_for_damping():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    X = np.column_stack([X, X[:, 0]])  # duplicated feature, no penalty
    y = (X[:, 0] + rng.normal(size=60) > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(C=np.inf).fit(X, y)
    with pytest.raises(SingularCurvatureError, match="singular.*damping > 0"):
        InfluenceExplainer(model, damping=0).fit(X, y)
    scores = InfluenceExplainer(model, damping=1e-3).fit(X, y).transform(X[:2])
    assert np.isfinite(scores).all()
    # damping="auto" (the default) damps a convex objective's singular
    # curvature by 1e-8 of its mean diagonal, with a warning; every gradient
    # lies in the range of H (the duplicated feature's difference is flat),
    # so the scores are those of the pseudo-inverse
    with pytest.warns(UserWarning, match="singular on these data; damping='auto'"):
        auto = InfluenceExplainer(model, method="if").fit(X, y)
    H = _dense.hessian(model, X, y)
    assert 0 < auto.damping_ < 1e-6 * np.trace(H) / len(H)
    G, Gt = _dense.gradients(model, X, y), _dense.gradients(model, X[:2], y[:2])
    expected, _ = _dense.scores_from(G, Gt, H, np.ones(len(y)), "if", singular=True)
    _dense.assert_close(auto.transform(X[:2], y[:2]), expected, rtol=1e-6)


def test_not_at_minimum_warns(data):
    X, y, _, _ = data
    other = LogisticRegression().fit(X[::-1][:60], y[::-1][:60])
    with pytest.warns(
        UserWarning, match="not at a minimum of its training objective"
    ) as record:
        InfluenceExplainer(other).fit(X, y)
    assert record[0].filename == __file__  # points at the caller
    converged = LogisticRegression(tol=1e-8).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        InfluenceExplainer(converged).fit(X, y)


def test_inputs_and_model_are_not_modified(data):
    X, y, X_test, _ = data
    sw = np.ones(len(y))
    model = LogisticRegression().fit(X, y)
    before = [joblib.hash(obj) for obj in (model, X, y, X_test, sw)]
    ex = InfluenceExplainer(model).fit(X, y, sample_weight=sw)
    ex.transform(X_test)
    ex.explain(X_test, y=model.predict(X_test))
    after = [joblib.hash(obj) for obj in (model, X, y, X_test, sw)]
    assert before == after
    assert ex.estimator_ is model


# -- clone semantics, nested pipelines, parameters (issue 11) --------------------------
def test_clone_keeps_a_fitted_model(data):
    """clone(explainer) shares a fitted model, as FrozenEstimator does: refitting
    the clone on other data explains the same model, never a refit one."""
    X, y, X_test, _ = data
    model = LogisticRegression(tol=1e-10).fit(X, y)
    coef = model.coef_.copy()
    ex = InfluenceExplainer(model, method="if")
    cloned = clone(ex)
    assert cloned.model is model and cloned.method == "if"
    with pytest.warns(UserWarning, match="not at a minimum"):
        cloned.fit(X[:60], y[:60])  # other data: the same (fitted) model
    assert cloned.estimator_ is model
    np.testing.assert_array_equal(model.coef_, coef)
    unfitted = InfluenceExplainer(LogisticRegression(C=0.3))
    fresh = clone(unfitted)
    assert fresh.model is not unfitted.model and fresh.model.C == 0.3


def test_nested_parameters_of_a_fitted_model_cannot_be_set(data):
    X, y, _, _ = data
    model = LogisticRegression().fit(X, y)
    ex = InfluenceExplainer(model)
    with pytest.raises(ValueError, match="model__C.*fitted"):
        ex.set_params(model__C=5.0)
    assert model.C == 1.0
    ex.set_params(method="if")  # the explainer's own parameters are fine
    unfitted = InfluenceExplainer(LogisticRegression()).set_params(model__C=5.0)
    assert unfitted.model.C == 5.0


def _nested(C=1.0):
    inner = make_pipeline(StandardScaler(), LogisticRegression(C=C, tol=1e-10))
    return Pipeline([("a", StandardScaler()), ("b", inner)])


def test_nested_pipelines_route_sample_weight_and_transform_every_level(data):
    X, y, X_test, _ = data
    sw = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    ex = InfluenceExplainer(_nested(), method="if").fit(X, y, sample_weight=sw)
    fitted = _nested().fit(X, y, b__logisticregression__sample_weight=sw)
    final = fitted[-1][-1]
    np.testing.assert_allclose(ex.estimator_[-1][-1].coef_, final.coef_, rtol=1e-6)
    # the fitted nested pipeline maps X through both levels of transforms
    inner_X = fitted[-1][:-1].transform(fitted[:-1].transform(X))
    inner_test = fitted[-1][:-1].transform(fitted[:-1].transform(X_test))
    explained = InfluenceExplainer(fitted, method="if").fit(X, y, sample_weight=sw)
    manual = InfluenceExplainer(final, method="if").fit(inner_X, y, sample_weight=sw)
    expected = manual.transform(inner_test)
    np.testing.assert_allclose(
        explained.transform(X_test),
        expected,
        rtol=1e-10,
        atol=1e-12 * np.abs(expected).max(),
    )


def test_tune_first_then_explain(data):
    """The explainer is not a model to tune (no score): GridSearchCV over it
    fails clearly, and the docs say to tune the model and explain the best."""
    from pathlib import Path

    X, y, X_test, _ = data
    search = GridSearchCV(InfluenceExplainer(LogisticRegression()), {"method": ["if"]})
    with pytest.raises(TypeError, match="score"):
        search.fit(X, y)
    guide = Path(__file__).parents[1] / "doc" / "user_guide" / "pipelines.rst"
    text = guide.read_text()
    assert "Tune the model first, then explain it" in text
    assert (
        "inside\n  :class:`~sklearn.model_selection.GridSearchCV`, and so on"
        not in text
    )


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_jobs": 0}, "n_jobs"),
        ({"method": "newton", "hessian": "identity"}, "curvature"),
        ({"solver": "cg", "solver_options": {"max_iter": 0}}, "max_iter"),
        ({"solver": "cg", "solver_options": {"tol": -1.0}}, "tol"),
        ({"solver": "lissa", "solver_options": {"depth": 2.5}}, "depth"),
        ({"solver": "cg", "solver_options": {"depth": 3}}, "Unknown solver_options"),
        ({"solver_options": {"tol": 1e-3}}, "name it with solver="),
        ({"hessian": "identity", "solver": "cg"}, "needs no solver"),
        ({"hessian": "cg", "solver": "lissa"}, "old spelling"),
        ({"solver": "kfac"}, 'solver="kfac" does not apply.*What works'),
        ({"hessian_options": {}, "solver_options": {}}, "old name"),
        ({"damping": "none"}, "damping"),
    ],
)
def test_bad_parameters_fail_before_any_work(data, params, match):
    X, y, _, _ = data
    model = LogisticRegression().fit(X, y)
    ex = InfluenceExplainer(model, **params)
    with pytest.raises(ValueError, match=match):
        ex.fit(X, y)
    assert not hasattr(ex, "n_features_in_")


@pytest.mark.parametrize(
    "old, new",
    [
        ({"hessian": "cg"}, {"hessian": "exact", "solver": "cg"}),
        ({"hessian": "block-diagonal"}, {"solver": "block-diagonal"}),
        ({"hessian": "lissa"}, {"solver": "lissa"}),
        ({"solver": "cg", "hessian_options": {"tol": 1e-4}},
         {"solver": "cg", "solver_options": {"tol": 1e-4}}),
    ],
)  # fmt: skip
def test_old_spellings_warn_and_mean_the_new_ones(data, old, new):
    X, y, X_test, _ = data
    model = LogisticRegression(tol=1e-10).fit(X, y)
    with pytest.warns(FutureWarning, match="deprecated.*use (hessian|solver_options)"):
        before = InfluenceExplainer(model, method="if", random_state=0, **old)
        before.fit(X, y)
    after = InfluenceExplainer(model, method="if", random_state=0, **new).fit(X, y)
    assert (before.hessian_, before.solver_) == (after.hessian_, after.solver_)
    np.testing.assert_array_equal(before.transform(X_test), after.transform(X_test))


def test_fitted_choices_are_recorded(data):
    X, y, X_test, _ = data
    model = LogisticRegression(tol=1e-10).fit(X, y)
    ex = InfluenceExplainer(model).fit(X, y)
    assert (ex.hessian_, ex.solver_, ex.damping_) == ("exact", "cholesky", 0.0)
    assert ex.normaliser_error_ is None  # exact
    # "gauss-newton" is the same matrix for a linear model
    gn = InfluenceExplainer(model, hessian="gauss-newton").fit(X, y)
    np.testing.assert_array_equal(gn.transform(X_test), ex.transform(X_test))
    identity = InfluenceExplainer(model, hessian="identity").fit(X, y)
    assert (identity.hessian_, identity.solver_) == ("identity", None)


def test_separable_data_without_penalty_says_so():
    X, y = make_classification(
        n_samples=40, n_features=4, class_sep=4.0, random_state=1
    )
    model = LogisticRegression(C=np.inf, max_iter=10_000).fit(X, y)
    assert (model.predict(X) == y).all()
    with pytest.warns(UserWarning, match="separable.*finite C"):
        InfluenceExplainer(model, damping=1e-3).fit(X, y)


@pytest.mark.parametrize("solver", ["cg", "lissa"])
def test_iterative_solvers_agree_across_n_jobs_to_their_tolerance(data, solver):
    """Iterative solvers: results differ across n_jobs only by floating-point
    summation order (BLAS threads), amplified by the iterations at most to the
    solver's tolerance: documented as 1e-6 relative at the default settings."""
    X, y, X_test, _ = data
    model = LogisticRegression(tol=1e-10).fit(StandardScaler().fit_transform(X), y)
    Xs = StandardScaler().fit_transform(X)
    options = {"depth": 200} if solver == "lissa" else None
    scores = [
        InfluenceExplainer(
            model,
            method="if",
            solver=solver,
            solver_options=options,
            random_state=0,
            n_jobs=n_jobs,
        )
        .fit(Xs, y)
        .transform(Xs[:5])
        for n_jobs in (1, 2)
    ]
    scale = np.abs(scores[0]).max()
    np.testing.assert_allclose(scores[1], scores[0], rtol=0, atol=1e-6 * scale)

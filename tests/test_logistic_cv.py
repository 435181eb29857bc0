"""LogisticRegressionCV: the refit model is a LogisticRegression at C = C_, so it
is explained exactly as that LogisticRegression (and as the dense reference)."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer

from . import _dense
from ._dense import assert_close

METHODS = ["if", "theta-relatif", "l-relatif"]
# Explicit values of the parameters whose defaults emit FutureWarnings in
# scikit-learn 1.9 (their values here are the current defaults' behaviour).
# scikit-learn 1.9's new defaults, set explicitly (FutureWarnings otherwise);
# only those the installed version knows.
QUIET = {
    key: value
    for key, value in {
        "l1_ratios": (0,),
        "scoring": "neg_log_loss",
        "use_legacy_attributes": True,
    }.items()
    if key in LogisticRegressionCV().get_params()
}
#: scikit-learn >= 1.8 reads the penalty from l1_ratios; older versions need
#: penalty="elasticnet" for l1_ratios to count.
_NEW_PENALTY_API = LogisticRegressionCV().penalty == "deprecated"
_ELASTIC = {} if _NEW_PENALTY_API else {"penalty": "elasticnet"}


def _cv(**kwargs):
    params = {
        "Cs": [0.01, 0.1, 1.0, 10.0],
        "solver": "newton-cg",  # converges in a few steps (fast tests)
        "tol": 1e-12,
        "max_iter": 10_000,
    }
    return LogisticRegressionCV(**{**QUIET, **params, **kwargs})


def _shell(cv):
    """A LogisticRegression with the CV model's parameters and C = C_ (for
    tests/_dense.py)."""
    model = LogisticRegression(
        C=float(np.ravel(cv.C_)[0]),
        fit_intercept=cv.fit_intercept,
        class_weight=cv.class_weight,
        solver=cv.solver,
        intercept_scaling=cv.intercept_scaling,
    )
    model.coef_, model.intercept_, model.classes_ = cv.coef_, cv.intercept_, cv.classes_
    return model


@pytest.mark.parametrize("n_classes", [2, 3])
def test_equals_logistic_regression_refit_at_C_(classification, n_classes):
    """The acceptance check: LogisticRegressionCV explained equals
    LogisticRegression(C=C_) refit on the same data, to 1e-6 relative."""
    X, y, X_test, y_test = classification(n_classes)
    cv = _cv().fit(X, y)
    C = float(np.ravel(cv.C_)[0])
    refit = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    for method in METHODS:
        got = InfluenceExplainer(cv, method=method).fit(X, y)
        ref = InfluenceExplainer(refit, method=method).fit(X, y)
        assert_close(got.transform(X_test), ref.transform(X_test), rtol=1e-6)
        assert_close(
            got.transform(X_test, y_test), ref.transform(X_test, y_test), rtol=1e-6
        )
        assert_close(got.self_influence_, ref.self_influence_, rtol=1e-6)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weights", [None, "sample", "class", "both"])
def test_scores_match_dense_reference(
    classification, n_classes, fit_intercept, weights
):
    X, y, X_test, _ = classification(n_classes, seed=2)
    sw, class_weight = _dense.weights_case(weights, len(y), n_classes, 0.2)
    cv = _cv(fit_intercept=fit_intercept, class_weight=class_weight)
    cv.fit(X, y, sample_weight=sw)
    y_explained = cv.predict(X_test)
    for method in METHODS:
        ex = InfluenceExplainer(cv, method=method).fit(X, y, sample_weight=sw)
        expected, self_influence = _dense.scores(
            _shell(cv), X, y, X_test, y_explained, method, sw
        )
        assert_close(ex.transform(X_test), expected)
        assert_close(ex.self_influence_, self_influence)


def test_balanced_class_weight_counts_sample_weights(classification):
    """scikit-learn's LogisticRegressionCV computes "balanced" weights with the
    sample weights: explained as LogisticRegression with those class weights."""
    X, y, X_test, _ = classification(3, seed=4)
    sw = np.random.RandomState(0).uniform(0.2, 3, len(y))
    cv = _cv(class_weight="balanced").fit(X, y, sample_weight=sw)
    C = float(np.ravel(cv.C_)[0])
    refit = LogisticRegression(
        C=C, class_weight="balanced", tol=1e-12, max_iter=10_000
    ).fit(X, y, sample_weight=sw)
    got = InfluenceExplainer(cv).fit(X, y, sample_weight=sw).transform(X_test)
    ref = InfluenceExplainer(refit).fit(X, y, sample_weight=sw).transform(X_test)
    assert_close(got, ref, rtol=1e-6)


def test_liblinear_penalised_intercept_and_new_attributes(classification):
    """liblinear's intercept is penalised through intercept_scaling; with
    use_legacy_attributes=False, C_ is a float."""
    X, y, X_test, _ = classification(2, seed=5)
    new = {"use_legacy_attributes": False} if "use_legacy_attributes" in QUIET else {}
    cv = _cv(solver="liblinear", intercept_scaling=2.0, **new)
    cv.fit(X, y)
    assert np.ndim(cv.C_) == (0 if new else 1)
    for method in METHODS:
        ex = InfluenceExplainer(cv, method=method).fit(X, y)
        expected, _ = _dense.scores(
            _shell(cv), X, y, X_test, cv.predict(X_test), method
        )
        assert_close(ex.transform(X_test), expected)


def test_pipeline_unfitted_model_and_no_future_warning(classification):
    """An unfitted LogisticRegressionCV (in a pipeline) is fitted by the
    explainer; a model fitted with the warning defaults is explained without
    any FutureWarning from skrelatif."""
    X, y, X_test, _ = classification(3, seed=6)
    pipe = make_pipeline(StandardScaler(), _cv())
    ex = InfluenceExplainer(pipe).fit(X, y)
    fitted = make_pipeline(StandardScaler(), _cv()).fit(X, y)
    assert_close(
        ex.transform(X_test), InfluenceExplainer(fitted).fit(X, y).transform(X_test)
    )

    with warnings.catch_warnings():  # scikit-learn 1.9's, about its defaults
        warnings.simplefilter("ignore", FutureWarning)
        defaults = LogisticRegressionCV(solver="newton-cg").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        scores = InfluenceExplainer(defaults).fit(X, y).transform(X_test)
    assert np.isfinite(scores).all()


@pytest.mark.filterwarnings("ignore::FutureWarning:sklearn")
@pytest.mark.filterwarnings("ignore:l1_ratios parameter is only used")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "params, match",
    [
        ({"refit": False}, "refit=True"),
        ({"l1_ratios": (0.5,), "solver": "saga", **_ELASTIC}, "L1"),
        ({"l1_ratios": (0.0, 1.0), "solver": "saga", **_ELASTIC}, "L1"),
        ({"l1_ratios": (1,), "solver": "saga", **_ELASTIC}, "L1"),
        ({"penalty": "l1", "l1_ratios": None, "solver": "liblinear"}, "L1"),
    ],
)
def test_unsupported_settings_get_clear_errors(classification, params, match):
    X, y, _, _ = classification(2, seed=7)
    cv = _cv(**{"Cs": [1.0], "tol": 1e-4, "max_iter": 100, **params}).fit(X, y)
    with pytest.raises(ValueError, match=match):
        InfluenceExplainer(cv).fit(X, y)


@pytest.mark.filterwarnings("ignore::FutureWarning:sklearn")
def test_l2_through_penalty_or_zero_l1_ratios_is_accepted(classification):
    X, y, X_test, _ = classification(2, seed=8)
    reference = _cv().fit(X, y)
    expected = InfluenceExplainer(reference).fit(X, y).transform(X_test)
    for params in (
        {"penalty": "l2", "l1_ratios": None},
        {"l1_ratios": [0.0, 0.0]},
    ):
        cv = _cv(**params).fit(X, y)
        assert_close(
            InfluenceExplainer(cv).fit(X, y).transform(X_test), expected, rtol=1e-6
        )

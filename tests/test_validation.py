"""Tests of skrelatif.validation: leave-one-out retraining and agreement."""

import warnings

import numpy as np
import pytest
from joblib import parallel_config
from scipy import stats
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils import Bunch

from skrelatif import InfluenceExplainer, NearestNeighborExplainer
from skrelatif.validation import (
    _losses_and_params,
    _projected_norm,
    _retrain,
    _retraining_template,
    actual_change,
    agreement,
    leave_one_out,
)


def _log_loss(model, X, y):
    """Per-example log-loss from predict_proba (independent of the adapters)."""
    proba = model.predict_proba(X)
    return -np.log(proba[np.arange(len(y)), np.searchsorted(model.classes_, y)])


def _theta(model):
    """[W | b], multinomial intercepts centred (the model ignores their mean)."""
    intercept = np.array(model.intercept_, dtype=float)
    if len(intercept) > 1:
        intercept = intercept - intercept.mean()
    return np.column_stack([model.coef_, intercept])


def _hand_loop(make_model, X, y, X_test, y_test, indices, sample_weight=None):
    """Plain refits with np.delete: the ground truth the helper must reproduce."""
    fit_kw = {} if sample_weight is None else {"sample_weight": sample_weight}
    before = make_model().fit(X, y, **fit_kw)
    test_before = _log_loss(before, X_test, y_test)
    train_before = _log_loss(before, X, y)
    test_change, norms, rss = [], [], []
    for i in indices:
        kw = (
            {}
            if sample_weight is None
            else {"sample_weight": np.delete(sample_weight, i)}
        )
        after = make_model().fit(np.delete(X, i, axis=0), np.delete(y, i), **kw)
        test_change.append(_log_loss(after, X_test, y_test) - test_before)
        norms.append(np.linalg.norm(_theta(after) - _theta(before)))
        rss.append(np.sqrt(np.sum((_log_loss(after, X, y) - train_before) ** 2)))
    return np.column_stack(test_change), np.array(norms), np.array(rss), test_before


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X[:, :10])
    return X[:150], y[:150], X[150:156], y[150:156]


def _close(actual, expected, rel=1e-7):
    """Agreement up to the optimisers' tolerance, relative to the values' scale.

    The hand-written loop refits from scratch with another solver (newton-cg,
    tol=1e-14) than the helper (warm-started newton-cg, tol=1e-10); both
    reach the optimum to ~1e-12. (lbfgs stops on its relative-decrease test
    first and would only agree to ~1e-4.)
    """
    np.testing.assert_allclose(
        actual, expected, rtol=rel, atol=rel * np.abs(expected).max()
    )


def test_leave_one_out_matches_hand_written_loop_binary(cancer):
    X, y, X_test, y_test = cancer
    model = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(X, y)
    explainer = InfluenceExplainer(model, method="if").fit(X, y)
    indices = np.array([0, 7, 33, 34, 90, 149])
    loo = leave_one_out(explainer, X_test, y_test, indices)

    def make_model():
        return LogisticRegression(C=1.0, solver="newton-cg", tol=1e-14, max_iter=10_000)

    change, norms, rss, before = _hand_loop(make_model, X, y, X_test, y_test, indices)
    assert loo.test_loss_change.shape == (len(y_test), len(indices))
    _close(loo.test_loss_change, change)
    _close(loo.param_change_norm, norms)
    _close(loo.train_loss_change_rss, rss)
    _close(loo.test_loss, before, rel=1e-7)
    np.testing.assert_array_equal(loo.indices, indices)
    # The given model was converged: the reference is the same model.
    assert loo.reference_param_change < 1e-5
    # Removals really change things (the comparison above is not vacuous).
    assert np.abs(change).max() > 1e-2 and norms.min() > 1e-5


def test_leave_one_out_matches_hand_written_loop_multinomial_pipeline():
    """Pipeline (scaler kept fixed), multinomial, sample and class weights."""
    X, y = load_iris(return_X_y=True)
    rng = np.random.RandomState(0)
    order = rng.permutation(len(y))
    X, y = X[order], y[order]
    X_train, y_train, X_test, y_test = X[:120], y[:120], X[120:125], y[120:125]
    sample_weight = rng.uniform(0.5, 2.0, size=len(y_train))
    class_weight = {0: 1.0, 1: 2.0, 2: 0.5}
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(
            C=2.0, class_weight=class_weight, tol=1e-10, max_iter=10_000
        ),
    ).fit(X_train, y_train, logisticregression__sample_weight=sample_weight)
    explainer = InfluenceExplainer(model, method="if").fit(
        X_train, y_train, sample_weight=sample_weight
    )
    indices = np.array([3, 50, 119])
    loo = leave_one_out(explainer, X_test, y_test, indices)

    scaled = model[0].transform(X_train)

    def make_model():
        return LogisticRegression(
            C=2.0,
            class_weight=class_weight,
            solver="newton-cg",
            tol=1e-14,
            max_iter=10_000,
        )

    change, norms, rss, _ = _hand_loop(
        make_model, scaled, y_train, model[0].transform(X_test), y_test, indices,
        sample_weight=sample_weight,
    )  # fmt: skip
    _close(loo.test_loss_change, change)
    _close(loo.param_change_norm, norms)
    _close(loo.train_loss_change_rss, rss)


def test_leave_one_out_default_labels_are_predictions(cancer):
    X, y, X_test, _ = cancer
    model = LogisticRegression(tol=1e-10).fit(X, y)
    explainer = InfluenceExplainer(model, method="if").fit(X, y)
    default = leave_one_out(explainer, X_test, None, [1, 2])
    given = leave_one_out(explainer, X_test, model.predict(X_test), [1, 2])
    np.testing.assert_array_equal(default.test_loss_change, given.test_loss_change)
    flipped = leave_one_out(explainer, X_test, 1 - model.predict(X_test), [1, 2])
    assert not np.allclose(flipped.test_loss_change, given.test_loss_change)


def test_leave_one_out_independent_of_n_jobs(cancer):
    X, y, X_test, y_test = cancer
    model = LogisticRegression(tol=1e-10).fit(X, y)
    explainer = InfluenceExplainer(model, method="if").fit(X, y)
    indices = np.arange(0, 150, 30)
    one = leave_one_out(explainer, X_test, y_test, indices)
    with parallel_config(backend="threading"):
        two = leave_one_out(explainer, X_test, y_test, indices, n_jobs=2)
    for key in ("test_loss_change", "param_change_norm", "train_loss_change_rss"):
        np.testing.assert_array_equal(one[key], two[key])


def test_leave_one_out_reference_is_retrained(cancer):
    """A loosely converged model is replaced by a tightly converged reference."""
    X, y, X_test, y_test = cancer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loose = LogisticRegression(max_iter=3).fit(X, y)
        explainer = InfluenceExplainer(loose, method="if").fit(X, y)
    tight = LogisticRegression(solver="newton-cg", tol=1e-14).fit(X, y)
    loo = leave_one_out(explainer, X_test, y_test, [0])
    expected = np.linalg.norm(_theta(tight) - _theta(loose))
    assert loo.reference_param_change == pytest.approx(expected, rel=1e-7)
    assert expected > 0.1
    _close(loo.test_loss, _log_loss(tight, X_test, y_test))


def test_leave_one_out_warns_when_refits_do_not_converge(cancer):
    X, y, X_test, y_test = cancer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loose = LogisticRegression(max_iter=2).fit(X, y)
        explainer = InfluenceExplainer(loose, method="if").fit(X, y)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        leave_one_out(explainer, X_test, y_test, [0, 1], max_iter=1)


def test_leave_one_out_frozen_pipeline(cancer):
    """A FrozenEstimator(Pipeline) is retrained through its final step."""
    X, y, X_test, y_test = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-10)).fit(X, y)
    coef = pipe[-1].coef_.copy()
    plain = InfluenceExplainer(pipe, method="if").fit(X, y)
    frozen = InfluenceExplainer(FrozenEstimator(pipe), method="if").fit(X, y)
    a = leave_one_out(plain, X_test, y_test, [3, 4])
    b = leave_one_out(frozen, X_test, y_test, [3, 4])
    np.testing.assert_array_equal(a.test_loss_change, b.test_loss_change)
    # The user's model is never modified.
    np.testing.assert_array_equal(pipe[-1].coef_, coef)
    assert pipe[-1].warm_start is False and pipe[-1].tol == 1e-10


def test_models_without_warm_start_or_parameters():
    """Kernel SVMs: retrained from scratch, hinge loss, no parameter vector."""
    from skrelatif._adapters.svm import SVMAdapter

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X[:80, :5])
    y = y[:80]
    svc = SVC(kernel="rbf", C=1.0).fit(X, y)
    template, warm = _retraining_template(SVMAdapter(svc), 0, 1e-10, 10_000)
    assert not warm and template.tol == 1e-10 and template.max_iter == -1
    losses, params = _losses_and_params(SVMAdapter, svc, X, y)
    margin = np.where(y == 1, 1.0, -1.0) * svc.decision_function(X)
    np.testing.assert_allclose(losses, np.maximum(0.0, 1.0 - margin))
    assert params is None
    assert np.isnan(_projected_norm(None, None))
    refit, converged = _retrain(SVMAdapter, template, warm, svc, X, y, None, 5)
    expected = SVC(kernel="rbf", C=1.0, tol=1e-10).fit(
        np.delete(X, 5, 0), np.delete(y, 5)
    )
    np.testing.assert_allclose(
        refit.decision_function(X), expected.decision_function(X), rtol=1e-8
    )
    assert converged


def test_leave_one_out_multiclass_svc_fails_before_refitting(monkeypatch):
    """The multiclass SVC's loss is not tracked: a clear error, and no refit."""
    import skrelatif.validation

    X, y = load_digits(n_class=3, return_X_y=True)
    model = SVC().fit(X[:90], y[:90])
    explainer = InfluenceExplainer(model).fit(X[:90], y[:90])

    def refit(*args, **kwargs):
        raise AssertionError("refitted before checking the loss")

    monkeypatch.setattr(skrelatif.validation, "_retrain", refit)
    with pytest.raises(ValueError, match="binary SVMs only"):
        leave_one_out(explainer, X[90:92], None, [0, 1])


@pytest.mark.parametrize(
    "indices, match",
    [
        ([], "at least one group"),
        (np.zeros((1, 1, 2), dtype=int), "1-d"),
        ([[0, 1], []], "non-empty"),
        ([0.0, 1.0], "integers"),
        ([-1], "between 0"),
        ([150], "between 0"),
    ],
)
def test_leave_one_out_bad_indices(cancer, indices, match):
    X, y, X_test, y_test = cancer
    explainer = InfluenceExplainer(LogisticRegression()).fit(X, y)
    with pytest.raises(ValueError, match=match):
        leave_one_out(explainer, X_test, y_test, indices)


def test_leave_one_out_bad_input(cancer):
    X, y, X_test, y_test = cancer
    with pytest.raises(TypeError, match="InfluenceExplainer"):
        leave_one_out(NearestNeighborExplainer(LogisticRegression()).fit(X, y), X_test,
                      y_test, [0])  # fmt: skip
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        leave_one_out(InfluenceExplainer(LogisticRegression()), X_test, y_test, [0])
    explainer = InfluenceExplainer(LogisticRegression()).fit(X, y)
    with pytest.raises(ValueError, match="tol"):
        leave_one_out(explainer, X_test, y_test, [0], tol=0)
    with pytest.raises(ValueError, match="max_iter"):
        leave_one_out(explainer, X_test, y_test, [0], max_iter=0)
    with pytest.raises(ValueError, match="labels the model does not know"):
        leave_one_out(explainer, X_test, np.full(len(y_test), 7), [0])
    # The only example of its class cannot be removed.
    y_one = y.copy()
    y_one[y_one == 1] = 2
    y_one[5] = 1
    lonely = InfluenceExplainer(LogisticRegression(max_iter=1000)).fit(X, y_one)
    with pytest.raises(ValueError, match="only examples of their class"):
        leave_one_out(lonely, X_test, None, [4, 5])


def test_if_scores_agree_with_leave_one_out():
    """The spec's calibration claim: "if" scores vs actual retraining, r >= 0.99.

    Standardised breast cancer, a well-conditioned and tightly converged model
    (C=0.1), 40 random removals and 8 test points. This checks the core.
    """
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X_train, y_train, X_test, y_test = X[:400], y[:400], X[400:408], y[400:408]
    model = LogisticRegression(C=0.1, tol=1e-10).fit(X_train, y_train)
    indices = np.random.RandomState(0).choice(400, size=40, replace=False)
    loo = None
    for method in ("if", "theta-relatif", "l-relatif"):
        explainer = InfluenceExplainer(model, method=method).fit(X_train, y_train)
        if loo is None:
            loo = leave_one_out(explainer, X_test, y_test, indices)
        predicted = explainer.transform(X_test, y_test)[:, indices]
        a = agreement(predicted, actual_change(loo, method))
        if method == "if":
            assert a.pearson >= 0.99, a
            assert 0.9 < a.slope < 1.2, a  # the scale is right, not just the sign
        elif method == "theta-relatif":
            assert a.pearson >= 0.99, a
        else:  # l-RelatIF's normaliser is only proportional to the actual one
            assert a.pearson >= 0.95, a


# -- agreement -----------------------------------------------------------------------
def test_agreement_exact_line():
    x = np.array([-2.0, 0.5, 1.0, 3.0, 7.0])
    a = agreement(x, 2 * x + 1)
    assert a.pearson == pytest.approx(1.0)
    assert a.spearman == pytest.approx(1.0)
    assert a.slope == pytest.approx(2.0)
    assert a.intercept == pytest.approx(1.0)
    assert a.n == 5
    b = agreement(x, -0.5 * x)
    assert b.pearson == pytest.approx(-1.0) and b.spearman == pytest.approx(-1.0)
    assert b.slope == pytest.approx(-0.5)


def test_agreement_matches_scipy_on_random_data():
    rng = np.random.RandomState(42)
    predicted = rng.normal(size=(4, 25))
    actual = predicted**3 + rng.normal(scale=0.5, size=(4, 25))
    a = agreement(predicted, actual)
    p, q = predicted.ravel(), actual.ravel()
    # correlations are at most 1 in size: an absolute term of 1e-12
    r = stats.pearsonr(p, q).statistic
    assert a.pearson == pytest.approx(r, rel=1e-12, abs=1e-12)
    rho = stats.spearmanr(p, q).statistic
    assert a.spearman == pytest.approx(rho, rel=1e-12, abs=1e-12)
    slope, intercept = np.polyfit(p, q, 1)
    assert a.slope == pytest.approx(slope, rel=1e-10, abs=1e-12 * abs(slope))
    assert a.intercept == pytest.approx(intercept, rel=1e-8)
    assert a.pearson < 0.99  # a monotone but non-linear relation...
    assert agreement(p, p**3).spearman == pytest.approx(1.0)  # ...ranks are exact


def test_agreement_ties_and_degenerate_input():
    # Known Spearman value with ties: ranks [1.5, 1.5, 3, 4] vs [1, 2, 3, 4].
    a = agreement([1, 1, 2, 3], [1, 2, 3, 4])
    expected = np.corrcoef([1.5, 1.5, 3, 4], [1, 2, 3, 4])[0, 1]
    assert a.spearman == pytest.approx(expected)
    constant = agreement([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])
    assert np.isnan(constant.pearson) and np.isnan(constant.slope)
    assert np.isnan(agreement([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]).pearson)
    assert agreement([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]).slope == 0.0
    with pytest.raises(ValueError, match="same shape"):
        agreement([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="finite"):
        agreement([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2"):
        agreement([1.0], [2.0])


def test_actual_change_per_method():
    result = Bunch(
        test_loss_change=np.array([[2.0, -3.0, 1.0]]),
        param_change_norm=np.array([4.0, 1.5, 0.0]),
        train_loss_change_rss=np.array([0.5, 3.0, 2.0]),
    )
    np.testing.assert_array_equal(actual_change(result, "if"), [[2.0, -3.0, 1.0]])
    np.testing.assert_array_equal(
        actual_change(result, "theta-relatif"), [[0.5, -2.0, np.nan]]
    )
    np.testing.assert_array_equal(
        actual_change(result, "l-relatif"), [[4.0, -1.0, 0.5]]
    )
    with pytest.raises(ValueError, match="method"):
        actual_change(result, "nearest")

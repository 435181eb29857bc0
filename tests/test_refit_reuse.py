"""Reuse of retrainings across calls, the progress line and the new
parameters' validation (issue 20) of skrelatif.validation."""

import copy

import joblib
import numpy as np
import pytest
from joblib import parallel_config
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.fixes import parse_version

from skrelatif import InfluenceExplainer
from skrelatif._refit_cache import REFITS, RefitCache
from skrelatif.validation import (
    leave_one_out,
    linear_datamodeling_score,
    removal_curve,
)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X[:, :8])
    model = LogisticRegression(C=0.1, tol=1e-10, max_iter=10_000)
    model.fit(X[:120], y[:120])
    return model, X[:120], y[:120], X[120:126], y[120:126]


@pytest.fixture
def count_fits(monkeypatch):
    """Counts LogisticRegression.fit calls (the refits validation makes)."""
    calls = []
    fit = LogisticRegression.fit

    def counted(self, *args, **kwargs):
        calls.append(len(args[0]))
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", counted)
    return calls


def _subsets(n_subsets, y, seed=0):
    subsets = np.random.default_rng(seed).random((n_subsets, len(y))) < 0.5
    subsets[:, [np.argmax(y == 0), np.argmax(y == 1)]] = True  # both classes
    return subsets


def test_lds_second_method_reuses_the_refits(cancer, count_fits):
    model, X, y, X_test, y_test = cancer
    subsets = _subsets(6, y)
    first = linear_datamodeling_score(
        InfluenceExplainer(model, method="if").fit(X, y), X_test, y_test,
        subsets=subsets,
    )  # fmt: skip
    assert len(count_fits) == 6  # one refit per subset
    second = linear_datamodeling_score(
        InfluenceExplainer(model, method="newton").fit(X, y), X_test, y_test,
        subsets=subsets,
    )  # fmt: skip
    assert len(count_fits) == 6  # none for the second method
    np.testing.assert_array_equal(second.actual, first.actual)
    assert not np.array_equal(second.predicted, first.predicted)

    # the reused outputs are those of real refits: sklearn's, independently
    keep = subsets[2]
    refit = LogisticRegression(C=0.1, solver="newton-cg", tol=1e-12)
    refit.fit(X[keep], y[keep])
    proba = refit.predict_proba(X_test)[np.arange(len(y_test)), y_test]
    np.testing.assert_allclose(second.actual[2], -np.log(proba), rtol=1e-6, atol=1e-9)

    # cache=False retrains (and reads nothing)
    linear_datamodeling_score(
        InfluenceExplainer(model, method="if").fit(X, y), X_test, y_test,
        subsets=subsets, cache=False,
    )  # fmt: skip
    assert len(count_fits) == 6 + 1 + 6  # (the check above fitted once)


def test_reuse_needs_everything_equal(cancer, count_fits):
    """Another subset, test point, label or training set: a new refit."""
    model, X, y, X_test, y_test = cancer
    explainer = InfluenceExplainer(model, method="if").fit(X, y)
    subsets = _subsets(3, y)
    linear_datamodeling_score(explainer, X_test, y_test, subsets=subsets)
    assert len(count_fits) == 3
    changed = subsets.copy()
    changed[1, 50] = ~changed[1, 50]
    linear_datamodeling_score(explainer, X_test, y_test, subsets=changed)
    assert len(count_fits) == 4  # only the changed subset
    linear_datamodeling_score(explainer, X_test[:5], y_test[:5], subsets=subsets)
    assert len(count_fits) == 7
    linear_datamodeling_score(explainer, X_test, 1 - y_test, subsets=subsets)
    assert len(count_fits) == 10
    other = copy.deepcopy(model)
    other.coef_ = other.coef_ * 1.0001  # another fitted state
    explainer_other = InfluenceExplainer(other, method="if").fit(X, y)
    linear_datamodeling_score(explainer_other, X_test, y_test, subsets=subsets)
    assert len(count_fits) == 13


def test_removal_curve_second_method_reuses_reference_and_baseline(cancer, count_fits):
    model, X, y, X_test, y_test = cancer
    kwargs = {"fractions": (0.05, 0.1), "random_state": 0}
    a = removal_curve(
        InfluenceExplainer(model, method="if").fit(X, y), X_test, y_test, **kwargs
    )
    n_test = len(X_test)
    assert len(count_fits) == 1 + 2 * n_test * 2
    b = removal_curve(
        InfluenceExplainer(model, method="l-relatif").fit(X, y), X_test, y_test,
        **kwargs,
    )  # fmt: skip
    # the reference and the random sets are the same: only proponent sets
    # that differ are refit
    new = len(count_fits) - (1 + 4 * n_test)
    differ = sum(
        not np.array_equal(a.removed[t][j], b.removed[t][j])
        for t in range(n_test)
        for j in range(2)
    )
    assert new == differ and differ > 0
    np.testing.assert_array_equal(a.random_change, b.random_change)


def test_leave_one_out_refits_are_reused(cancer, count_fits):
    model, X, y, X_test, y_test = cancer
    explainer = InfluenceExplainer(model, method="if").fit(X, y)
    first = leave_one_out(explainer, X_test, y_test, [3, 4, 9], solver="refit")
    assert len(count_fits) == 4  # the reference and three removals
    again = leave_one_out(explainer, X_test, y_test, [4, 9, 20], solver="refit")
    # warm refits start from the reference: it is refit once more, then
    # only the new removal
    assert len(count_fits) == 6
    np.testing.assert_array_equal(
        again.test_loss_change[:, :2], first.test_loss_change[:, 1:]
    )
    scratch = leave_one_out(explainer, X_test, y_test, [3, 4], retraining="scratch")
    assert len(count_fits) == 9
    leave_one_out(explainer, X_test, y_test, [4, 3], retraining="scratch")
    assert len(count_fits) == 9  # all reused, the reference's summary too
    np.testing.assert_allclose(
        scratch.test_loss_change, first.test_loss_change[:, :2], rtol=1e-6,
        atol=1e-9 * np.abs(first.test_loss_change).max(),
    )  # fmt: skip


def test_cache_is_bounded_and_least_recently_used():
    cache = RefitCache(max_bytes=3 * (np.zeros(10).nbytes + 112))
    for key in "abc":
        cache.put(key, np.zeros(10))
    assert len(cache) == 3
    assert list(cache.get_many(["a"])) == [0]  # "a" is now the most recent
    cache.put("d", np.zeros(10))
    assert sorted(cache.get_many(["a", "b", "c", "d"])) == [0, 2, 3]  # "b" went
    cache.put("huge", np.zeros(10_000))  # larger than the bound: not kept
    assert len(cache) == 3
    cache.clear()
    assert len(cache) == 0


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_verbose_reports_progress_on_stderr(cancer, capsys, n_jobs):
    model, X, y, X_test, y_test = cancer
    explainer = InfluenceExplainer(model, method="if").fit(X, y)
    subsets = _subsets(5, y)
    with parallel_config(backend="threading"):
        linear_datamodeling_score(
            explainer, X_test, y_test, subsets=subsets, verbose=1, n_jobs=n_jobs
        )
    out, err = capsys.readouterr()
    assert out == ""
    frames = [f for f in err.split("\r") if f.strip()]
    assert frames[0].startswith("linear_datamodeling_score: [")
    assert "0/5 retrainings" in frames[0]
    assert "5/5 retrainings" in frames[-1] and err.endswith("\n")
    counts = [int(f.split("] ")[1].split("/")[0]) for f in frames]
    assert counts == sorted(counts)
    # each refit counted as it finishes (joblib >= 1.4 streams them; before,
    # the count comes at the end)
    streaming = parse_version(joblib.__version__).release >= (1, 4)
    assert len(set(counts)) == (6 if streaming else 2)
    # reused refits are reported as such
    linear_datamodeling_score(explainer, X_test, y_test, subsets=subsets, verbose=1)
    assert "5/5 retrainings (5 reused)" in capsys.readouterr().err


def test_verbose_zero_prints_nothing(cancer, capsys):
    model, X, y, X_test, y_test = cancer
    explainer = InfluenceExplainer(model, method="if").fit(X, y)
    linear_datamodeling_score(explainer, X_test, y_test, subsets=_subsets(3, y))
    removal_curve(explainer, X_test[:2], y_test[:2], fractions=(0.05,))
    leave_one_out(explainer, X_test, y_test, [1, 2])
    leave_one_out(explainer, X_test, y_test, [1, 2], solver="refit")
    assert capsys.readouterr() == ("", "")
    leave_one_out(explainer, X_test, y_test, [1, 2], verbose=True)  # Newton
    assert "2/2 retrainings" in capsys.readouterr().err


def test_progress_without_a_generator_backend(cancer, capsys):
    """A backend that cannot return a generator: the count comes at the end."""
    model, X, y, X_test, y_test = cancer
    explainer = InfluenceExplainer(model, method="if").fit(X, y)
    subsets = _subsets(3, y)
    one = linear_datamodeling_score(explainer, X_test, y_test, subsets=subsets)
    with parallel_config(backend="multiprocessing", n_jobs=2):
        two = linear_datamodeling_score(
            explainer, X_test, y_test, subsets=subsets, verbose=1, cache=False
        )
    err = capsys.readouterr().err
    assert "0/3 retrainings" in err and "3/3 retrainings" in err
    np.testing.assert_array_equal(one.actual, two.actual)


@pytest.mark.parametrize(
    ("function", "kwargs", "match"),
    [
        (leave_one_out, {"retraining": "cold"}, "retraining"),
        (linear_datamodeling_score, {"retraining": "cold"}, "retraining"),
        (removal_curve, {"retraining": None}, "retraining"),
        (leave_one_out, {"verbose": -1}, "verbose"),
        (linear_datamodeling_score, {"verbose": "yes"}, "verbose"),
        (removal_curve, {"verbose": 1.5}, "verbose"),
        (leave_one_out, {"cache": "yes"}, "cache"),
        (linear_datamodeling_score, {"cache": 2}, "cache"),
        (removal_curve, {"cache": None}, "cache"),
        (leave_one_out, {"retraining": "scratch", "solver": "newton"}, "'refit'"),
        (leave_one_out, {"retraining": "proximal-bregman", "solver": "refit"}, "auto"),
    ],
)
def test_bad_new_parameters_change_nothing(cancer, count_fits, function, kwargs, match):
    model, X, y, X_test, y_test = cancer
    explainer = InfluenceExplainer(model, method="if").fit(X, y)
    coef, state = model.coef_.copy(), set(explainer.__dict__)
    n_cached = len(REFITS)
    extra = {"indices": [0, 1]} if function is leave_one_out else {}
    with pytest.raises(ValueError, match=match):
        function(explainer, X_test, y_test, **extra, **kwargs)
    assert count_fits == [] and len(REFITS) == n_cached
    np.testing.assert_array_equal(model.coef_, coef)
    assert set(explainer.__dict__) == state


def test_proximal_bregman_refuses_models_without_parameters(count_fits):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X[:80, :5])
    svc = SVC(kernel="rbf").fit(X, y[:80])
    explainer = InfluenceExplainer(svc).fit(X, y[:80])
    for function, extra in (
        (leave_one_out, {"indices": [0]}),
        (linear_datamodeling_score, {"n_subsets": 3}),
        (removal_curve, {}),
    ):
        with pytest.raises(ValueError, match="sum over its training examples"):
            function(explainer, X[:2], y[:2], retraining="proximal-bregman", **extra)

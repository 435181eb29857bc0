"""How work is dispatched to joblib (issue 13, point 5): no joblib machinery for
one job, and about ``n_jobs`` tasks per pass over the training set."""

import collections

import joblib
import numpy as np
import pytest
from sklearn import config_context
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info, threadpool_limits

import skrelatif._utils
from skrelatif import InfluenceExplainer
from skrelatif._adapters import find_adapter
from skrelatif._adapters._linear_curvature import LinearHessian
from skrelatif._solvers import CholeskyInverse, ConjugateGradientInverse

from ._dense import fitted_state

#: 300 training examples, 3 classes, 6 features (21 parameters).
_SHAPE = dict(n_samples=340, n_features=6, n_train=300, flip_y=0.05)
#: MiB: passes over the 300 training examples in several chunks, for "if"
#: (3 right-hand sides: 8 chunks) and "l-relatif" (its normalisers: 17 chunks).
_SMALL_MEMORY = {"if": 0.01, "l-relatif": 0.2}


@pytest.fixture
def problem(classification):
    X, y, X_test, _ = classification(3, seed=3, **_SHAPE)
    return LogisticRegression(C=0.5, tol=1e-10).fit(X, y), X, y, X_test


@pytest.fixture
def counts(monkeypatch):
    """Tasks given to joblib (``delayed`` calls, by function), passes over the
    training set (Hessian products and diagonals), and CG iterations."""
    counts = collections.Counter()
    delayed = skrelatif._utils.delayed

    def counting_delayed(function):
        counts["tasks"] += 1
        return delayed(function)

    monkeypatch.setattr(skrelatif._utils, "delayed", counting_delayed)
    for name in ("_matvec", "matmat", "diagonal"):
        original = getattr(LinearHessian, name)

        def counting(self, *args, _original=original, **kwargs):
            counts["passes"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(LinearHessian, name, counting)
    solve = ConjugateGradientInverse.solve

    def counting_solve(self, G):
        result = solve(self, G)
        counts["cg_iterations"] += self.n_iter_
        counts["cg_solves"] += 1
        return result

    monkeypatch.setattr(ConjugateGradientInverse, "solve", counting_solve)
    return counts


@pytest.mark.parametrize("method", ["if", "l-relatif"])
def test_cg_fit_explain_is_about_n_jobs_tasks_per_iteration(problem, counts, method):
    model, X, y, X_test = problem
    with (
        config_context(working_memory=_SMALL_MEMORY[method]),
        joblib.parallel_config(backend="threading"),
    ):
        ex = InfluenceExplainer(model, method=method, solver="cg", n_jobs=2)
        ex.fit(X, y)
        ex.explain(X_test[:3], k=3)
    assert counts["cg_iterations"] > 10
    # one pass per CG iteration and one per solve (the check of the achieved
    # residual), plus the diagonal (the preconditioner)
    passes = counts["cg_iterations"] + counts["cg_solves"] + 1
    assert counts["passes"] == passes
    # each pass is at most 2 tasks; scoring 3 test points is a few more (one
    # per working_memory chunk of training examples: 5 for "if")
    assert counts["tasks"] <= 2 * passes + 5


@pytest.mark.parametrize("n_rhs", [2, 40])
def test_cg_tasks_do_not_grow_with_the_right_hand_sides(problem, counts, n_rhs):
    model, X, y, X_test = problem
    with (
        config_context(working_memory=_SMALL_MEMORY["if"]),
        joblib.parallel_config(backend="threading"),
    ):
        ex = InfluenceExplainer(model, method="if", solver="cg", n_jobs=2).fit(X, y)
        G = fitted_state(ex).test_gradients(
            X_test[:n_rhs], model.predict(X_test[:n_rhs])
        )
        counts.clear()
        fitted_state(ex).solver_.solve(G)
    assert counts["cg_solves"] == 1 and counts["cg_iterations"] > 10
    assert counts["tasks"] <= 2 * (counts["cg_iterations"] + 1)


@pytest.mark.parametrize("solver", ["cg", "cholesky", "lissa", "block-diagonal"])
def test_one_job_never_creates_a_joblib_parallel(problem, monkeypatch, solver):
    model, X, y, X_test = problem

    def refuse(self, *args, **kwargs):
        raise AssertionError("joblib.Parallel created with one job")

    monkeypatch.setattr(joblib.Parallel, "__init__", refuse)
    options = {"depth": 20, "batch_size": 50} if solver == "lissa" else None
    for method in ["if", "l-relatif"]:
        with config_context(working_memory=_SMALL_MEMORY["l-relatif"]):
            ex = InfluenceExplainer(
                model,
                method=method,
                solver=solver,
                solver_options=options,
                random_state=0,
            ).fit(X, y)
            ex.transform(X_test[:4])
            ex.explain(X_test[:4], k=2)
            assert ex.self_influence_.shape == (len(X),)


@pytest.mark.parametrize("method", ["if", "l-relatif"])
def test_grouping_does_not_change_a_bit(problem, method):
    """In one process (the threading backend: the same BLAS), any n_jobs gives
    the same Hessian products and scores, bit for bit: the chunks' partial
    sums are added in one fixed order."""
    model, X, y, X_test = problem
    V = np.random.RandomState(0).standard_normal((5, 21))
    results = []
    with (
        config_context(working_memory=_SMALL_MEMORY[method]),
        joblib.parallel_config(backend="threading"),
    ):
        for n_jobs in [None, 3]:
            ex = InfluenceExplainer(model, method=method, solver="cg", n_jobs=n_jobs)
            ex.fit(X, y)
            operator = fitted_state(ex).solver_.operator_
            results.append(
                (operator.matvec(V), operator.diagonal(), ex.transform(X_test[:5]))
            )
    for result in results[1:]:
        for got, expected in zip(result, results[0]):
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("n_chunks", [1, 2, 3, 5, 8, 13, 64])
@pytest.mark.parametrize("n_jobs", [1, 2, 3, 4])
def test_parallel_sum_adds_in_a_fixed_order(n_chunks, n_jobs):
    from skrelatif._utils import parallel_sum

    rng = np.random.RandomState(n_chunks)
    chunks = [slice(i, i + 1) for i in range(n_chunks)]
    terms = rng.standard_normal((n_chunks, 4)) * 10.0 ** rng.randint(
        -9, 9, (n_chunks, 1)
    )
    with joblib.parallel_config(backend="threading"):
        total = parallel_sum(_row, (terms,), (), chunks, n_jobs=n_jobs)
    reference = parallel_sum(_row, (terms,), (), chunks, n_jobs=1)
    np.testing.assert_array_equal(total, reference)
    scale = np.abs(terms).sum(axis=0)
    assert np.all(np.abs(total - terms.sum(axis=0)) <= 1e-14 * scale)


def _row(terms):
    return terms[0].copy()


def test_exact_fit_is_about_n_jobs_tasks_per_pass(problem, counts):
    """The dense Hessian and the RelatIF normalisers: each pass over the
    training set (8 and 10 chunks here) is 2 tasks with n_jobs=2."""
    model, X, y, _ = problem
    with (
        config_context(working_memory=0.01),
        joblib.parallel_config(backend="threading"),
    ):
        InfluenceExplainer(model, method="l-relatif", n_jobs=2).fit(X, y)
    assert counts["tasks"] <= 4


def _blas_threads():
    return {
        lib["filepath"]: lib["num_threads"]
        for lib in threadpool_info()
        if lib["user_api"] == "blas"
    }


@pytest.mark.parametrize("threshold, small", [(None, True), (0.0, False)])
def test_small_problems_run_on_one_blas_thread(problem, monkeypatch, threshold, small):
    """Under ``ONE_THREAD_FLOPS`` the Hessian, the scores and the normalisers
    of a lazy ``self_influence_`` run on one BLAS thread; above it, and after
    each call, the caller's limits hold."""
    model, X, y, X_test = problem
    if threshold is not None:
        monkeypatch.setattr(skrelatif._utils, "ONE_THREAD_FLOPS", threshold)
    seen = collections.defaultdict(list)
    for name, owner, attribute in [
        ("hessian", LinearHessian, "dense"),
        ("scores", find_adapter(model), "gradient_dots"),
        ("normalisers", CholeskyInverse, "quad_norms"),
    ]:
        original = getattr(owner, attribute)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            seen[_name].append(_blas_threads())
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(owner, attribute, spy)
    with threadpool_limits(limits=2, user_api="blas"):
        outside = _blas_threads()
        ex = InfluenceExplainer(model, method="if").fit(X, y)
        assert "normalisers" not in seen  # "if": on first access, below
        ex.transform(X_test)
        ex.explain(X_test, k=3)
        assert len(ex.self_influence_) == len(y)
        assert _blas_threads() == outside
    assert sorted(seen) == ["hessian", "normalisers", "scores"]
    expected = {path: 1 for path in outside} if small else outside
    assert all(threads == expected for calls in seen.values() for threads in calls)

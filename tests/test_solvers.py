"""Hessian options, float32, sparse input and parallel backends (issue: scale)."""

import numpy as np
import pytest
from scipy import sparse
from scipy.stats import pearsonr
from sklearn import config_context
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import skrelatif._solvers
from skrelatif import InfluenceExplainer

from . import _dense
from ._dense import assert_close, fitted_state

METHODS = ["if", "theta-relatif", "l-relatif"]
#: The problem size of these tests (see ``classification`` in conftest.py).
_SHAPE = dict(n_samples=130, n_features=6, n_train=100, flip_y=0.05)


@pytest.mark.parametrize("method", METHODS)
def test_block_diagonal_is_exact_on_the_dense_blocks(classification, method):
    X, y, X_test, _ = classification(3, **_SHAPE)
    sw = np.random.RandomState(0).uniform(0.5, 2, len(y))
    model = LogisticRegression(C=0.5, tol=1e-10).fit(X, y, sample_weight=sw)
    ex = InfluenceExplainer(model, method=method, solver="block-diagonal", damping=0.1)
    ex.fit(X, y, sample_weight=sw)
    H = _dense.hessian(model, X, y, sw, damping=0.1)
    d = X.shape[1] + 1
    blocks = np.zeros_like(H)
    for k in range(3):
        blocks[k * d : (k + 1) * d, k * d : (k + 1) * d] = H[
            k * d : (k + 1) * d, k * d : (k + 1) * d
        ]
    G = _dense.gradients(model, X, y)
    Gt = _dense.gradients(model, X_test, model.predict(X_test))
    solved = np.linalg.solve(blocks, G.T).T
    cross = Gt @ solved.T
    quad = np.einsum("ij,ij->i", solved, G)
    expected = {
        "if": model.C * sw * cross,
        "theta-relatif": cross / np.linalg.norm(solved, axis=1),
        "l-relatif": cross / np.sqrt(quad),
    }[method]
    assert_close(ex.transform(X_test), expected, 1e-8)
    assert_close(ex.self_influence_, model.C * sw * quad, 1e-8)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_cg_matches_exact(classification, n_classes, method):
    X, y, X_test, _ = classification(n_classes, seed=1, **_SHAPE)
    model = LogisticRegression(C=2.0, tol=1e-10).fit(X, y)
    exact = InfluenceExplainer(model, method=method).fit(X, y)
    cg = InfluenceExplainer(
        model, method=method, solver="cg", solver_options={"tol": 1e-10}
    ).fit(X, y)
    assert_close(cg.transform(X_test), exact.transform(X_test), 1e-7)
    assert_close(cg.self_influence_, exact.self_influence_, 1e-7)


def test_cg_warns_when_not_converged(classification):
    X, y, X_test, _ = classification(3, seed=1, **_SHAPE)
    model = LogisticRegression(C=100.0, tol=1e-10).fit(X, y)
    ex = InfluenceExplainer(
        model, method="if", solver="cg", solver_options={"max_iter": 2}
    ).fit(X, y)
    with pytest.warns(UserWarning, match="Conjugate gradients did not reach"):
        ex.transform(X_test)


def test_lissa_approximates_exact_and_is_seeded(classification):
    X, y, X_test, _ = classification(2, seed=2, **{**_SHAPE, "n_samples": 400})
    X, y = X[:300] if len(X) > 300 else X, y
    model = LogisticRegression(C=0.05, tol=1e-10).fit(X, y)
    exact = InfluenceExplainer(model, method="if").fit(X, y).transform(X_test)
    options = {"depth": 300, "repeats": 2, "batch_size": 50}
    lissa = InfluenceExplainer(
        model, method="if", solver="lissa", solver_options=options, random_state=0
    ).fit(X, y)
    estimate = lissa.transform(X_test)
    assert pearsonr(estimate.ravel(), exact.ravel())[0] > 0.99
    again = InfluenceExplainer(
        model, method="if", solver="lissa", solver_options=options, random_state=0
    ).fit(X, y)
    np.testing.assert_array_equal(again.transform(X_test), estimate)
    other = InfluenceExplainer(
        model, method="if", solver="lissa", solver_options=options, random_state=1
    ).fit(X, y)
    assert not np.array_equal(other.transform(X_test), estimate)


@pytest.mark.slow
def test_float32_is_used_when_accurate_and_agrees_with_float64():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X = X[:, X.std(axis=0) > 0]
    model = LogisticRegression(C=0.05, tol=1e-10, max_iter=1000).fit(X[:1200], y[:1200])
    X32 = X.astype(np.float32)
    for method in METHODS:
        ex64 = InfluenceExplainer(model, method=method).fit(X[:1200], y[:1200])
        ex32 = InfluenceExplainer(model, method=method).fit(X32[:1200], y[:1200])
        assert fitted_state(ex32).solver_.compute_dtype == np.float32
        assert (
            fitted_state(ex32).X_.dtype == np.float32
        )  # training data kept in float32
        assert_close(ex32.transform(X32[1200:1260]), ex64.transform(X[1200:1260]), 1e-3)
        assert_close(ex32.self_influence_, ex64.self_influence_, 1e-3)


@pytest.mark.slow
def test_float32_falls_back_to_float64_when_ill_conditioned():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X = X[:, X.std(axis=0) > 0]
    model = LogisticRegression(C=100.0, tol=1e-10, max_iter=10_000).fit(
        X[:1200], y[:1200]
    )
    ex32 = InfluenceExplainer(model).fit(X[:1200].astype(np.float32), y[:1200])
    assert fitted_state(ex32).solver_.compute_dtype == np.float64
    ex64 = InfluenceExplainer(model).fit(X[:1200], y[:1200])
    assert_close(
        ex32.transform(X[1200:1230].astype(np.float32)),
        ex64.transform(X[1200:1230]),
        1e-5,
    )


def test_exact_hessian_too_large_says_how_much(classification, monkeypatch):
    X, y, _, _ = classification(3, **_SHAPE)
    model = LogisticRegression().fit(X, y)
    monkeypatch.setattr(skrelatif._solvers._direct, "available_memory", lambda: 1000)
    with pytest.raises(MemoryError, match=r"21 x 21 matrix \(0\.0 GiB\).*cg"):
        InfluenceExplainer(model, solver="cholesky").fit(X, y)
    # The other options need no dense Hessian.
    InfluenceExplainer(model, solver="cg").fit(X, y)


def test_unknown_hessian_options_are_rejected(classification):
    X, y, _, _ = classification(2, **_SHAPE)
    model = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match=r"Unknown solver_options \['depth'\]"):
        InfluenceExplainer(model, solver="cg", solver_options={"depth": 3}).fit(X, y)


def test_verbose_reports_progress(classification, capsys):
    X, y, X_test, _ = classification(3, **_SHAPE)
    model = LogisticRegression().fit(X, y)
    ex = InfluenceExplainer(model, verbose=1).fit(X, y)
    ex.explain(X_test)
    out = capsys.readouterr().out
    assert "solver='cholesky': about" in out and "<- chosen" in out
    assert "hessian='exact', solver='cholesky', damping=0: ready (21 parameters" in out
    assert "normalisers of 100 examples" in out
    assert "explained 30 of 30 test points" in out
    InfluenceExplainer(model).fit(X, y).explain(X_test)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "options",
    [{"solver": "cholesky"}, {"solver": "cg"}, {"solver": "block-diagonal"},
     {"hessian": "identity"}],
)  # fmt: skip
def test_sparse_input_is_never_densified_whole(monkeypatch, options):
    rng = np.random.RandomState(0)
    X = sparse.random(200, 50, density=0.1, format="csr", random_state=rng)
    y = rng.randint(0, 3, 200)
    model = LogisticRegression(C=0.5, tol=1e-10).fit(X, y)
    dense_scores = (
        InfluenceExplainer(model, **options)
        .fit(X.toarray(), y)
        .transform(X[:7].toarray())
    )
    densified = []
    original = sparse.csr_matrix.toarray

    def spy(self, *args, **kwargs):
        densified.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sparse.csr_matrix, "toarray", spy)
    with config_context(working_memory=0.05):
        ex = InfluenceExplainer(model, **options).fit(X, y)
        scores = ex.transform(X[:7])
    assert max(densified, default=0) < X.shape[0]
    assert_close(scores, dense_scores, 1e-7)


@pytest.mark.slow
def test_dask_cluster_gives_identical_results(classification):
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_config

    X, y, X_test, _ = classification(3, seed=4, **_SHAPE)
    model = LogisticRegression(tol=1e-10).fit(X, y)
    local = InfluenceExplainer(model, method="theta-relatif").fit(X, y)
    expected, e_local = local.transform(X_test), local.explain(X_test, k=4)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with config_context(working_memory=0.01), parallel_config(backend="dask"):
            remote = InfluenceExplainer(model, method="theta-relatif", n_jobs=-1).fit(
                X, y
            )
            scores = remote.transform(X_test)
            e = remote.explain(X_test, k=4)
        assert client.run(lambda: 1)  # the workers were there
    np.testing.assert_allclose(scores, expected, rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(e.proponents, e_local.proponents)


def test_explain_memory_is_bounded_by_working_memory():
    """explain streams: its peak memory is far below the (n_test, n_train) matrix."""
    import tracemalloc

    rng = np.random.RandomState(0)
    X = rng.normal(size=(20_000, 5))
    y = (X[:, 0] + rng.normal(size=len(X)) > 0).astype(int)
    model = LogisticRegression(tol=1e-10).fit(X, y)
    X_test = rng.normal(size=(500, 5))
    with config_context(working_memory=4):
        ex = InfluenceExplainer(model).fit(X, y)
        tracemalloc.start()
        e = ex.explain(X_test, k=5)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    full_matrix = 500 * 20_000 * 8
    assert peak < full_matrix / 4, (peak, full_matrix)
    np.testing.assert_array_equal(
        e.proponents, np.argsort(-ex.transform(X_test), 1)[:, :5]
    )


# -- solver="auto": the cost model -----------------------------------------------------
def _fake(seconds, bytes_, exact, iterative=False):
    from skrelatif._solvers import Estimate, InverseHessian

    class Fake(InverseHessian):
        def fit(self, operator):  # pragma: no cover - never fitted
            return self

        def solve(self, G):  # pragma: no cover
            return G

        @classmethod
        def estimate(cls, size):
            return Estimate(seconds, bytes_)

    Fake.exact, Fake.iterative = exact, iterative
    return Fake


def _digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X[:600]), y[:600]


def _size():
    from skrelatif._solvers import ProblemSize

    return ProblemSize(
        n_train=100, n_params=10, n_outputs=1, n_solves=100, dense_flops=1.0,
        dense_sparse=False, matvec_flops=1.0, matvec_sparse=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "exact_s, approx_s, chosen",
    [
        (10.0, 8.0, "exact"),  # approximate only 1.25x faster: exact
        (10.0, 5.0, "approx"),  # 2x faster: approximate
        (0.5, 0.01, "exact"),  # small problems: exact whatever the ratio
    ],
)
def test_auto_prefers_an_exact_solver(monkeypatch, exact_s, approx_s, chosen):
    from skrelatif._solvers import _auto

    monkeypatch.setattr(_auto, "dense_rate", lambda: _auto.DENSE_RATE)
    candidates = {
        "exact": _fake(exact_s, 1e6, True),
        "approx": _fake(approx_s, 1e6, False),
    }
    name, estimates = _auto.choose_solver(candidates, _size(), memory=1e9)
    assert name == chosen and set(estimates) == {"exact", "approx"}


def test_auto_drops_what_does_not_fit_and_refuses_when_nothing_does(monkeypatch):
    from skrelatif._solvers import _auto

    monkeypatch.setattr(_auto, "dense_rate", lambda: _auto.DENSE_RATE)
    candidates = {
        "exact": _fake(2.0, 8e9, True),  # fast but too large
        "approx": _fake(50.0, 1e6, False),
    }
    name, _ = _auto.choose_solver(candidates, _size(), memory=1e9)
    assert name == "approx"
    with pytest.raises(MemoryError, match=r'solver="exact" 7\.5 GiB.*method="if"'):
        _auto.choose_solver(candidates, _size(), memory=1e6)


def test_auto_measures_iterative_solvers_with_a_pilot(monkeypatch):
    from skrelatif._solvers import Estimate, _auto

    monkeypatch.setattr(_auto, "dense_rate", lambda: _auto.DENSE_RATE / 2)
    candidates = {
        "direct": _fake(10.0, 1e6, True),
        "iterative": _fake(100.0, 1e6, True, iterative=True),
    }
    asked = []

    def pilot(solver):
        asked.append(solver)
        return Estimate(3.0, 1e6)  # measured: faster than estimated

    name, estimates = _auto.choose_solver(candidates, _size(), memory=1e9, pilot=pilot)
    assert asked == [candidates["iterative"]]
    assert estimates["direct"].seconds == 20.0  # rescaled by the measured GEMM rate
    assert (name, estimates["iterative"].seconds) == ("iterative", 3.0)


def test_pilot_counts_the_fit_once_and_the_solves_per_right_hand_side(
    classification,
):
    """A preconditioner built in ``fit`` is paid once, not once per pilot
    right-hand side: the estimate is ``fit + n_solves x (solve / 8)``."""
    import time

    from skrelatif._solvers import ConjugateGradientInverse, ProblemSize

    X, y, _, _ = classification(2, **_SHAPE)
    model = LogisticRegression(C=1.0).fit(X, y)
    ex = InfluenceExplainer(model, method="l-relatif", solver="cg").fit(X, y)
    state = fitted_state(ex)

    class SlowFit(ConjugateGradientInverse):
        def fit(self, operator):
            time.sleep(0.3)
            return super().fit(operator)

        def solve(self, G):
            time.sleep(0.01 * len(G))
            return super().solve(G)

    size = ProblemSize(
        n_train=len(y), n_params=7, n_outputs=1, n_solves=1000, dense_flops=1.0,
        dense_sparse=False, matvec_flops=1.0, matvec_sparse=False,
    )  # fmt: skip
    seconds = state._pilot(SlowFit, size).seconds
    # 0.3 s once, plus 1000 x 0.01 s: about 10.3 s (a fit counted per
    # right-hand side would make it 1000 x (0.3 / 8 + 0.01) = 47.5 s)
    assert 10.3 <= seconds < 20.0


def test_auto_on_a_sparse_text_model_picks_a_solver_that_fits(monkeypatch, capsys):
    """End to end: the choice and every candidate's estimate are reported,
    nothing is allocated when nothing fits, and the chosen solver's scores
    are those of the exact solver (or carry their measured error)."""
    from skrelatif._solvers import _auto, _direct

    rng = np.random.RandomState(0)
    X = sparse.random(300, 400, density=0.02, format="csr", random_state=rng)
    y = rng.randint(0, 3, 300)
    model = LogisticRegression(C=1.0, tol=1e-10).fit(X, y)
    monkeypatch.setattr(_auto, "SMALL_SECONDS", 0.0)  # measure, as on a large one
    ex = InfluenceExplainer(model, method="if", verbose=1).fit(X, y)
    out = capsys.readouterr().out
    for name in ("cholesky", "block-diagonal", "cg"):
        assert f"solver='{name}': about" in out
    assert f"solver='{ex.solver_}'" in out.split("<- chosen")[0].splitlines()[-1]
    exact = InfluenceExplainer(model, method="if", solver="cholesky").fit(X, y)
    if ex.normaliser_error_ is None:
        assert_close(ex.transform(X[:5]), exact.transform(X[:5]), 1e-6)
    # nothing fits: refused before the Hessian is formed
    monkeypatch.setattr(_auto, "available_memory", lambda: 1000)
    formed = []
    monkeypatch.setattr(
        _direct.CholeskyInverse, "fit", lambda self, op: formed.append(op)
    )
    with pytest.raises(MemoryError, match="No solver fits"):
        InfluenceExplainer(model, method="l-relatif").fit(X, y)
    assert formed == []


def test_normaliser_error_of_an_approximate_solver_is_measured():
    X, y = _digits()
    model = LogisticRegression(C=0.1, tol=1e-10, max_iter=1000).fit(X, y)
    exact = InfluenceExplainer(model, method="l-relatif").fit(X, y)
    block = InfluenceExplainer(model, method="l-relatif", solver="block-diagonal")
    block.fit(X, y)
    assert exact.normaliser_error_ is None
    # the largest relative error of sqrt(g^T H^-1 g) on the sample, recomputed
    rows = np.sort(np.random.RandomState(0).choice(len(y), 16, replace=False))
    q_exact = exact.self_influence_[rows]
    q_block = block.self_influence_[rows]
    expected = np.max(np.abs(np.sqrt(q_block / q_exact) - 1))
    np.testing.assert_allclose(block.normaliser_error_, expected, rtol=1e-5)
    assert block.normaliser_error_ > 1e-3  # the cross-class curvature matters


def test_auto_counts_the_error_check_of_approximate_solvers(monkeypatch):
    from skrelatif._solvers import _auto

    monkeypatch.setattr(_auto, "dense_rate", lambda: _auto.DENSE_RATE)
    candidates = {
        "exact": _fake(10.0, 1e6, True),
        "approx": _fake(2.0, 1e6, False),
    }
    seen = []

    def check(estimates):  # e.g. the exact solver on a sample of the solves
        seen.append(dict(estimates))
        return 0.8 * estimates["exact"].seconds

    name, estimates = _auto.choose_solver(
        candidates, _size(), memory=1e9, check_seconds=check
    )
    assert seen and estimates["approx"].seconds == 2.0 + 8.0
    assert name == "exact"  # 10 s exact against 2 s plus an 8 s check

"""Speed and memory of InfluenceExplainer on MNIST- and text-shaped problems.

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_scale.py            # full size: n = 60,000, d = 784
    python benchmarks/bench_scale.py --quick    # n = 10,000, a minute or so

For each case it prints the wall time of ``fit`` and of ``explain`` for 1,000
test points (median of ``--repeat`` runs), the floating-point operations of
the dominant BLAS work (counted below), the achieved GFLOP/s, the ratio to a
*floor* measured in the same run -- the time numpy's BLAS GEMM needs for the
same number of operations -- and the peak memory allocated during ``fit``
beyond the training data (tracemalloc, which sees numpy's allocations).

Operation counts (n training points, m test points, d̃ = d + 1, K outputs,
P = K d̃ parameters):

- ``fit`` (exact, l-RelatIF): Hessian ``n P^2`` (syrk of the stacked
  ``sqrt(s) p_k x̃`` rows; binary: ``n d̃^2``) + ``K n d̃^2`` (the diag(p)
  blocks) + Cholesky ``P^3 / 3`` + normalisers ``n P^2`` (one triangular solve
  per training gradient);
- ``explain``: ``2 m P^2`` (s_test solves) + ``2 n m d̃ K`` (scores).

The "naive" row materialises the n x P gradient matrix and solves
``np.linalg.solve(H, G.T)`` (LU with all n right-hand sides), with the same
Hessian; it runs on fewer training points (shown) and its memory grows as n P.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
import warnings
from functools import partial

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from skrelatif import InfluenceExplainer


def gemm_rate(dtype=np.float64, size=3000, repeat=3) -> float:
    """Achieved FLOP/s of numpy's BLAS GEMM (median of ``repeat`` runs)."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((size, size)).astype(dtype)
    B = rng.standard_normal((size, size)).astype(dtype)
    A @ B  # warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        A @ B
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


def mnist_like(n, n_test, d=784, n_classes=10, seed=0, dtype=np.float64):
    """Gaussian classes in d dimensions with MNIST's size; a fitted model."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((n_classes, d)) * 0.3
    y = rng.integers(0, n_classes, n + n_test)
    X = (means[y] + rng.standard_normal((n + n_test, d))).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(C=0.01, tol=1e-6, max_iter=300).fit(X[:n], y[:n])
    return X[:n], y[:n], X[n:], model


def text_like(n, n_test, d=100_000, n_classes=20, nnz_per_row=60, seed=0):
    """TF-IDF-shaped data: Zipf-distributed word columns, half of them drawn from
    a class-specific vocabulary, unit-norm rows; a fitted model."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n + n_test)
    rows = np.repeat(np.arange(n + n_test), nnz_per_row)
    words = rng.zipf(1.2, rows.size) - 1
    topical = rng.random(rows.size) < 0.5
    offset = rng.integers(0, d, n_classes)[y[rows]]
    cols = np.where(topical, words + offset, words) % d
    X = sparse.csr_matrix(
        (rng.random(rows.size) + 0.1, (rows, cols)), shape=(n + n_test, d)
    )
    X.sum_duplicates()
    X = sparse.csr_matrix(X.multiply(1 / np.sqrt(X.multiply(X).sum(axis=1))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(C=1.0, tol=1e-6, max_iter=200).fit(X[:n], y[:n])
    return X[:n], y[:n], X[n:], model


def fit_flops(n, d, K, method="l-relatif"):
    dd, P = d + 1, K * (d + 1)
    hessian = n * dd**2 if K == 1 else n * P**2 + K * n * dd**2
    normalisers = n * P**2 * (2 if method == "theta-relatif" else 1)
    return hessian + P**3 / 3 + normalisers


def explain_flops(n, m, d, K):
    P = K * (d + 1)
    return 2 * m * P**2 + 2 * n * m * (d + 1) * K


def measure(function, repeat=1):
    """Median wall time of ``repeat`` runs and the peak memory allocated during
    the first one beyond what existed before it (tracemalloc sees numpy)."""
    times, peak = [], None
    for run in range(repeat):
        gc.collect()
        if run == 0:
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
        if run == 0:
            peak = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
    return statistics.median(times), peak


def naive(model, X, y, X_test):
    """Materialised gradients, np.linalg.solve: the straightforward way."""
    # An identity-Hessian explainer just to reuse the residuals and the Hessian.
    influence = InfluenceExplainer(model, hessian="identity").fit(X, y)._influence
    adapter = influence.adapter
    H = adapter.hessian_operator(X, influence.y_, influence.weights_).dense()
    null_space = adapter.null_space()
    if null_space is not None:
        H += null_space @ null_space.T
    G = adapter.gradients(X, influence.direction_)  # all n gradients at once
    solved = np.linalg.solve(H, G.T).T
    norms = np.sqrt(np.einsum("ij,ij->i", solved, G))
    Gt = influence.test_gradients(X_test, adapter.predict_target(X_test))
    return (Gt @ solved.T) / norms


def row(name, n, seconds, flops, rate, memory=None):
    floor = flops / rate
    mem = "" if memory is None else f"{memory / 2**20:10.0f}"
    print(
        f"{name:<34} {n:>7} {seconds:9.2f} {flops / 1e9:10.0f} "
        f"{flops / seconds / 1e9:8.1f} {floor:8.2f} {seconds / floor:6.2f} {mem:>10}",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="n = 10,000 instead of 60,000"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="timed runs per row (median)"
    )
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument(
        "--n-text-test", type=int, default=16, help="test documents in the sparse case"
    )
    parser.add_argument("--skip-text", action="store_true")
    args = parser.parse_args()
    n = 10_000 if args.quick else 60_000
    m = args.n_test

    rate64, rate32 = gemm_rate(np.float64), gemm_rate(np.float32)
    print(
        f"BLAS GEMM floor: {rate64 / 1e9:.1f} GFLOP/s (float64), "
        f"{rate32 / 1e9:.1f} GFLOP/s (float32)\n"
    )
    print(
        f"{'case':<34} {'n':>7} {'time s':>9} {'GFLOP':>10} {'GFLOP/s':>8} "
        f"{'floor s':>8} {'ratio':>6} {'peak MiB':>10}"
    )

    for K, dtype in [(2, np.float64), (10, np.float64), (10, np.float32)]:
        X, y, X_test, model = mnist_like(n, m, n_classes=K, dtype=dtype)
        outputs = 1 if K == 2 else K
        rate = rate32 if dtype == np.float32 else rate64
        label = f"K={K} {np.dtype(dtype).name}"
        ex = InfluenceExplainer(model, method="l-relatif", solver="cholesky")
        seconds, memory = measure(partial(ex.fit, X, y), args.repeat)
        precision = ex._influence.solver_.compute_dtype
        rate_used = rate if precision == dtype else rate64
        row(
            f"fit     {label} (computed {precision})",
            n,
            seconds,
            fit_flops(n, 784, outputs),
            rate_used,
            memory,
        )
        seconds, memory = measure(partial(ex.explain, X_test, k=10), args.repeat)
        row(
            f"explain {label} ({m} test)",
            n,
            seconds,
            explain_flops(n, m, 784, outputs),
            rate_used,
            memory,
        )
        if dtype == np.float64:
            n_naive = n if K == 2 else min(n, 10_000)
            seconds, memory = measure(
                partial(naive, model, X[:n_naive], y[:n_naive], X_test)
            )
            P = outputs * 785
            row(
                f"naive fit+explain {label}",
                n_naive,
                seconds,
                fit_flops(n_naive, 784, outputs)
                + explain_flops(n_naive, m, 784, outputs)
                + n_naive * P**2,
                rate,
                memory,
            )
        del X, X_test, ex
        gc.collect()

    if not args.skip_text:
        n_text = 4_000 if args.quick else 20_000
        X, y, X_test, model = text_like(n_text, args.n_text_test)
        P = model.coef_.size + model.intercept_.size
        print(
            f"\nsparse text: {n_text} x {X.shape[1]} (nnz {X.nnz}), "
            f"{len(model.classes_)} classes, P = {P} parameters"
        )
        try:
            InfluenceExplainer(model, solver="cholesky").fit(X, y)
        except MemoryError as exc:
            print(f'  solver="cholesky": {exc}')
        ex = InfluenceExplainer(
            model, method="if", solver="cg", solver_options={"tol": 1e-6}
        )
        fit_s, fit_memory = measure(partial(ex.fit, X, y))
        explain_s, explain_memory = measure(partial(ex.explain, X_test, k=10))
        e = ex.explain(X_test[:8], k=1)
        print(
            f'  solver="cg", method="if": fit {fit_s:.1f} s '
            f"(peak {fit_memory / 2**20:.0f} MiB); explain {X_test.shape[0]} test "
            f"points {explain_s:.1f} s (peak {explain_memory / 2**20:.0f} MiB, "
            f"{ex._influence.solver_.n_iter_} CG iterations per batch); the top "
            f"proponent of 8 test points shares their label for "
            f"{np.mean(y[e.proponents[:, 0]] == e.target):.0%}"
        )


if __name__ == "__main__":
    main()

"""Each phase of ``fit`` and ``explain`` against its BLAS floor, in one run.

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_floor.py                  # every case, medians of 3
    python benchmarks/bench_floor.py --cases mnist5k binary20k --repeat 5
    python benchmarks/bench_floor.py --quick          # the two small cases, 1 run

The cases are those of issue 13's acceptance: MNIST-shaped Gaussian classes
(``mnist_like`` of ``bench_scale.py``; d = 784, float64, LogisticRegression
with C = 0.01, explained with ``solver="cholesky"``) with K = 10 classes at n =
5,000, 20,000 and 60,000 training points and binary at n = 20,000 (``fit`` with
``method="if"`` and ``"l-relatif"``, ``explain`` of 1,000 test points, k = 10),
and a small-P / large-n case: ``explain`` of 50,000 test points, k = 10,
against a 100,000 x 200 model with K = 5 classes (P = 1,005).

The floor of each phase is the time the machine's BLAS needs for the phase's
floating-point operations at the rate of a large GEMM measured in the same run
(d̃ = d + 1, P = K d̃, binary P = d̃; m test points):

- ``hessian``      ``n P^2``: the lower triangle of ``sum_i D_i ⊗ x̃_i x̃_i^T``
                   (the symmetric minimum: ``K(K-1)/2`` off-diagonal blocks of
                   ``2 n d̃^2`` and ``K`` diagonal syrk blocks of ``n d̃^2``);
- ``factor``       ``P^3 / 3`` (Cholesky);
- ``normalisers``  ``n P^2`` (one triangular solve per training gradient);
- ``explain``      ``2 m P^2`` (the s_test solves) + ``2 n m P`` (the scores),
                   or, when larger, one write and one read of the ``m x n``
                   score block at the speed of a large ``np.copyto``.

``fit`` is timed whole and by phase (the internal functions of the phases are
wrapped with timers); "other" is the rest of ``fit`` (validation, residuals,
the optimality check). Memory is the peak allocated during the first call
beyond the data (tracemalloc, which sees numpy's allocations).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import bench_scale  # noqa: E402
from bench_scale import gemm_rate, mnist_like  # noqa: E402

from skrelatif import InfluenceExplainer, _influence, _solvers  # noqa: E402
from skrelatif._adapters import _linear_curvature  # noqa: E402

CASES = {
    # name: (n_train, n_test, n_features, n_classes)
    "mnist5k": (5_000, 1_000, 784, 10),
    "binary20k": (20_000, 1_000, 784, 2),
    "mnist20k": (20_000, 1_000, 784, 10),
    "mnist60k": (60_000, 1_000, 784, 10),
    "smallp": (100_000, 50_000, 200, 5),
}

PHASES = defaultdict(float)


def _timed(name, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            PHASES[name] += time.perf_counter() - start

    return wrapper


def install_phase_timers():
    _linear_curvature.LinearHessian.dense = _timed(
        "hessian", _linear_curvature.LinearHessian.dense
    )
    # the factorisation, where the dense solvers call it
    _solvers._direct.cholesky = _timed("factor", _solvers._direct.cholesky)
    first_order = _influence.FirstOrderInfluence
    first_order._normalisers = _timed("normalisers", first_order._normalisers)
    first_order.prepare_test = _timed("s_test", first_order.prepare_test)


def copy_rate(n_bytes=2**28, repeat=5) -> float:
    """Bytes per second of one read plus one write (a large ``np.copyto``)."""
    source = np.ones(n_bytes // 8)
    target = np.empty_like(source)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        np.copyto(target, source)
        times.append(time.perf_counter() - start)
    return n_bytes / statistics.median(times)


def measure(function, repeat):
    """Median time, median phase times and the first call's peak memory
    (``bench_scale.measure`` around a call that records its phases)."""
    phases = defaultdict(list)

    def recorded():
        PHASES.clear()
        function()
        for name, seconds in PHASES.items():
            phases[name].append(seconds)

    seconds, peak = bench_scale.measure(recorded, repeat)
    return (
        seconds,
        {name: statistics.median(values) for name, values in phases.items()},
        peak,
    )


def line(label, seconds, floor, memory=None):
    mem = "" if memory is None else f"{memory / 2**20:9.0f}"
    print(
        f"  {label:<30} {seconds:9.3f} {floor:9.3f} {seconds / floor:7.2f} {mem:>9}",
        flush=True,
    )


def run_case(name, repeat, rate, bandwidth):
    n, m, d, K = CASES[name]
    X, y, X_test, model = mnist_like(n, m, d=d, n_classes=K)
    y_test = model.predict(X_test)
    outputs = 1 if K == 2 else K
    P = outputs * (d + 1)
    floors = {
        "hessian": n * P**2 / rate,
        "factor": P**3 / 3 / rate,
        "normalisers": n * P**2 / rate,
    }
    gemm_floor = (2 * m * P**2 + 2 * n * m * P) / rate
    memory_floor = 2 * 8 * n * m / bandwidth
    print(
        f"\n{name}: n = {n:,} x d = {d}, K = {K} (P = {P:,}), {m:,} test points; "
        f"median of {repeat}"
    )
    print(f"  {'phase':<30} {'time s':>9} {'floor s':>9} {'ratio':>7} {'peak MiB':>9}")
    methods = ["l-relatif"] if name == "smallp" else ["if", "l-relatif"]
    for method in methods:
        ex = InfluenceExplainer(model, method=method, solver="cholesky")
        seconds, phases, memory = measure(functools.partial(ex.fit, X, y), repeat)
        needed = ["hessian", "factor"] + (["normalisers"] if method != "if" else [])
        for phase in needed:
            line(f"{method}: {phase}", phases.get(phase, 0.0), floors[phase])
        other = seconds - sum(phases.get(phase, 0.0) for phase in needed)
        print(f"  {method + ': other':<30} {other:9.3f}")
        line(f"fit {method}", seconds, sum(floors[p] for p in needed), memory)
    explain = functools.partial(ex.explain, X_test, y_test, k=10)
    seconds, phases, memory = measure(explain, repeat)
    floor = max(gemm_floor, memory_floor)
    print(
        f"  explain floor: GEMM {gemm_floor:.3f} s, one pass of the score block "
        f"{memory_floor:.3f} s; s_test solves took {phases.get('s_test', 0):.3f} s"
    )
    line(f"explain {m:,} test, k=10", seconds, floor, memory)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (median)")
    parser.add_argument(
        "--quick", action="store_true", help="mnist5k and binary20k, one run each"
    )
    args = parser.parse_args()
    cases, repeat = args.cases, args.repeat
    if args.quick:
        cases, repeat = ["mnist5k", "binary20k"], 1
    install_phase_timers()
    rate, bandwidth = gemm_rate(np.float64), copy_rate()
    print(
        f"GEMM floor {rate / 1e9:.1f} GFLOP/s (float64); memory "
        f"{bandwidth / 1e9:.1f} GB/s (read + write)"
    )
    for name in cases:
        run_case(name, repeat, rate, bandwidth)


if __name__ == "__main__":
    main()

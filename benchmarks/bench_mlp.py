"""Speed of InfluenceExplainer on an MLPClassifier, against the BLAS floor.

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_mlp.py                 # n = 20,000, d = 784, (100,)
    python benchmarks/bench_mlp.py --n-train 4000  # a quicker look

A ``(100,)`` network (10 classes, ``P = 785 * 100 + 101 * 10`` parameters) is
trained on ``make_classification`` data (not timed), then
``InfluenceExplainer(model, method=..., solver="kfac")`` is timed: ``fit``
(forward/backward passes, K-FAC factors, the RelatIF normalisers) and
``explain`` of ``--n-test`` test points (test gradients, K-FAC solves and the
test-train products ``g_t^T H^-1 ĝ_i`` layer by layer, top-k); median of
``--repeat`` runs.

The *floor* is measured in the same run: numpy's BLAS GEMM on arrays of the
shapes of the unavoidable work, ``[X, 1]`` (n x 785) times the solved test
vectors of the first layer (785 x m*100), and the hidden layer's
(n x 101) times (101 x m*10), in chunks of the same number of training rows,
plus the ``A`` factor's (785 x n) (n x 785) product: ``2 n m P + 2 n 785^2``
flops. The ratio is (fit + explain) / floor.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from sklearn import get_config
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from skrelatif import InfluenceExplainer


def floor_time(n, m, d, hidden, K, chunk_rows, rng) -> float:
    """Seconds of the BLAS floor (see the module docstring)."""
    X = rng.standard_normal((chunk_rows, d + 1))
    H = rng.standard_normal((chunk_rows, hidden + 1))
    S1 = rng.standard_normal((d + 1, m * hidden))
    S2 = rng.standard_normal((hidden + 1, m * K))
    full = rng.standard_normal((n, d + 1))
    start = time.perf_counter()
    for first in range(0, n, chunk_rows):
        rows = min(chunk_rows, n - first)
        X[:rows] @ S1
        H[:rows] @ S2
    full.T @ full
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=20_000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--method", default="l-relatif")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, m, d, hidden, K = args.n_train, args.n_test, 784, args.hidden, args.classes

    X, y = make_classification(
        n_samples=n + m,
        n_features=d,
        n_informative=60,
        n_classes=K,
        random_state=0,
    )
    X_train, y_train, X_test = X[:n], y[:n], X[n:]
    start = time.perf_counter()
    model = MLPClassifier(
        hidden_layer_sizes=(hidden,), alpha=1e-2, max_iter=30, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    P = sum(W.size + b.size for W, b in zip(model.coefs_, model.intercepts_))
    print(
        f"MLPClassifier({hidden},) on {n} x {d}, {K} classes, {P} parameters: "
        f"trained in {time.perf_counter() - start:.0f} s (not timed below)"
    )

    fits, explains = [], []
    for _ in range(args.repeat):
        explainer = InfluenceExplainer(model, method=args.method, solver="kfac")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # not at a minimum
            explainer.fit(X_train, y_train)
        fits.append(time.perf_counter() - start)
        start = time.perf_counter()
        explainer.explain(X_test, k=5)
        explains.append(time.perf_counter() - start)
        del explainer

    # the explainer's own chunk of training rows for the test-train products
    pair_bytes = 8 * (2 * hidden + 1)
    chunk_rows = max(1, int(get_config()["working_memory"] * 2**20 // pair_bytes // m))
    rng = np.random.default_rng(0)
    floors = [
        floor_time(n, m, d, hidden, K, min(chunk_rows, n), rng)
        for _ in range(args.repeat)
    ]
    fit, explain, floor = map(statistics.median, (fits, explains, floors))
    flops = 2 * n * m * P + 2 * n * (d + 1) ** 2
    print(f"method={args.method!r}, solver='kfac', {m} test points")
    for name, median, runs in (("fit", fit, fits), ("explain", explain, explains)):
        shown = ", ".join(f"{t:.1f}" for t in runs)
        print(f"  {name:8s} {median:8.1f} s   (runs: {shown})")
    print(
        f"  floor    {floor:8.1f} s   (GEMM of the same shapes, {flops / 1e12:.2f} "
        f"TFLOP, {flops / floor / 1e9:.0f} GFLOP/s)"
    )
    print(f"  (fit + explain) / floor = {(fit + explain) / floor:.2f}")


if __name__ == "__main__":
    main()

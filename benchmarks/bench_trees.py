"""Speed, memory and accuracy of the boosted-tree methods (issue 19).

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_trees.py            # n = 100,000 x 20, 100 trees
    python benchmarks/bench_trees.py --quick    # n = 10,000 x 20, 30 trees

Speed: a ``HistGradientBoostingClassifier`` (``max_iter`` trees of at most 31
leaves, ``early_stopping=False`` so that every tree is built) on
``make_classification`` data; for ``"boostin"`` and ``"if"`` it prints the
wall time of the model's ``fit``, of ``InfluenceExplainer.fit`` and of
``explain`` for 1,000 test points, and the peak memory allocated by the
explainer beyond the data and the model (tracemalloc, which sees numpy's
allocations). Everything runs on at most 2 threads (``--threads``: OpenMP
and BLAS).

Accuracy: on small datasets shipped with scikit-learn (and one generated with
missing values), the Pearson correlation between ``"if"`` (first order,
propagated through later trees) and ``"newton"`` (the exact removal with the
structure fixed, by replay), over 20 test points x every training example,
and the largest relative error of the replayed leaf values.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    make_classification,
)
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from threadpoolctl import threadpool_limits

from skrelatif import InfluenceExplainer
from skrelatif._adapters import find_adapter


def speed(n, d, n_trees, n_test, threads, n_jobs):
    X, y = make_classification(
        n_samples=n + n_test, n_features=d, n_informative=10, random_state=0
    )
    X_train, y_train, X_test = X[:n], y[:n], X[n:]
    start = time.perf_counter()
    with threadpool_limits(threads):
        model = HistGradientBoostingClassifier(
            max_iter=n_trees, early_stopping=False, random_state=0
        ).fit(X_train, y_train)
    model_fit = time.perf_counter() - start
    leaves = sum(p.get_n_leaf_nodes() for it in model._predictors for p in it)
    print(
        f"HistGradientBoostingClassifier n={n} d={d} trees={n_trees} "
        f"leaves={leaves}: model fit {model_fit:.1f} s"
    )
    for method in ("boostin", "if"):
        with threadpool_limits(threads):
            tracemalloc.start()
            start = time.perf_counter()
            explainer = InfluenceExplainer(model, method=method, n_jobs=n_jobs)
            explainer.fit(X_train, y_train)
            fitted = time.perf_counter() - start
            explanation = explainer.explain(X_test, k=5)
            total = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert explanation.proponents.shape == (n_test, 5)
        explain = total - fitted
        print(
            f"  {method:8s} explainer fit {fitted:6.1f} s, explain {explain:6.1f} s "
            f"({n_test} test points); model fit + both {model_fit + total:6.1f} s; "
            f"peak memory {peak / 2**30:.2f} GiB"
        )


def _datasets():
    rng = np.random.RandomState(0)
    X, y = load_breast_cancer(return_X_y=True)
    yield "breast_cancer", HistGradientBoostingClassifier(max_iter=30), X, y
    X, y = load_digits(return_X_y=True)
    X, y = X[:500], y[:500]
    yield "digits (10 classes)", HistGradientBoostingClassifier(max_iter=10), X, y
    X, y = load_diabetes(return_X_y=True)
    yield "diabetes", HistGradientBoostingRegressor(max_iter=30), X, y
    X, y = make_classification(n_samples=500, n_features=8, random_state=0)
    X[rng.rand(*X.shape) < 0.1] = np.nan
    model = HistGradientBoostingClassifier(max_iter=30, l2_regularization=1.0)
    yield "generated, 10% missing", model, X, y


def accuracy():
    """Scores from the bound adapter (the explainer's own products and
    scale), for every training example at once."""
    print("Pearson r of 'if' against 'newton' (exact fixed-structure removal):")
    for name, model, X, y in _datasets():
        with threadpool_limits(1, user_api="openmp"):
            model.fit(X, y)
        adapter = find_adapter(model)(model)
        bound = adapter.bind(X, adapter.encode_target(y), None)
        explained = None if bound.is_regressor else bound.encode_target(y[-20:])
        scores = {}
        for method in ("if", "newton"):
            state = bound.test_state(X[-20:], explained, method)
            rows = bound.candidates_
            products = bound.cross_function(method)(state, *bound.payload(rows, method))
            scores[method] = products * bound.train_scale(method)[rows]
        r = np.corrcoef(scores["if"].ravel(), scores["newton"].ravel())[0, 1]
        print(
            f"  {name:24s} n={len(y):4d} r={r:.4f} "
            f"leaf values replayed to {bound.replay_error_:.1e}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    if args.quick:
        speed(10_000, 20, 30, 1_000, args.threads, args.n_jobs)
    else:
        speed(100_000, 20, 100, 1_000, args.threads, args.n_jobs)
    if not args.skip_accuracy:
        accuracy()


if __name__ == "__main__":
    main()

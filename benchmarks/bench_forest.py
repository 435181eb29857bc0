"""Speed of the forest adapter (issue 19) and how its first-order scores
track the exact removal.

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_forest.py            # 100,000 x 20, 100 trees
    python benchmarks/bench_forest.py --quick    # 10,000 x 20, 20 trees

(a) Speed: ``make_classification`` with 20 features (10 informative),
    ``RandomForestClassifier(n_estimators=100, n_jobs=2)`` (fully grown, the
    defaults) on 100,000 training rows; ``InfluenceExplainer(method=...)``
    ``fit`` (reconstructing every tree's in-bag counts and checking every
    node against them) and ``explain(k=10)`` of 1,000 test points, for
    ``"if"``, ``"l-relatif"`` and ``"newton"``, with ``n_jobs=2``. The
    forest's own ``fit`` is timed apart: it is scikit-learn's. The peak
    resident memory of the process is reported at the end.
(b) Agreement: Pearson r between the ``"if"`` and the exact removal
    (``"newton"``) scores over every (test, train) pair, 1,000 training rows
    and 100 test points, for forests with several examples per leaf
    (``min_samples_leaf=5``) and fully grown ones, where most first-order
    scores are exactly 0 (pure leaves; see ``skrelatif/_adapters/forest.py``).

Times depend on the machine and its load.
"""

import argparse
import resource
import time

import numpy as np
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

from skrelatif import InfluenceExplainer


def speed(n_train, n_test, n_trees):
    X, y = make_classification(
        n_train + n_test, 20, n_informative=10, n_redundant=5, random_state=0
    )
    X_train, y_train, X_test = X[:n_train], y[:n_train], X[n_train:]
    start = time.perf_counter()
    model = RandomForestClassifier(n_estimators=n_trees, n_jobs=2, random_state=0)
    model.fit(X_train, y_train)
    fit_time = time.perf_counter() - start
    nodes = sum(tree.tree_.node_count for tree in model.estimators_)
    print(
        f"RandomForestClassifier({n_trees} trees) on {n_train:,} x 20: "
        f"{nodes:,} nodes, forest fit {fit_time:.1f} s (scikit-learn)\n"
    )
    print("| method | explainer fit (s) | explain k=10 (s) | total (s) |")
    print("|---|---|---|---|")
    for method in ("if", "l-relatif", "newton"):
        start = time.perf_counter()
        explainer = InfluenceExplainer(model, method=method, n_jobs=2)
        explainer.fit(X_train, y_train)
        fitted = time.perf_counter() - start
        explainer.explain(X_test, k=10)
        total = time.perf_counter() - start
        print(f"| {method} | {fitted:.1f} | {total - fitted:.1f} | {total:.1f} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\npeak resident memory of the process: {peak:.2f} GiB\n")


def agreement(n_train, n_test):
    classification = make_classification(
        n_train + n_test, 10, n_informative=6, flip_y=0.05, random_state=1
    )
    regression = make_regression(n_train + n_test, 10, noise=20.0, random_state=1)
    models = [
        ("RandomForestClassifier", RandomForestClassifier, classification),
        ("ExtraTreesClassifier", ExtraTreesClassifier, classification),
        ("RandomForestRegressor", RandomForestRegressor, regression),
        ("ExtraTreesRegressor", ExtraTreesRegressor, regression),
    ]
    print(
        f"Pearson r('if', exact removal) over {n_test} x {n_train} pairs, "
        "50 trees, test labels given:\n"
    )
    print("| model | min_samples_leaf=5 | fully grown | first-order zeros (grown) |")
    print("|---|---|---|---|")
    for name, estimator, (X, y) in models:
        X_train, y_train = X[:n_train], y[:n_train]
        X_test, y_test = X[n_train:], y[n_train:]
        cells = []
        for leaf in (5, 1):
            model = estimator(n_estimators=50, min_samples_leaf=leaf, random_state=0)
            model.fit(X_train, y_train)
            scores = {
                method: InfluenceExplainer(model, method=method)
                .fit(X_train, y_train)
                .transform(X_test, y_test)
                for method in ("if", "newton")
            }
            if np.ptp(scores["if"]) == 0:
                cells.append("undefined (every 'if' score 0)")
            else:
                r = np.corrcoef(scores["if"].ravel(), scores["newton"].ravel())[0, 1]
                cells.append(f"{r:.3f}")
            zeros = np.mean(scores["if"] == 0)
        cells.append(f"{zeros:.1%}")
        print(f"| {name} | " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 rows and 20 trees")
    args = parser.parse_args()
    if args.quick:
        speed(10_000, 100, 20)
        agreement(300, 30)
    else:
        speed(100_000, 1_000, 100)
        agreement(1_000, 100)


if __name__ == "__main__":
    main()

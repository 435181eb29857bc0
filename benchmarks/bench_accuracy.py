"""How accurate is each method? The table of ``doc/user_guide/accuracy.rst``.

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_accuracy.py           # the full table (a few minutes)
    python benchmarks/bench_accuracy.py --quick   # a small version (CI, < 2 minutes)

For each model family (a data set shipped with scikit-learn or generated,
standardised, a stratified 75/25 split with ``random_state=0``) and each
method (and curvature / solver where the family has a choice), the table
grades the explainer in the field's terms, always against real retraining:

- **LOO r / slope**: :func:`skrelatif.validation.leave_one_out` without each
  of ``n_loo`` random training examples; r is the Pearson correlation across
  the removed examples for each test point, averaged over the test points
  (dattri's ``loo_corr``), slope the least-squares slope of actual against
  predicted over all pairs (:func:`skrelatif.validation.agreement`; 1 is the
  right scale). The actual counterpart of a RelatIF score is the test loss
  change divided by its normaliser (:func:`skrelatif.validation.actual_change`),
  so its slope is a scale, not a check.
- **LDS**: :func:`skrelatif.validation.linear_datamodeling_score` at
  ``alpha=0.5`` on ``n_subsets`` subsets drawn once per family and given
  explicitly to every method of the family (the same refits).
- **removal @ 1%**: :func:`skrelatif.validation.removal_curve` at
  ``fractions=(0.01,)``: the mean change of the test loss when each test
  point's top 1% proponents are removed and the model refit (on the first
  ``n_removal`` test points: two refits each). The family's
  baselines are two extra rows: ``random`` (as many random examples, the same
  sets for every method) and ``nearest neighbour``
  (:class:`skrelatif.NearestNeighborExplainer`'s nearest training examples,
  refit in the same way).
- **time**: ``fit`` of the explainer plus ``transform`` of the test points
  (the method's own cost; the refits of the validation are not included).

The tracked output is the test loss at the true labels (targets). The script
prints the table as Markdown, the time of each family's validation, and the
whole run's time, and (unless ``--quick``) writes it as reStructuredText to
``doc/user_guide/accuracy_table.inc``, which ``accuracy.rst`` includes.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_wine,
)
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import (
    LogisticRegression,
    PoissonRegressor,
    Ridge,
    SGDClassifier,
)
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from skrelatif import InfluenceExplainer, NearestNeighborExplainer
from skrelatif.validation import (
    actual_change,
    agreement,
    leave_one_out,
    linear_datamodeling_score,
    removal_curve,
)

ROOT = Path(__file__).resolve().parents[1]
RST = ROOT / "doc" / "user_guide" / "accuracy_table.inc"
METHODS = ("if", "theta-relatif", "l-relatif", "newton")
FIRST_ORDER = METHODS[:3]


def poisson_data(return_X_y=True):
    """600 counts, log-linear in 8 standard normal features."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(600, 8))
    w = rng.normal(scale=0.3, size=8)
    return X, rng.poisson(np.exp(0.5 + X @ w)).astype(float)


@dataclass
class Family:
    name: str
    data: str
    loader: object
    model: object
    rows: list = field(default_factory=list)  # (method, {explainer options})
    classifier: bool = True
    quick: bool = True  # part of --quick


def families():
    """The rows of the table: family, data, model, (method, options)."""
    logistic = [(m, {}) for m in METHODS]
    return [
        Family(
            "LogisticRegression",
            "breast cancer (2 classes)",
            load_breast_cancer,
            LogisticRegression(C=0.1, tol=1e-10, max_iter=10_000),
            logistic,
        ),
        Family(
            "LogisticRegression",
            "digits (10 classes)",
            load_digits,
            LogisticRegression(C=0.05, tol=1e-10, max_iter=10_000),
            [
                ("if", {}),
                ("if", {"solver": "cg"}),
                ("if", {"solver": "lissa", "random_state": 0}),
                ("if", {"solver": "block-diagonal"}),
                ("theta-relatif", {}),
                ("l-relatif", {}),
                ("newton", {}),
            ],
            quick=False,
        ),
        Family(
            "LogisticRegression",
            "wine (3 classes)",
            load_wine,
            LogisticRegression(C=0.1, tol=1e-10, max_iter=10_000),
            logistic,
        ),
        Family(
            "Ridge",
            "diabetes",
            load_diabetes,
            Ridge(alpha=1.0),
            [(m, {}) for m in METHODS],
            classifier=False,
        ),
        Family(
            "PoissonRegressor",
            "generated counts",
            poisson_data,
            PoissonRegressor(alpha=0.01, tol=1e-10, max_iter=10_000),
            [(m, {}) for m in METHODS],
            classifier=False,
        ),
        Family(
            "SGDClassifier (log-loss)",
            "breast cancer",
            load_breast_cancer,
            SGDClassifier(
                loss="log_loss", alpha=0.01, tol=1e-10, max_iter=10_000, random_state=0
            ),
            [(m, {}) for m in METHODS],
            quick=False,
        ),
        Family(
            "MLPClassifier (8,), tanh",
            "breast cancer",
            load_breast_cancer,
            MLPClassifier(
                (8,),
                activation="tanh",
                alpha=1.0,
                solver="lbfgs",
                tol=1e-10,
                max_iter=5000,
                random_state=0,
            ),
            [
                ("if", {}),
                ("if", {"hessian": "exact"}),
                ("theta-relatif", {}),
                ("l-relatif", {}),
                ("newton", {}),
            ],
            quick=False,
        ),
        Family(
            "SVC (RBF)",
            "breast cancer",
            load_breast_cancer,
            SVC(kernel="rbf", C=1.0),
            [(m, {}) for m in FIRST_ORDER],
            quick=False,
        ),
        Family(
            "HistGradientBoostingClassifier (50 trees)",
            "breast cancer",
            load_breast_cancer,
            HistGradientBoostingClassifier(
                max_iter=50, early_stopping=False, random_state=0
            ),
            [(m, {}) for m in ("boostin", *METHODS)],
            quick=False,
        ),
        Family(
            "RandomForestClassifier (50 trees, 5 a leaf)",
            "breast cancer",
            load_breast_cancer,
            RandomForestClassifier(n_estimators=50, min_samples_leaf=5, random_state=0),
            [(m, {}) for m in METHODS],
            quick=False,
        ),
        Family(
            "KNeighborsClassifier (k=10)",
            "breast cancer",
            load_breast_cancer,
            KNeighborsClassifier(n_neighbors=10),
            [(m, {}) for m in METHODS],
            quick=False,
        ),
        Family(
            "KernelRidge (RBF)",
            "diabetes",
            load_diabetes,
            KernelRidge(alpha=1.0, kernel="rbf", gamma=0.1),
            [(m, {}) for m in METHODS],
            classifier=False,
            quick=False,
        ),
    ]


def split(family, n_test):
    X, y = family.loader(return_X_y=True)
    stratify = y if family.classifier else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=stratify
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    if family.loader is load_diabetes:  # targets in units of their spread
        mean, std = y_train.mean(), y_train.std()
        y_train, y_test = (y_train - mean) / std, (y_test - mean) / std
    n_test = min(n_test, len(X_test))  # wine has 45
    test = np.random.RandomState(0).choice(len(X_test), n_test, replace=False)
    return X_train, y_train, X_test[test], y_test[test]


def draw_subsets(y_train, n_subsets, classifier, rng):
    """``n_subsets`` subsets of half the training set, each with every class."""
    n_train = len(y_train)
    n_keep = round(0.5 * n_train)
    subsets = np.zeros((n_subsets, n_train), dtype=bool)
    classes = np.unique(y_train)
    for s in range(n_subsets):
        while True:
            keep = rng.choice(n_train, n_keep, replace=False)
            if not classifier or np.unique(y_train[keep]).size == classes.size:
                break
        subsets[s, keep] = True
    return subsets


def options_text(explainer, options):
    """The curvature / solver column: what was used, ``auto`` resolved."""
    text = f"{explainer.hessian_} / {explainer.solver_}"
    if explainer.solver_ is None:
        text = explainer.hessian_
    return text + (" (asked)" if options else "")


def grade(family, sizes, rng, n_jobs):
    """One family's rows: a dict per method, then the two baselines."""
    X_train, y_train, X_test, y_test = split(family, sizes["n_test"])
    model = family.model.fit(X_train, y_train)
    n_train = len(X_train)
    loo_indices = rng.choice(n_train, sizes["n_loo"], replace=False)
    subsets = draw_subsets(y_train, sizes["n_subsets"], family.classifier, rng)
    # the removal curve refits twice per test point: on the first few only
    X_removal, y_removal = X_test[: sizes["n_removal"]], y_test[: sizes["n_removal"]]
    rows, loo, validation = [], None, 0.0
    for method, options in family.rows:
        start = time.perf_counter()
        explainer = InfluenceExplainer(model, method=method, **options).fit(
            X_train, y_train
        )
        scores = explainer.transform(X_test, y_test)
        elapsed = time.perf_counter() - start
        start = time.perf_counter()
        if loo is None:  # the same removals for every method
            loo = leave_one_out(explainer, X_test, y_test, loo_indices)
        predicted = scores[:, loo_indices]
        actual = actual_change(loo, method)
        finite = np.isfinite(actual)
        # a kernel SVM has no parameter vector: theta-RelatIF has no actual
        # counterpart (NaN), and its LOO columns say n/a
        per_test = [
            agreement(predicted[t, finite[t]], actual[t, finite[t]]).pearson
            for t in range(len(X_test))
            if finite[t].sum() >= 2
        ] or [np.nan]
        slope = (
            agreement(predicted[finite], actual[finite]).slope
            if finite.sum() >= 2
            else np.nan
        )
        lds = linear_datamodeling_score(
            explainer, X_test, y_test, subsets=subsets, n_jobs=n_jobs
        )
        curve = removal_curve(
            explainer,
            X_removal,
            y_removal,
            fractions=(0.01,),
            random_state=0,
            n_jobs=n_jobs,
        )
        validation += time.perf_counter() - start
        rows.append(
            {
                "method": method,
                "options": options_text(explainer, options),
                "loo_r": np.nan if np.isnan(per_test).all() else np.nanmean(per_test),
                "loo_slope": slope,
                "lds": lds.score,
                "removal": float(curve.change[:, 0].mean()),
                "time": elapsed,
            }
        )
    start = time.perf_counter()
    size = int(curve.sizes[0])
    neighbours = NearestNeighborExplainer(model).fit(X_train, y_train)
    nearest = neighbours.explain(X_removal, y_removal, k=size).proponents
    nn_curve = removal_curve(
        explainer,
        X_removal,
        y_removal,
        fractions=(0.01,),
        random_state=0,
        proponents=nearest,
        n_jobs=n_jobs,
    )
    validation += time.perf_counter() - start
    rows.append({"method": "nearest neighbour", "removal": nn_curve.change.mean()})
    rows.append({"method": "random", "removal": curve.random_change.mean()})
    info = {
        "n_train": n_train,
        "n_test": len(X_test),
        "n_removal": len(X_removal),
        "removed": size,
        "validation": validation,
    }
    return rows, info


def cell(row, key, fmt):
    value = row.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return "n/a" if not np.isfinite(value) else format(value, fmt)


COLUMNS = [
    ("family", None, None),
    ("data (n_train)", None, None),
    ("method", "method", "s"),
    ("curvature / solver", "options", "s"),
    ("LOO r", "loo_r", ".3f"),
    ("LOO slope", "loo_slope", ".3f"),
    ("LDS", "lds", ".3f"),
    ("removal @ 1%", "removal", ".3g"),
    ("time (s)", "time", ".3f"),
]


def table_rows(results):
    lines = []
    for family, (rows, info) in results:
        for i, row in enumerate(rows):
            first = i == 0
            lines.append(
                [
                    family.name if first else "",
                    f"{family.data} ({info['n_train']})" if first else "",
                    *(cell(row, key, fmt) for _, key, fmt in COLUMNS[2:]),
                ]
            )
    return lines


def markdown(results):
    header = [name for name, _, _ in COLUMNS]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in table_rows(results)]
    return "\n".join(out)


def rst(results, sizes, seconds, n_jobs, load):
    """The table as a reStructuredText ``csv-table`` and a line on the sizes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for cells in table_rows(results):
        writer.writerow(cells)
    header = ", ".join(f'"{name}"' for name, _, _ in COLUMNS)
    smaller = [
        f"{family.data.split(' (')[0]}: {info['n_test']}"
        for family, (_, info) in results
        if info["n_test"] < sizes["n_test"]
    ]
    fewer = f" (all of a smaller test split: {', '.join(smaller)})" if smaller else ""
    lines = [
        ".. Written by benchmarks/bench_accuracy.py (full run); do not edit by hand.",
        "",
        ".. csv-table::",
        f"   :header: {header}",
        "",
        *("   " + row for row in buffer.getvalue().splitlines()),
        "",
        f"{sizes['n_test']} test points per family{fewer} ({sizes['n_removal']} of "
        f"them for the removal curve), {sizes['n_loo']} leave-one-out removals, "
        f"{sizes['n_subsets']} LDS subsets (alpha = 0.5). The whole run took "
        f"{seconds / 60:.1f} minutes ({n_jobs} joblib jobs, one BLAS thread each) on "
        f"a shared {os.cpu_count()}-core machine with a load average of "
        f"{load[0]:.1f} at the start and {load[1]:.1f} at the end.",
        "",
    ]
    return "\n".join(lines)


SIZES = {
    "full": {"n_test": 50, "n_loo": 100, "n_subsets": 100, "n_removal": 10},
    "quick": {"n_test": 5, "n_loo": 20, "n_subsets": 50, "n_removal": 5},
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small version")
    parser.add_argument(
        "--n-jobs", type=int, default=2, help="joblib jobs for the refits (2)"
    )
    parser.add_argument(
        "--rst",
        type=Path,
        default=None,
        help=f"where to write the rst table (default: {RST} for a full run, "
        "nowhere for --quick)",
    )
    args = parser.parse_args(argv)
    sizes = SIZES["quick" if args.quick else "full"]
    rst_path = args.rst if args.rst is not None else (None if args.quick else RST)
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    results = []
    rng = np.random.RandomState(0)
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # the families are set to converge; say so if a refit did not
        warnings.simplefilter("always", ConvergenceWarning)
        for family in families():
            if args.quick and not family.quick:
                continue
            rows, info = grade(family, sizes, rng, args.n_jobs)
            results.append((family, (rows, info)))
            print(
                f"# {family.name}, {family.data}: n_train={info['n_train']}, "
                f"{info['n_test']} test points ({info['n_removal']} for the removal "
                f"curve), {info['removed']} removed at 1%, "
                f"validation {info['validation']:.1f} s",
                flush=True,
            )
    seconds = time.perf_counter() - start
    print()
    print(markdown(results))
    print()
    load = (load_start, os.getloadavg()[0])
    print(
        f"whole run: {seconds:.1f} s (load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end, {os.cpu_count()} cores)"
    )
    if rst_path is not None:
        rst_path.write_text(rst(results, sizes, seconds, args.n_jobs, load))
        print(f"wrote {rst_path}")


if __name__ == "__main__":
    main()

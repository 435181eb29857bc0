"""Agreement of ``method="if"`` and ``method="newton"`` with exact leave-one-out.

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_newton_agreement.py

For each data set: a stratified 75/25 split, ``StandardScaler`` +
``LogisticRegression(C, tol=1e-10)``, 10 test points (their true labels) and
50 training points spanning the range of the Newton scores (quantiles of each
example's largest absolute score). "Actual" is
:func:`skrelatif.validation.leave_one_out` (Newton iterations to the exact
optimum without each example, relative tolerance 1e-10). The table printed is
the one quoted in ``doc/user_guide/validation.rst``: Pearson correlation and
least-squares slope (actual ~ slope * predicted) over the 500 pairs.

A second table does the same for groups removed together
(:meth:`~skrelatif.InfluenceExplainer.predict_removal`, ``"first-order"`` and
``"newton"``, against ``leave_one_out`` with a list of groups): breast cancer,
``C=0.1``, 20 random groups of each size, the same 10 test points.
"""

import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer
from skrelatif.validation import agreement, leave_one_out

CASES = [
    ("wine", load_wine, 0.1),
    ("breast cancer", load_breast_cancer, 0.1),
    ("breast cancer", load_breast_cancer, 1.0),
    ("digits", load_digits, 0.05),
]


def spanning(scores, n):
    """n training indices spanning the range of the scores."""
    order = np.argsort(np.abs(scores).max(axis=0))
    return order[np.unique(np.linspace(0, len(order) - 1, n).round().astype(int))]


def fitted_split(loader, C, n_test):
    """A stratified 75/25 split, the standardised model fitted on the 75 and
    ``n_test`` test points drawn from the 25."""
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, tol=1e-10))
    model.fit(X_train, y_train)
    test = np.random.RandomState(0).choice(len(X_test), n_test, replace=False)
    return model, X_train, y_train, X_test[test], y_test[test]


def measure(loader, C, n_removed=50, n_test=10):
    model, X_train, y_train, X_t, y_t = fitted_split(loader, C, n_test)
    scores = {
        method: InfluenceExplainer(model, method=method)
        .fit(X_train, y_train)
        .transform(X_t, y_t)
        for method in ("if", "newton")
    }
    removed = spanning(scores["newton"], n_removed)
    explainer = InfluenceExplainer(model, method="if").fit(X_train, y_train)
    loo = leave_one_out(explainer, X_t, y_t, removed)
    rows = {
        method: agreement(s[:, removed], loo.test_loss_change)
        for method, s in scores.items()
    }
    return len(X_train), len(removed), rows


def measure_groups(loader, C, sizes=(5, 20, 100), n_groups=20, n_test=10):
    model, X_train, y_train, X_t, y_t = fitted_split(loader, C, n_test)
    explainer = InfluenceExplainer(model, method="if").fit(X_train, y_train)
    rng = np.random.RandomState(0)
    for size in sizes:
        groups = [
            rng.choice(len(X_train), size, replace=False) for _ in range(n_groups)
        ]
        actual = leave_one_out(explainer, X_t, y_t, groups).test_loss_change
        rows = {
            method: agreement(
                explainer.predict_removal(X_t, y_t, groups=groups, method=method),
                actual,
            )
            for method in ("first-order", "newton")
        }
        yield size, rows


def main():
    print(
        f"{'data set':14s} {'C':>5s} {'n_train':>7s} {'removed':>7s}  "
        f"{'if: Pearson':>11s} {'slope':>6s}  {'newton: Pearson':>15s} {'slope':>6s}"
    )
    for name, loader, C in CASES:
        start = time.perf_counter()
        n_train, n_removed, rows = measure(loader, C)
        first, newton = rows["if"], rows["newton"]
        print(
            f"{name:14s} {C:5g} {n_train:7d} {n_removed:7d}  "
            f"{first.pearson:11.4f} {first.slope:6.3f}  "
            f"{newton.pearson:15.6f} {newton.slope:6.3f}"
            f"   ({time.perf_counter() - start:.1f} s)"
        )
    print()
    print("Groups removed together: breast cancer, C=0.1, 20 random groups per size")
    print(
        f"{'group size':>10s}  {'first-order: Pearson':>20s} {'slope':>6s}  "
        f"{'newton: Pearson':>15s} {'slope':>6s}"
    )
    for size, rows in measure_groups(load_breast_cancer, 0.1):
        first, newton = rows["first-order"], rows["newton"]
        print(
            f"{size:10d}  {first.pearson:20.4f} {first.slope:6.3f}  "
            f"{newton.pearson:15.6f} {newton.slope:6.3f}"
        )


if __name__ == "__main__":
    main()

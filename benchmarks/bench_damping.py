"""Damping of a network's curvature against warm-started retraining.

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_damping.py           # the table of the networks page
    python benchmarks/bench_damping.py --quick   # two rows, fewer removals

For each row: a split of a scikit-learn data set (75/25, stratified for
classifiers; at most ``--max-train`` training rows), features standardised
(and the regressor's target), a small ``MLPClassifier`` / ``MLPRegressor``
trained by L-BFGS to a tight tolerance, and the 10 test points of largest
loss, with their true labels (most test points are fitted with near
certainty, and their losses change by amounts near the precision of the
refits). The curvature's scale ``trace(C) / P`` is measured for the
Gauss-Newton matrix and for the exact Hessian (``C`` the undamped matrix of
the training objective, penalty included, as the explainer builds it; ``P``
the number of parameters). Then, for every fraction ``f`` of ``FRACTIONS``,
``InfluenceExplainer(model, method="if", hessian=..., damping=f * trace/P)``
scores every training example for those test points, and the scores are
compared with :func:`skrelatif.validation.leave_one_out` (the network refit
by L-BFGS from its trained weights without each example) on 40 training
examples spanning the range of the scores (quantiles of each example's
largest absolute score, ranks averaged over every configuration that ran, so
that all of them are compared on the same removals). The cell is the Pearson
correlation (:func:`skrelatif.validation.agreement`) over the 10 x 40 pairs;
"indefinite" (or "singular") when the damped matrix is not positive definite
and the explainer refuses it.

The ``gap`` column is the explainer's optimality gap, the norm of the
objective's gradient at the trained weights relative to the size of its terms
(the explainer warns above 1e-2): L-BFGS stops ReLU networks a few percent from
stationarity, at the kinks of their objective.

The Markdown table on stdout is the one quoted in
``doc/user_guide/networks.rst``; progress goes to stderr. Below it, the median
and minimum of each column over the rows, the mean and largest shortfall from
each row's best fraction, and the smallest eigenvalue of each
undamped matrix relative to ``trace/P`` (the exact Hessian is indefinite when
it is negative: damping below minus that fraction cannot make it positive).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import NamedTuple

import numpy as np
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_wine,
    make_classification,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer
from skrelatif._adapters import find_adapter
from skrelatif.exceptions import SingularCurvatureError
from skrelatif.validation import agreement, leave_one_out

#: Damping as a fraction of the undamped curvature's trace / P.
FRACTIONS = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: The fraction ``damping="auto"`` uses for networks (chosen from this table).
AUTO_FRACTION = 1e-1
CURVATURES = ("gauss-newton", "exact")


class Case(NamedTuple):
    name: str
    activation: str
    hidden: tuple
    alpha: float
    regressor: bool = False


def _digits_two_class():
    X, y = load_digits(return_X_y=True)
    keep = np.isin(y, (3, 8))
    return X[keep], y[keep]


def _classification():
    return make_classification(
        n_samples=400,
        n_features=10,
        n_informative=6,
        n_redundant=2,
        flip_y=0.05,
        random_state=0,
    )


LOADERS = {
    "breast cancer": lambda: load_breast_cancer(return_X_y=True),
    "wine": lambda: load_wine(return_X_y=True),
    "digits 3 vs 8": _digits_two_class,
    "digits": lambda: load_digits(return_X_y=True),
    "make_classification": _classification,
    "diabetes": lambda: load_diabetes(return_X_y=True),
}

CASES = [
    Case("breast cancer", "tanh", (8,), 1.0),
    Case("breast cancer", "relu", (8,), 0.1),
    Case("wine", "relu", (8,), 0.1),
    Case("wine", "logistic", (8,), 1e-2),
    Case("digits 3 vs 8", "logistic", (8,), 0.1),
    Case("digits", "tanh", (8,), 1.0),
    Case("digits", "relu", (16,), 0.1),
    Case("make_classification", "relu", (16,), 1e-2),
    Case("make_classification", "tanh", (8, 8), 0.1),
    Case("diabetes", "tanh", (8,), 1.0, regressor=True),
    Case("diabetes", "relu", (16,), 0.1, regressor=True),
]
QUICK_CASES = [CASES[0], CASES[2]]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fitted(case: Case, n_test: int, max_train: int, seed: int = 0):
    """The trained network, its (standardised) training data and test points."""
    X, y = LOADERS[case.name]()
    X_train, X_test, y_train, y_test = train_test_split(
        X,
        y,
        test_size=0.25,
        random_state=seed,
        stratify=None if case.regressor else y,
    )
    if len(X_train) > max_train:
        keep, _ = train_test_split(
            np.arange(len(X_train)),
            train_size=max_train,
            random_state=seed,
            stratify=None if case.regressor else y_train,
        )
        X_train, y_train = X_train[keep], y_train[keep]
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    if case.regressor:
        mean, scale = y_train.mean(), y_train.std()
        y_train, y_test = (y_train - mean) / scale, (y_test - mean) / scale
    network = (MLPRegressor if case.regressor else MLPClassifier)(
        hidden_layer_sizes=case.hidden,
        activation=case.activation,
        solver="lbfgs",
        alpha=case.alpha,
        tol=1e-10,
        max_iter=20_000,
        max_fun=100_000,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        network.fit(X_train, y_train)
    if case.regressor:
        losses = 0.5 * (y_test - network.predict(X_test)) ** 2
    else:
        proba = network.predict_proba(X_test)
        true = np.searchsorted(network.classes_, y_test)
        losses = -np.log(np.maximum(proba[np.arange(len(y_test)), true], 1e-300))
    test = np.argsort(-losses, kind="stable")[:n_test]
    return network, X_train, y_train, X_test[test], y_test[test]


def curvature_scale(network, X, y, curvature: str):
    """``trace(C) / P`` of the undamped matrix and its smallest eigenvalue
    (on the complement of the softmax's null space) over that scale."""
    adapter = find_adapter(network)(network)
    y_encoded = y if adapter.is_regressor else np.searchsorted(network.classes_, y)
    adapter = adapter.bind(X, y_encoded, None)  # fixes the objective's 1 / sum(s)
    weights = adapter.loss_scale * adapter.sample_weight_
    operator = adapter.hessian_operator(X, y_encoded, weights, curvature=curvature)
    scale = operator.diagonal().sum() / adapter.n_params
    H = operator.dense()
    if operator.null_space is not None:
        U = operator.null_space
        H += scale * (U @ U.T)  # not an eigenvalue of the objective's curvature
    return scale, np.linalg.eigvalsh(H)[0] / scale


def refused(min_eigenvalue: float, fraction: float) -> str:
    """Why the explainer refused ``fraction``: the damped matrix has a
    negative eigenvalue, or a (numerically) zero one."""
    return "indefinite" if min_eigenvalue + fraction < -1e-10 else "singular"


def spanning(scores: list, n: int) -> np.ndarray:
    """``n`` training indices spanning the range of the scores: quantiles of
    each example's largest absolute score, ranked per configuration and the
    ranks averaged."""
    ranks = [np.argsort(np.argsort(np.abs(s).max(axis=0))) for s in scores]
    order = np.argsort(np.mean(ranks, axis=0), kind="stable")
    return order[np.unique(np.linspace(0, len(order) - 1, n).round().astype(int))]


def measure(case: Case, n_test: int, n_removed: int, max_train: int, seed, n_jobs):
    start = time.perf_counter()
    network, X_train, y_train, X_t, y_t = fitted(case, n_test, max_train, seed)
    P = sum(W.size + b.size for W, b in zip(network.coefs_, network.intercepts_))
    progress(
        f"{case.name}, {case.activation} {case.hidden}, alpha={case.alpha:g}: "
        f"n={len(X_train)}, P={P}, trained in {network.n_iter_} iterations "
        f"({time.perf_counter() - start:.1f} s)"
    )
    scales, eigen, scores, errors = {}, {}, {}, {}
    for curvature in CURVATURES:
        scales[curvature], eigen[curvature] = curvature_scale(
            network, X_train, y_train, curvature
        )
        for fraction in FRACTIONS:
            damping = fraction * scales[curvature]
            explainer = InfluenceExplainer(
                network, method="if", hessian=curvature, damping=damping
            )
            try:
                with warnings.catch_warnings():  # the gap is reported instead
                    warnings.simplefilter("ignore", UserWarning)
                    explainer.fit(X_train, y_train)
            except SingularCurvatureError:
                errors[curvature, fraction] = refused(eigen[curvature], fraction)
                continue
            scores[curvature, fraction] = explainer.transform(X_t, y_t)
        progress(
            f"  {curvature}: trace/P = {scales[curvature]:.3g}, smallest "
            f"eigenvalue / (trace/P) = {eigen[curvature]:.2g} "
            f"({time.perf_counter() - start:.1f} s)"
        )
    removed = spanning(list(scores.values()), n_removed)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        explainer = InfluenceExplainer(network, method="if", hessian="identity")
        explainer.fit(X_train, y_train)
        loo = leave_one_out(explainer, X_t, y_t, removed, n_jobs=n_jobs)
    gap = explainer._influence.optimality_gap_
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            progress(f"  leave_one_out: {warning.message}")
    progress(
        f"  {len(removed)} warm-started refits ({loo.solver}) in "
        f"{time.perf_counter() - start:.1f} s; optimality gap {gap:.1e}"
    )
    pearson = {
        key: agreement(s[:, removed], loo.test_loss_change).pearson
        for key, s in scores.items()
    }
    return len(X_train), P, gap, scales, eigen, pearson, errors


def cell(key, pearson, errors) -> str:
    if key in errors:
        return errors[key]
    return f"{pearson[key]:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="two rows, 5 test points, 20 removals"
    )
    parser.add_argument("--n-test", type=int, default=10)
    parser.add_argument("--n-removed", type=int, default=40)
    parser.add_argument("--max-train", type=int, default=600)
    parser.add_argument(
        "--seed", type=int, default=0, help="random_state of the splits and networks"
    )
    parser.add_argument("--n-jobs", type=int, default=None)
    args = parser.parse_args()
    cases = QUICK_CASES if args.quick else CASES
    n_test, n_removed = (5, 20) if args.quick else (args.n_test, args.n_removed)

    header = ["data set", "activation", "hidden", "alpha", "P", "gap", "curvature"]
    header += [
        f"r @ {f:g}" + (" (auto)" if f == AUTO_FRACTION else "") for f in FRACTIONS
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    columns = {key: [] for key in ((c, f) for c in CURVATURES for f in FRACTIONS)}
    smallest = []
    for case in cases:
        n, P, gap, scales, eigen, pearson, errors = measure(
            case, n_test, n_removed, args.max_train, args.seed, args.n_jobs
        )
        for curvature in CURVATURES:
            row = [
                case.name,
                case.activation,
                str(case.hidden),
                f"{case.alpha:g}",
                str(P),
                f"{gap:.0e}",
                curvature,
            ] + [cell((curvature, f), pearson, errors) for f in FRACTIONS]
            print("| " + " | ".join(row) + " |", flush=True)
            for f in FRACTIONS:  # a refused cell counts as r = 0 below
                columns[curvature, f].append(pearson.get((curvature, f), 0.0))
        smallest.append((case, n, scales, eigen))
    print()
    print("Over the rows (a refused cell counts as r = 0; shortfall: the row's")
    print("best r over the fractions minus r at the fraction):")
    print()
    print("| curvature | statistic | " + " | ".join(f"{f:g}" for f in FRACTIONS) + " |")
    print("|---|---|" + "|".join("---" for _ in FRACTIONS) + "|")
    for curvature in CURVATURES:
        r = np.array([columns[curvature, f] for f in FRACTIONS])  # (fraction, row)
        shortfall = r.max(axis=0) - r
        for name, values in (
            ("median r", np.median(r, axis=1)),
            ("min r", r.min(axis=1)),
            ("mean shortfall", shortfall.mean(axis=1)),
            ("largest shortfall", shortfall.max(axis=1)),
        ):
            print(
                f"| {curvature} | {name} | "
                + " | ".join(f"{v:.3f}" for v in values)
                + " |"
            )
    print()
    print("Scale of the undamped matrices: trace/P, and the smallest eigenvalue")
    print("over trace/P (GN: Gauss-Newton):")
    print()
    names = ["data set", "activation", "n", "GN trace/P", "exact trace/P"]
    print("| " + " | ".join(names + ["GN min", "exact min"]) + " |")
    print("|---|---|---|---|---|---|---|")
    for case, n, scales, eigen in smallest:
        print(
            f"| {case.name} | {case.activation} | {n} "
            f"| {scales['gauss-newton']:.3g} | {scales['exact']:.3g} "
            f"| {eigen['gauss-newton']:.2g} | {eigen['exact']:.2g} |"
        )


if __name__ == "__main__":
    main()

"""Removal experiments for trees and forests (issue 19, Brophy et al. 2023).

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_tree_removal.py              # the docs' tables
    python benchmarks/bench_tree_removal.py --quick      # two datasets, 5 points
    python benchmarks/bench_tree_removal.py --peers-python ti/bin/python

The protocol of Brophy, Hammoudeh & Lowd (JMLR 2023): for each test point,
rank the training examples by a method's score, remove the top fraction of
its proponents, **refit the whole model** (scikit-learn's own ``fit``, same
parameters and seed: new splits, new trees) and measure the change of the
test point's loss (the log-loss of its true label). The table gives the
median over the test points: a forest gives a label probability 0 where
every tree's leaf is pure, its log-loss is then 36 (probabilities clipped at
machine epsilon, as ``sklearn.metrics.log_loss`` clips them), and one such
point moves a mean by more than all the others.
:func:`skrelatif.validation.removal_curve` does it for each method; every
method of a dataset is compared on the same test points, and the baselines
are the same number of random examples (the curve's own seeded baseline) and
the nearest training examples in the model's input space
(:class:`~skrelatif.NearestNeighborExplainer`, through ``proponents=``). A
larger rise is a better ranking.

Datasets (shipped with scikit-learn, or generated; 75/25 stratified split,
the first ``--n-test`` test points): breast cancer (569 rows), digits as
"is it a 0-4?" (1,797 rows), wine (178 rows, 3 classes), and 2,000
generated rows with 10% of the values missing. Models: a
``HistGradientBoostingClassifier`` (50 trees, ``early_stopping=False``) and a
``RandomForestClassifier`` (50 trees, ``min_samples_leaf=5``; a fully grown
forest has pure leaves, where first-order scores are 0). Methods: every one
the family answers.

Peers. With ``--peers-python`` (or ``SKRELATIF_PEERS_PYTHON``), tree-influence
0.1.7's BoostIn and LeafInfluence run on the same boosted model in a separate
environment (``benchmarks/peers/tree_influence_scores.py``; the data and our
model's decision function reach it through an ``.npz`` file, and it checks
that its model is the same). Their rankings go through the same refits, and
the table gives their time (``fit`` + ``get_local_influence``) beside ours
(``InfluenceExplainer.fit`` + ``transform``) and the median Spearman
correlation of their scores with ours per test point. The environment (its
PyPI sdist lacks the ``.pyx`` sources, so it is built from the GitHub
repository, and its Cython modules need numpy < 2)::

    python3 -m venv ti && ti/bin/pip install "numpy<2" "pandas<2.3" cython \
        scikit-learn==1.9.1 torch==2.13.0 setuptools wheel
    git clone https://github.com/jjbrophy47/tree_influence
    ti/bin/pip install --no-build-isolation --no-deps ./tree_influence

The Markdown table on stdout is written (unless ``--quick``) as
reStructuredText to ``doc/user_guide/trees_removal_table.inc``, which
``doc/user_guide/trees.rst`` includes; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_wine,
    make_classification,
)
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.model_selection import train_test_split

from skrelatif import InfluenceExplainer, NearestNeighborExplainer
from skrelatif.validation import removal_curve

HERE = Path(__file__).resolve().parent
RST = HERE.parent / "doc" / "user_guide" / "trees_removal_table.inc"
HGB_PARAMS = dict(max_iter=50, early_stopping=False, random_state=0)
FOREST_PARAMS = dict(n_estimators=50, min_samples_leaf=5, random_state=0)
FRACTIONS = (0.01, 0.05)


def _datasets(quick: bool):
    X, y = load_breast_cancer(return_X_y=True)
    yield "breast cancer", X, y
    X, y = load_digits(return_X_y=True)
    yield "digits 0-4", X, (y < 5).astype(int)
    if quick:
        return
    X, y = load_wine(return_X_y=True)
    yield "wine", X, y
    X, y = make_classification(
        n_samples=2000, n_features=20, n_informative=8, flip_y=0.05, random_state=0
    )
    X[np.random.RandomState(0).rand(*X.shape) < 0.1] = np.nan
    yield "generated, 10% missing", X, y


def _log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def _peers(python, X, y, X_test, y_test, model, methods):
    """tree-influence's scores and times, or None (see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp, "in.npz"), Path(tmp, "out.npz")
        np.savez(
            source, X_train=X, y_train=y, X_test=X_test, y_test=y_test,
            params=json.dumps(HGB_PARAMS), decision=model.decision_function(X_test),
        )  # fmt: skip
        run = subprocess.run(
            [python, str(HERE / "peers" / "tree_influence_scores.py"),
             str(source), str(target), ",".join(methods)],
            capture_output=True, text=True,
        )  # fmt: skip
        if run.returncode:
            _log(f"tree-influence failed: {run.stderr.strip()[-300:]}")
            return None
        return dict(np.load(target))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.median([spearmanr(u, v).statistic for u, v in zip(a, b)]))


def _experiment(name, model, X, y, X_test, y_test, methods, peers):
    """Rows (method, mean rise per fraction, time, Spearman with ours)."""
    rows = []
    n_ranked = max(1, round(max(FRACTIONS) * len(y)))
    ours = {}
    for method in methods:
        start = time.perf_counter()
        explainer = InfluenceExplainer(model, method=method).fit(X, y)
        scores = explainer.transform(X_test, y_test)
        seconds = time.perf_counter() - start
        ours[method] = scores
        proponents = np.argsort(-scores, axis=1, kind="stable")[:, :n_ranked]
        curve = removal_curve(
            explainer, X_test, y_test, fractions=FRACTIONS, random_state=0,
            proponents=proponents,
        )  # fmt: skip
        rows.append((method, np.median(curve.change, axis=0), seconds, ""))
        _log(f"{name}: {method} in {seconds:.2f} s")
    nearest = NearestNeighborExplainer(model).fit(X, y).explain(X_test, k=n_ranked)
    curve = removal_curve(
        explainer, X_test, y_test, fractions=FRACTIONS, random_state=0,
        proponents=nearest.proponents,
    )  # fmt: skip
    rows.append(("nearest neighbours", np.median(curve.change, axis=0), np.nan, ""))
    rows.append(("random", np.median(curve.random_change, axis=0), np.nan, ""))
    for peer, theirs in (peers or {}).items():
        if peer.endswith("_error"):
            reason = str(theirs)
            rows.append((f"tree-influence {peer[:-6]}", None, np.nan, reason))
            continue
        if peer.endswith("_seconds"):
            continue
        curve = removal_curve(
            explainer, X_test, y_test, fractions=FRACTIONS, random_state=0,
            proponents=np.argsort(-theirs, axis=1, kind="stable")[:, :n_ranked],
        )  # fmt: skip
        same = "boostin" if peer == "boostin" else "if"
        rho = _spearman(theirs, ours[same]) if same in ours else np.nan
        label = f"tree-influence {peer}"
        rows.append((label, np.median(curve.change, axis=0), peers[f"{peer}_seconds"],
                     f"{rho:.3f} with {same!r}"))  # fmt: skip
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n-test", type=int, default=None)
    parser.add_argument(
        "--peers-python", default=os.environ.get("SKRELATIF_PEERS_PYTHON")
    )
    args = parser.parse_args(argv)
    n_test = args.n_test or (5 if args.quick else 20)
    total = time.perf_counter()
    header = (
        "| dataset | model | method | median rise of the test loss, "
        + " | ".join(f"{f:.0%} removed" for f in FRACTIONS)
        + " | time (s) | Spearman with ours |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    table = []
    for name, X, y in _datasets(args.quick):
        X, X_test, y, y_test = train_test_split(
            X, y, test_size=0.25, stratify=y, random_state=0
        )
        X_test, y_test = X_test[:n_test], y_test[:n_test]
        for label, model, methods in (
            ("boosted trees", HistGradientBoostingClassifier(**HGB_PARAMS),
             ("boostin", "if", "theta-relatif", "l-relatif", "newton")),
            ("forest", RandomForestClassifier(**FOREST_PARAMS),
             ("if", "theta-relatif", "l-relatif", "newton")),
        ):  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                model.fit(X, y)
            peers = None
            if label == "boosted trees" and args.peers_python:
                wanted = ["boostin"] + ([] if args.quick else ["leaf_influence"])
                peers = _peers(args.peers_python, X, y, X_test, y_test, model, wanted)
            for method, rise, seconds, rho in _experiment(
                name, model, X, y, X_test, y_test, methods, peers
            ):
                cells = (
                    ["failed"] * len(FRACTIONS)
                    if rise is None
                    else [f"{r:.4f}" for r in rise]
                )
                time_cell = "" if np.isnan(seconds) else f"{seconds:.2f}"
                row = (name, label, method, *cells, time_cell, rho)
                print("| " + " | ".join(row) + " |")
                table.append(row)
    seconds = time.perf_counter() - total
    _log(f"total {seconds:.0f} s")
    if not args.quick:
        RST.write_text(_rst(table, n_test, seconds))
        _log(f"wrote {RST}")


def _rst(table, n_test, seconds) -> str:
    """The table as the reStructuredText included by ``trees.rst``."""
    lines = [
        ".. Written by benchmarks/bench_tree_removal.py; do not edit.",
        "",
        ".. csv-table::",
        '   :header: "dataset", "model", "method", '
        + ", ".join(f'"{f:.0%} removed"' for f in FRACTIONS)
        + ', "time (s)", "Spearman with ours"',
        "",
    ]
    previous = (None, None)
    for name, label, method, *rest in table:
        shown = ("", "") if (name, label) == previous else (name, label)
        previous = (name, label)
        cells = [*shown, method, *rest]
        lines.append("   " + ",".join(f'"{c}"' if "," in c else c for c in cells))
    lines += [
        "",
        f"Median over {n_test} test points of the rise of the test loss; the "
        f"whole run took {seconds / 60:.1f} minutes on one thread.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

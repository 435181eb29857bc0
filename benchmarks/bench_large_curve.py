"""Accuracy against time on the large text shapes of ``bench_large.py``
(issue 21): the figure of the user guide's scaling page.

Run from the repository root (after ``pip install ".[plot]"``)::

    python benchmarks/bench_large_curve.py            # both shapes (about 15 min)
    python benchmarks/bench_large_curve.py --quick    # small versions

For each shape (the models and data of ``bench_large.py``), ``"if"``
scores of ``N_TEST`` test points against ``N_TRAIN`` training examples, by
every solver that applies, against a reference solved by conjugate
gradients to a relative residual of 1e-11:

- ``"cg"`` with the block preconditioner and with the diagonal one
  (``preconditioner="jacobi"``), at ``tol`` from 1e-2 to 1e-8;
- ``"data-space"`` (binary shape only: exact, its n K = 20,000 Gram
  system factorised once).

Time: the solver's ``fit`` (preconditioner or factorisation) spread over
1,000 test points, plus the solve of the ``N_TEST`` test points (one batch,
as ``explain`` makes them, the check of its residual included; not the
scores' product with the training gradients) per test point; wall seconds
on the machine as it is (run it alone). Accuracy: the largest difference
of the scores from the reference, relative to the largest reference
score. The figure goes to ``--out`` (default
``doc/_static/large_accuracy_time.png``) and the measurements to standard
output as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_large import problem  # noqa: E402

N_TEST, N_TRAIN = 16, 1000
TOLS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-8)
AMORTISED_OVER = 1000


def _measure(shape, quick):
    from skrelatif import InfluenceExplainer
    from skrelatif._solvers import ConjugateGradientInverse, DataSpaceInverse

    model, X, y, X_test = problem(shape, quick)
    explainer = InfluenceExplainer(model, method="if", solver="cg").fit(X, y)
    state = explainer._influence
    operator, damping = state._operator, state.damping_
    rows = np.sort(np.random.RandomState(0).choice(len(y), N_TRAIN, False))
    G = state.adapter.gradients(X[rows].astype(np.float64), state.direction_[rows])
    Gt = state.test_gradients(X_test[:N_TEST], model.predict(X_test[:N_TEST]))
    reference = ConjugateGradientInverse(damping, options={"tol": 1e-11})
    exact = reference.fit(operator).solve(Gt) @ G.T
    scale = np.abs(exact).max()
    runs = []

    def record(name, tol, solver, fit_s):
        start = time.perf_counter()
        solved = solver.solve(Gt)
        solve_s = time.perf_counter() - start
        scores = solved @ G.T
        runs.append(
            {
                "shape": shape,
                "solver": name,
                "tol": tol,
                "fit_s": fit_s,
                "solve_s_per_test": solve_s / N_TEST,
                "s_per_test": fit_s / AMORTISED_OVER + solve_s / N_TEST,
                "error": float(np.abs(scores - exact).max() / scale),
                "iterations": getattr(solver, "n_iter_", None),
            }
        )
        print(json.dumps(runs[-1]), flush=True)

    for preconditioner in ("block", "jacobi"):
        for tol in TOLS:
            options = {"tol": tol, "preconditioner": preconditioner, "max_iter": 5000}
            solver = ConjugateGradientInverse(damping, options=options)
            start = time.perf_counter()
            solver.fit(operator)
            record(f"cg ({preconditioner})", tol, solver, time.perf_counter() - start)
    if shape == "binary":
        solver = DataSpaceInverse(damping)
        start = time.perf_counter()
        solver.fit(operator)
        record("data-space", None, solver, time.perf_counter() - start)
    return runs


def _plot(runs, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = list(dict.fromkeys(r["shape"] for r in runs))
    titles = {
        "binary": "binary, 20,000 x 100,000 words (P = 100,001)",
        "multiclass": "20 classes, 10,000 x 50,000 words (P = 1,000,020)",
    }
    fig, axes = plt.subplots(1, len(shapes), figsize=(5.2 * len(shapes), 4.2))
    axes = np.atleast_1d(axes)
    markers = {"cg (block)": "o-", "cg (jacobi)": "s--", "data-space": "*"}
    for ax, shape in zip(axes, shapes):
        for name, style in markers.items():
            mine = [r for r in runs if r["shape"] == shape and r["solver"] == name]
            if not mine:
                continue
            x = [r["s_per_test"] for r in mine]
            e = [max(r["error"], 1e-16) for r in mine]
            ax.loglog(
                x, e, style, label=name, markersize=12 if name == "data-space" else 6
            )
            for r, xi, ei in zip(mine, x, e):
                if r["tol"] is not None and name == "cg (block)":
                    ax.annotate(f"tol {r['tol']:.0e}", (xi, ei), fontsize=7,
                                textcoords="offset points", xytext=(4, 4))  # fmt: skip
        ax.set_title(titles.get(shape, shape), fontsize=9)
        ax.set_xlabel("seconds per test point (fit over 1,000 test points)")
        ax.set_ylabel("largest score error / largest score")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--shapes", nargs="*", default=["binary", "multiclass"])
    parser.add_argument("--out", default="doc/_static/large_accuracy_time.png")
    args = parser.parse_args(argv)
    runs = [r for shape in args.shapes for r in _measure(shape, args.quick)]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    _plot(runs, args.out)


if __name__ == "__main__":
    main()

"""``solver="auto"`` against every solver, on the shapes of the user guide.

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_solvers.py            # every shape (about 20 min)
    python benchmarks/bench_solvers.py --quick    # the small shapes only

For each shape and method it times ``fit`` plus ``explain`` of 100 test
points (the cost model's own assumption, ``skrelatif._curvature.TEST_POINTS``)
with every solver the family offers and with ``solver="auto"``, each in a
fresh process (so that memory and BLAS threads start clean; a run shorter
than 2 s is repeated and the median of 3 kept), and prints a
Markdown table: the time of each solver (or, above ``--budget`` seconds by
the cost model's own estimate, "skipped" with that estimate; a run that
takes more than twice the budget is stopped), what ``auto``
chose, its time and its ratio to the fastest solver measured, and the
``normaliser_error_`` of approximate solvers (their error on 16 training
examples against conjugate gradients).

The text shapes are the newcomer's pipelines of the issue tracker:
``TfidfVectorizer(ngram_range=(1, 2), max_features=m)`` +
``LogisticRegression`` on 2,700 generated documents of 5 classes, with ``m``
chosen so that the model has 18,930 or 39,850 parameters.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings

import numpy as np

SHAPES = {
    "digits": "digits, 10 classes (P = 650)",
    "cancer": "breast cancer, binary (P = 31)",
    "dense": "Gaussian 5,000 x 784, 10 classes (P = 7,850)",
    "text19k": "text 1-2-grams, 5 classes (P = 18,930)",
    "text40k": "text 1-2-grams, 5 classes (P = 39,850)",
    "mlp": "digits, MLP (32,) tanh (P = 2,410)",
}
QUICK = ("digits", "cancer", "mlp")
METHODS = ("l-relatif", "if")


def documents(n, n_classes=5, vocabulary=20_000, seed=0):
    """Generated documents: Zipf-distributed words, a third of each
    document's words drawn from a class-specific vocabulary."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    offsets = rng.integers(0, vocabulary, n_classes)
    docs = []
    for label in y:
        length = int(rng.integers(60, 160))
        words = (rng.zipf(1.3, length) - 1) % vocabulary
        topical = rng.random(length) < 1 / 3
        words = np.where(topical, (words + offsets[label]) % vocabulary, words)
        docs.append(" ".join(f"w{w}" for w in words))
    return docs, y


def problem(shape):
    """(model, X_train, y_train, X_test) of a shape, the model fitted."""
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if shape in ("digits", "mlp"):
        X, y = load_digits(return_X_y=True)
        X_train, y_train, X_test = X[:1500], y[:1500], X[1500:1600]
        if shape == "digits":
            final = LogisticRegression(C=0.1, tol=1e-8, max_iter=1000)
        else:
            final = MLPClassifier(
                (32,), activation="tanh", alpha=1.0, solver="lbfgs",
                tol=1e-10, max_iter=3000, random_state=0,
            )  # fmt: skip
        model = make_pipeline(StandardScaler(), final)
    elif shape == "cancer":
        X, y = load_breast_cancer(return_X_y=True)
        X_train, y_train, X_test = X[:469], y[:469], X[469:]
        model = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-8))
    elif shape == "dense":
        rng = np.random.default_rng(0)
        means = rng.standard_normal((10, 784)) * 0.3
        y = rng.integers(0, 10, 5100)
        X = means[y] + rng.standard_normal((5100, 784))
        X_train, y_train, X_test = X[:5000], y[:5000], X[5000:]
        model = LogisticRegression(C=0.01, tol=1e-6, max_iter=300)
    else:
        docs, y = documents(2800)
        features = {"text19k": 3785, "text40k": 7969}[shape]
        X_train, y_train, X_test = docs[:2700], y[:2700], docs[2700:]
        model = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), max_features=features),
            LogisticRegression(tol=1e-6, max_iter=1000),
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_train, y_train)
    return model, X_train, y_train, X_test


def run_one(shape, method, solver, budget):
    """Time one (shape, method, solver) in this process: a JSON line."""
    from skrelatif import InfluenceExplainer
    from skrelatif import _curvature as curvature
    from skrelatif._adapters import find_adapter
    from skrelatif._base import _final_step
    from skrelatif._solvers import SOLVERS, ProblemSize

    model, X_train, y_train, X_test = problem(shape)
    explainer = InfluenceExplainer(model, method=method, solver=solver)
    if solver != "auto":  # the cost model's estimate, to skip hopeless runs
        final = _final_step(model)
        adapter = find_adapter(final)(final)
        Xt = model[:-1].transform(X_train) if hasattr(model, "steps") else X_train
        hessian = next(iter(type(adapter).curvatures))
        size = ProblemSize(
            n_train=Xt.shape[0],
            n_params=adapter.n_params,
            n_outputs=adapter.n_outputs,
            n_solves=curvature.n_solves(method, Xt.shape[0], adapter.n_outputs),
            **adapter.curvature_costs(Xt, hessian),
        )
        estimate = SOLVERS[solver].estimate(size)
        if estimate is not None and estimate.seconds > budget:
            return {"skipped": estimate.seconds}
    times = []
    while len(times) < (1 if times and times[0] > 2 else 3):  # short: median of 3
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            explainer.fit(X_train, y_train)
            explainer.explain(X_test, k=5)
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    return {
        "seconds": seconds,
        "solver": explainer.solver_,
        "error": explainer.normaliser_error_,
    }


def candidates(shape):
    from skrelatif import _curvature as curvature
    from skrelatif._adapters import find_adapter
    from skrelatif._base import _final_step

    model = problem(shape)[0] if shape in ("mlp",) else None
    if model is None:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression()
    adapter = find_adapter(_final_step(model))
    hessian = next(iter(adapter.curvatures))
    names = curvature.candidates(adapter, hessian)
    return [n for n in names if n != "lissa"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--shapes", nargs="*", default=None)
    parser.add_argument("--one", nargs=3, metavar=("SHAPE", "METHOD", "SOLVER"))
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(*args.one, args.budget)))
        return
    shapes = args.shapes or (QUICK if args.quick else tuple(SHAPES))
    rows = []
    for shape in shapes:
        solvers = candidates(shape)
        for method in METHODS:
            results = {}
            for solver in [*solvers, "auto"]:
                print(f"{shape} {method} {solver} ...", file=sys.stderr, flush=True)
                try:
                    done = subprocess.run(
                        [sys.executable, __file__, "--budget", str(args.budget),
                         "--one", shape, method, solver],
                        capture_output=True, text=True, check=False,
                        timeout=2 * args.budget,
                    )  # fmt: skip
                except subprocess.TimeoutExpired:
                    results[solver] = {"timeout": 2 * args.budget}
                    print(f"  {results[solver]}", file=sys.stderr, flush=True)
                    continue
                lines = done.stdout.strip().splitlines()
                if done.returncode or not lines:
                    results[solver] = {"failed": done.stderr.strip()[-200:]}
                else:
                    results[solver] = json.loads(lines[-1])
                print(f"  {results[solver]}", file=sys.stderr, flush=True)
            rows.append((shape, method, solvers, results))
    print(table(rows))


def _cell(result):
    if "seconds" in result:
        text = f"{result['seconds']:.2f} s"
        if result.get("error") is not None:
            text += f" (err {result['error']:.0e})"
        return text
    if "skipped" in result:
        return f"skipped (est. {result['skipped']:.0f} s)"
    if "timeout" in result:
        return f"> {result['timeout']:.0f} s (stopped)"
    return "failed"


def table(rows):
    names = ["cholesky", "block-diagonal", "cg", "kfac", "ekfac", "data-space"]
    lines = [
        "| shape | method | " + " | ".join(names) + " | auto chose | auto | ratio |",
        "|---" * (len(names) + 5) + "|",
    ]
    for shape, method, _, results in rows:
        measured = [
            r["seconds"] for n, r in results.items() if n != "auto" and "seconds" in r
        ]
        auto = results["auto"]
        ratio = (
            f"{auto['seconds'] / min(measured):.2f}"
            if "seconds" in auto and measured
            else "-"
        )
        cells = [_cell(results[n]) if n in results else "n/a" for n in names]
        lines.append(
            f"| {SHAPES[shape]} | {method} | " + " | ".join(cells)
            + f" | {auto.get('solver', '-')} | {_cell(auto)} | {ratio} |"
        )  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()

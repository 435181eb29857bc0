"""Time and joblib task counts of ``fit`` + ``explain``: local and on a Dask cluster.

Run from the repository root (after ``pip install ".[dask]"``)::

    python benchmarks/bench_dask.py                      # 10,000 x 100, K = 5
    python benchmarks/bench_dask.py --n-train 20000 --n-features 200 --repeat 1

A generated problem (``make_classification``: ``--n-train`` training
examples, ``--n-features`` standardised features, ``--n-classes`` classes,
``LogisticRegression(C=0.1)``) is explained for 100 test points (``explain``,
k = 5) two ways: ``solver="cg"`` with ``method="if"`` and ``solver="cholesky"``
with ``method="l-relatif"``. Each is run three ways: in this process
(``n_jobs=1``), with joblib's default backend (loky) and ``n_jobs=2``, and
on a ``distributed.LocalCluster(n_workers=2, threads_per_worker=1)`` with
``joblib.parallel_config(backend="dask")`` and ``n_jobs=-1``. All run under
``sklearn.config_context(working_memory=...)`` (default 16 MiB here, so that
a pass over the training set is several chunks: 8 per Hessian product of
``"cg"``; at scikit-learn's default of 1024 MiB each pass of this problem is
one chunk, which runs in this process whatever ``n_jobs``).

It prints the median wall time of ``--repeat`` runs, the number of tasks
given to joblib per run (``delayed`` calls; for Dask also the tasks the
scheduler ran), and the largest difference of the proponent scores from the
``n_jobs=1`` run, relative to the largest score, with whether the
proponents are the same. ``solver="cg"`` stops at a relative residual of
1e-8, and BLAS rounds differently with one thread per worker than with two
in this process, so its scores agree to about the solver's tolerance.
"""

import argparse
import collections
import contextlib
import time

import joblib
import numpy as np
from sklearn import config_context
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import skrelatif._utils
from skrelatif import InfluenceExplainer

CASES = [("cg", "if"), ("cholesky", "l-relatif")]
TASKS = collections.Counter()


def _count_tasks():
    """Count the tasks skrelatif gives to joblib (its ``delayed`` calls)."""
    delayed = skrelatif._utils.delayed

    def counting(function):
        TASKS["delayed"] += 1
        return delayed(function)

    skrelatif._utils.delayed = counting


def run(model, data, solver, method, n_jobs, repeat, client=None):
    X, y, X_test = data
    times, tasks, scheduler_tasks = [], [], []
    for _ in range(repeat):
        TASKS.clear()
        stream = contextlib.nullcontext()
        if client is not None:
            from distributed import get_task_stream

            stream = get_task_stream(client)
        with stream as log:
            start = time.perf_counter()
            explainer = InfluenceExplainer(
                model, method=method, solver=solver, n_jobs=n_jobs
            ).fit(X, y)
            explanation = explainer.explain(X_test, k=5)
            times.append(time.perf_counter() - start)
        tasks.append(TASKS["delayed"])
        if client is not None:
            scheduler_tasks.append(len(log.data))
    return float(np.median(times)), tasks, scheduler_tasks, explanation


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-features", type=int, default=100)
    parser.add_argument("--n-classes", type=int, default=5)
    parser.add_argument("--working-memory", type=float, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    _count_tasks()
    X, y = make_classification(
        n_samples=args.n_train + 100,
        n_features=args.n_features,
        n_informative=args.n_features // 4,
        n_classes=args.n_classes,
        random_state=0,
    )
    X = StandardScaler().fit_transform(X)
    data = X[: args.n_train], y[: args.n_train], X[args.n_train :]
    model = LogisticRegression(C=0.1, tol=1e-10, max_iter=10_000).fit(*data[:2])
    P = args.n_classes * (args.n_features + 1)
    print(
        f"{args.n_train} x {args.n_features}, K = {args.n_classes} ({P} parameters), "
        f"100 test points, working_memory = {args.working_memory:g} MiB, "
        f"median of {args.repeat}"
    )
    print(
        f"{'solver':<8} {'method':<10} {'run':<26} {'time s':>7} {'tasks':>12} "
        f"{'dask tasks':>12} {'score diff':>10} {'same top-5':>10}"
    )

    import distributed

    with (
        config_context(working_memory=args.working_memory),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        for solver, method in CASES:
            reference = None
            # (joblib.parallel_config takes effect when it is created: make it
            # in the with statement only)
            ways = [
                ("local n_jobs=1", 1, None),
                ("local n_jobs=2 (loky)", 2, None),
                ("LocalCluster 2x1 (dask)", -1, client),
            ]
            for name, n_jobs, dask_client in ways:
                with (
                    contextlib.nullcontext()
                    if dask_client is None
                    else joblib.parallel_config(backend="dask")
                ):
                    seconds, tasks, scheduler, explanation = run(
                        model, data, solver, method, n_jobs, args.repeat, dask_client
                    )
                if reference is None:
                    reference = explanation
                scores = explanation.proponent_scores
                expected = reference.proponent_scores
                diff = np.max(np.abs(scores - expected)) / np.max(np.abs(expected))
                same = np.array_equal(explanation.proponents, reference.proponents)
                print(
                    f"{solver:<8} {method:<10} {name:<26} {seconds:7.2f} "
                    f"{'/'.join(map(str, sorted(set(tasks)))):>12} "
                    f"{'/'.join(map(str, sorted(set(scheduler)))) or '-':>12} "
                    f"{diff:10.1e} {str(same):>10}",
                    flush=True,
                )


if __name__ == "__main__":
    main()

"""Large sparse text models (issue 21): exact RelatIF through the data space,
batched iterative solves, and their accuracy against a tight reference.

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_large.py              # both shapes, once each
    python benchmarks/bench_large.py --quick      # small versions (about a minute)
    python benchmarks/bench_large.py --shapes binary --repeats 3

Shapes (generated TF-IDF documents: Zipf-distributed words, a share of each
document's words drawn from a class-specific vocabulary, some labels
flipped; no network):

- ``binary``: 20,000 training documents x 100,000 words, ``LogisticRegression``
  (C = 1), P = 100,001. ``method="l-relatif"`` with ``solver="data-space"``
  (exact): ``fit``, then ``explain`` of 1,000 test points (``k=10``).
- ``multiclass-relatif``: the same model, ``method="l-relatif"`` with
  ``solver="cg"`` and the normalisers from its block preconditioner
  (``normalisers="preconditioner"``): ``fit``, and accuracy on 20 test
  points x 200 training examples against conjugate gradients at 1e-10.
- ``multiclass``: 10,000 x 50,000 words, 20 classes, P = 1,000,020. ``"if"``
  with ``solver="cg"`` (batched, ``tol=1e-8``, preconditioned by the exact
  block of the intercepts and the densest words, or with ``--preconditioner
  jacobi`` by the diagonal; the data-space Gram system, n K = 200,000, does
  not fit), for 1,000 test points or ``--multiclass-test`` of them (the time
  per test point is reported), and its ratio to a floor measured in the same
  run: the 2K sparse products of one iteration for one batch of test
  points (``X̃ V_k`` and ``X̃^T U_k``, in the solver's layout and threads)
  times the passes made.

Each timed step runs in a fresh process (its peak resident memory is the
process's ``ru_maxrss``, the data included), timed in wall seconds and in
CPU seconds (all BLAS threads; on a machine shared with other jobs the wall
time grows with their load, the CPU time hardly); ``--repeats`` runs the
whole step that many times and reports the median. The accuracy of the exact
solver is checked against conjugate gradients run to a relative residual
of 1e-12 on 20 test points and a sample of 200 training examples: the
largest difference of the l-RelatIF scores (and of the self-influence)
relative to the largest reference value, and the largest relative
difference of any one score.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings

import numpy as np

SHAPES = {
    "binary": dict(n_train=20_000, n_words=100_000, n_classes=2, n_test=1000),
    "multiclass": dict(n_train=10_000, n_words=50_000, n_classes=20, n_test=1000),
}
QUICK = {
    "binary": dict(n_train=2_000, n_words=10_000, n_classes=2, n_test=200),
    "multiclass": dict(n_train=1_000, n_words=5_000, n_classes=20, n_test=100),
}
#: Test points and training examples of the accuracy check.
CHECK_TEST, CHECK_TRAIN = 20, 200


def tfidf_documents(n, n_words, n_classes=2, *, seed=0, topical=0.1, flip=0.05):
    """TF-IDF rows of ``n`` generated documents and their labels.

    60-160 words a document, Zipf-distributed (exponent 1.3) over ``n_words``
    words; a ``topical`` share of them shifted into a vocabulary of the
    document's class; a ``flip`` share of the labels replaced at random.
    """
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfTransformer

    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    offsets = rng.integers(0, n_words, n_classes)
    lengths = rng.integers(60, 160, n)
    rows = np.repeat(np.arange(n), lengths)
    words = (rng.zipf(1.3, rows.size) - 1) % n_words
    shifted = rng.random(rows.size) < topical
    words = np.where(shifted, (words + offsets[y[rows]]) % n_words, words)
    counts = sparse.csr_matrix((np.ones(rows.size), (rows, words)), shape=(n, n_words))
    counts.sum_duplicates()
    flipped = rng.random(n) < flip
    y[flipped] = rng.integers(0, n_classes, int(flipped.sum()))
    return TfidfTransformer().fit_transform(counts), y


def problem(shape, quick):
    """(model, X_train, y_train, X_test) of a shape, the model fitted."""
    from sklearn.linear_model import LogisticRegression

    size = (QUICK if quick else SHAPES)[shape]
    n, n_test = size["n_train"], size["n_test"]
    X, y = tfidf_documents(n + n_test, size["n_words"], size["n_classes"])
    model = LogisticRegression(C=1.0, tol=1e-8, max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X[:n], y[:n])
    return model, X[:n], y[:n], X[n:]


def _peak_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _cpu_seconds():
    """CPU seconds of this process so far (every BLAS thread): on a machine
    shared with other jobs, a figure that their load does not inflate."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cg_reference(explainer, model, X, y, X_test, rows, tol=1e-12, chunk=None):
    """``g_t^T H^-1 ĝ_i`` and ``ĝ_i^T H^-1 ĝ_i`` by conjugate gradients
    (``chunk`` right-hand sides at a time)."""
    from skrelatif._solvers import ConjugateGradientInverse

    state = explainer._influence
    cg = ConjugateGradientInverse(state.damping_, options={"tol": tol})
    cg.fit(state._operator)
    adapter = state.adapter
    G = adapter.gradients(X[rows].astype(np.float64), state.direction_[rows])
    Gt = state.test_gradients(X_test, model.predict(X_test))
    B = np.vstack([Gt, G])
    chunk = chunk or len(B)
    solved = np.vstack([cg.solve(B[i : i + chunk]) for i in range(0, len(B), chunk)])
    residual = np.concatenate(
        [
            np.linalg.norm(
                cg.operator_.matvec(solved[i : i + chunk])
                + state.damping_ * solved[i : i + chunk]
                - B[i : i + chunk],
                axis=1,
            )
            for i in range(0, len(B), chunk)
        ]
    ) / np.linalg.norm(B, axis=1)
    cross = solved[: len(Gt)] @ G.T
    quad = np.einsum("ij,ij->i", solved[len(Gt) :], G)
    return cross, quad, float(residual.max()), cg.n_iter_


def run_binary(quick):
    """fit + explain with the exact data-space solver; accuracy against CG."""
    from skrelatif import InfluenceExplainer

    model, X, y, X_test = problem("binary", quick)
    out = {"P": int(model.coef_.size + 1), "n": X.shape[0], "nnz/row": X.nnz / len(y)}
    explainer = InfluenceExplainer(model, method="l-relatif", solver="data-space")
    start, cpu = time.perf_counter(), _cpu_seconds()
    explainer.fit(X, y)
    out["fit_s"] = time.perf_counter() - start
    out["fit_cpu_s"] = _cpu_seconds() - cpu
    out["direct_blocks"] = explainer._influence.solver_.n_direct_
    start, cpu = time.perf_counter(), _cpu_seconds()
    explainer.explain(X_test, k=10)
    out["explain_s"] = time.perf_counter() - start
    out["explain_cpu_s"] = _cpu_seconds() - cpu
    out["n_test"] = X_test.shape[0]
    out["peak_gib"] = _peak_gib()
    # accuracy: 20 test points x 200 training examples against CG at 1e-12
    rows = np.sort(np.random.RandomState(0).choice(len(y), CHECK_TRAIN, False))
    start = time.perf_counter()
    cross, quad, residual, n_iter = _cg_reference(
        explainer, model, X, y, X_test[:CHECK_TEST], rows
    )
    out["reference_s"] = time.perf_counter() - start
    out["reference_residual"], out["reference_iterations"] = residual, n_iter
    reference = cross / np.sqrt(quad)
    scores = explainer.transform(X_test[:CHECK_TEST])[:, rows]
    state = explainer._influence
    own = state.weights_[rows] * state.grad_norm_[rows] ** 2 * quad
    difference = np.abs(scores - reference)
    out["score_error"] = float(difference.max() / np.abs(reference).max())
    out["score_error_each"] = float(np.max(difference / np.abs(reference)))
    out["self_influence_error"] = float(
        np.abs(explainer.self_influence_[rows] - own).max() / np.abs(own).max()
    )
    return out


def run_multiclass(quick, n_test=None, preconditioner="auto", tol=1e-8):
    """``"if"`` for ``n_test`` test points with batched conjugate gradients
    (one pass over the training set per iteration for all of them),
    preconditioned by the intercepts' and densest words' block
    (``"auto"``) or by the diagonal (``"jacobi"``)."""
    from skrelatif import InfluenceExplainer

    model, X, y, X_test = problem("multiclass", quick)
    X_test = X_test[:n_test] if n_test else X_test
    out = {"P": int(model.coef_.size + model.intercept_.size), "n": X.shape[0]}
    options = {"tol": tol, "preconditioner": preconditioner}
    explainer = InfluenceExplainer(
        model, method="if", solver="cg", solver_options=options
    )
    start, cpu = time.perf_counter(), _cpu_seconds()
    explainer.fit(X, y)
    out["fit_s"] = time.perf_counter() - start
    explainer.explain(X_test, k=10)
    out["if_s"] = time.perf_counter() - start
    out["if_cpu_s"] = _cpu_seconds() - cpu
    out["n_test"] = X_test.shape[0]
    out["if_s_per_test"] = out["if_s"] / X_test.shape[0]
    solver = explainer._influence.solver_
    out["preconditioner"] = type(solver.preconditioner_).__name__
    out["iterations"] = solver.n_iter_
    out["residual"] = solver.residual_
    out["tol"] = tol
    out["peak_gib"] = _peak_gib()
    # each iteration: one pass (2K sparse products) per batch of test points
    from skrelatif._utils import chunk_size

    state = explainer._influence
    batch = chunk_size(state.test_row_bytes(), out["n_test"])
    out["batch"] = batch
    out["product_floor_s"] = _product_floor(X, model.classes_.size, batch)
    passes = (out["iterations"] + 1) * -(-out["n_test"] // batch)
    out["ratio_to_floor"] = out["if_s"] / (passes * out["product_floor_s"])
    return out


def run_multiclass_relatif(quick):
    """``"l-relatif"`` ``fit`` with normalisers from the block preconditioner
    (``normalisers="preconditioner"``: no pass over the data), its own
    ``normaliser_error_``, and its accuracy on ``CHECK_TEST`` test points x
    ``CHECK_TRAIN`` training examples against conjugate gradients at 1e-10:
    the normalisers' largest relative error, and per test point the Spearman
    correlation and top-10 overlap of the scores with the exact ones."""
    from scipy.stats import spearmanr

    from skrelatif import InfluenceExplainer

    model, X, y, X_test = problem("multiclass", quick)
    out = {"P": int(model.coef_.size + model.intercept_.size), "n": X.shape[0]}
    options = {"tol": 1e-8, "normalisers": "preconditioner"}
    explainer = InfluenceExplainer(
        model, method="l-relatif", solver="cg", solver_options=options
    )
    start, cpu = time.perf_counter(), _cpu_seconds()
    explainer.fit(X, y)
    out["fit_s"] = time.perf_counter() - start
    out["fit_cpu_s"] = _cpu_seconds() - cpu
    out["normaliser_error_"] = explainer.normaliser_error_
    out["peak_gib"] = _peak_gib()
    rows = np.sort(np.random.RandomState(0).choice(len(y), CHECK_TRAIN, False))
    start = time.perf_counter()
    scores = explainer.transform(X_test[:CHECK_TEST])[:, rows]
    out["explain_20_s"] = time.perf_counter() - start
    start = time.perf_counter()
    cross, quad, residual, _ = _cg_reference(
        explainer, model, X, y, X_test[:CHECK_TEST], rows, tol=1e-10, chunk=40
    )
    out["reference_s"] = time.perf_counter() - start
    out["reference_residual"] = residual
    state = explainer._influence
    approx = state.self_influence_[rows] / (
        state.weights_[rows] * state.grad_norm_[rows] ** 2
    )
    out["normaliser_error_sample"] = float(
        np.max(np.abs(np.sqrt(approx) - np.sqrt(quad)) / np.sqrt(quad))
    )
    exact = cross / np.sqrt(quad)
    spearman = [spearmanr(a, b)[0] for a, b in zip(scores, exact)]
    top = [
        len(set(np.argsort(-a)[:10]) & set(np.argsort(-b)[:10])) / 10
        for a, b in zip(scores, exact)
    ]
    out["spearman_min"], out["spearman_median"] = min(spearman), np.median(spearman)
    out["top10_min"], out["top10_mean"] = min(top), float(np.mean(top))
    return out


def _product_floor(X, n_outputs, batch, repeats=3):
    """The floor of one conjugate-gradient iteration for one batch of
    ``batch`` test points: the 2K sparse products ``X̃ V_k`` and
    ``X̃^T U_k`` with dense (d, batch) and (n, batch) blocks, the layout
    and threads the solver uses (X̃ and X̃^T as CSR, the K products of a
    stage on as many threads as BLAS may use), nothing else; median of
    ``repeats``."""
    from scipy import sparse

    from skrelatif._utils import compute_threads, thread_map

    design = sparse.hstack([X, np.ones((X.shape[0], 1))], format="csr")
    design_t = design.T.tocsr()
    rng = np.random.default_rng(0)
    V = rng.standard_normal((n_outputs, design.shape[1], batch))
    U = rng.standard_normal((n_outputs, design.shape[0], batch))
    threads = compute_threads()

    def forward(k):
        design @ V[k]

    def backward(k):
        design_t @ U[k]

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        thread_map(forward, range(n_outputs), threads)
        thread_map(backward, range(n_outputs), threads)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--shapes", nargs="*", default=[*SHAPES, "multiclass-relatif"],
        help="binary, multiclass, multiclass-relatif",
    )  # fmt: skip
    parser.add_argument(
        "--multiclass-test", type=int, default=None,
        help="test points of the multiclass 'if' run (default: all 1,000)",
    )  # fmt: skip
    parser.add_argument(
        "--preconditioner", default="auto", choices=["auto", "jacobi", "block"],
        help="of the multiclass run's conjugate gradients",
    )  # fmt: skip
    parser.add_argument(
        "--tol", type=float, default=1e-8,
        help="of the multiclass run's conjugate gradients",
    )  # fmt: skip
    parser.add_argument("--one", metavar="SHAPE")
    args = parser.parse_args(argv)
    if args.one:
        if args.one == "binary":
            print(json.dumps(run_binary(args.quick)))
        elif args.one == "multiclass-relatif":
            print(json.dumps(run_multiclass_relatif(args.quick)))
        else:
            print(
                json.dumps(
                    run_multiclass(
                        args.quick, args.multiclass_test, args.preconditioner, args.tol
                    )
                )
            )
        return
    for shape in args.shapes:
        runs = []
        for _ in range(args.repeats):
            command = [sys.executable, __file__, "--one", shape]
            if args.multiclass_test:
                command += ["--multiclass-test", str(args.multiclass_test)]
            command += ["--preconditioner", args.preconditioner]
            command += ["--tol", str(args.tol)]
            done = subprocess.run(
                command + ["--quick"] * args.quick,
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode:
                print(done.stderr[-2000:], file=sys.stderr)
                break
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(shape, runs[-1], file=sys.stderr, flush=True)
        if runs:
            keys = [k for k, v in runs[0].items() if isinstance(v, float)]
            median = {k: float(np.median([r[k] for r in runs])) for k in keys}
            print(json.dumps({"shape": shape, "runs": len(runs), **runs[0], **median}))


if __name__ == "__main__":
    main()

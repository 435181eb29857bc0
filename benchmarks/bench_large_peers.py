"""skrelatif against pyDVL's and kronfluence's large-model solvers on the
text models of ``bench_large.py`` (issue 21): time and agreement with the
exact answer.

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_large_peers.py --peers-python peers/bin/python
    python benchmarks/bench_large_peers.py --shape quick   # 2,000 x 10,000 words
    python benchmarks/bench_large_peers.py --shape mid --skip kronfluence-ekfac
    python benchmarks/bench_large_peers.py --shape multiclass --batch 500 \
        --peers-python peers/bin/python --skip pydvl-arnoldi

The peers live in the separate, optional environment of
``bench_peers.py`` (it needs neither skrelatif nor this repository; the data
and the fitted model reach it through an ``.npz`` file)::

    python3 -m venv peers && peers/bin/pip install torch==2.13.0 \\
        "pydvl[influence]==0.10.0" kronfluence==1.0.1 scikit-learn

The problem: the generated TF-IDF documents of ``bench_large.py`` (its
``binary`` shape, 20,000 documents x 100,000 words; ``--shape`` ``mid``:
5,000 x 25,000, ``quick``: 2,000 x 10,000, ``tiny``: the test suite's; its
20-class ``multiclass`` shape, 10,000 x 50,000 words, and
``multiclass-quick``, 1,000 x 5,000, and ``multiclass-tiny``, 3 classes),
with a constant input appended and ``LogisticRegression(C=1,
fit_intercept=False)`` fitted on them: the intercept is the weight of the
constant input and is penalised like the others, so that pyDVL's isotropic
``regularization`` is the model's penalty exactly (P = 100,001 on the
``binary`` shape, 1,000,020 on ``multiclass``). The ``"if"`` scores of
``--n-test`` test points (default 20, labels: the model's predictions)
against every training example. The exact answer is skrelatif's
``solver="data-space"`` for a binary model (on ``bench_large.py``'s model,
within 1e-13 of the largest score of conjugate gradients at a relative
residual of 1e-12) and, for more classes (whose n K x n K Gram system does
not fit: 298 GiB on ``multiclass``), ``solver="cg"`` at ``tol=1e-12``. Each
row is one call in its own process, everything included (the solver's
set-up and the scores), after a warm-up call on 200 training rows and 2
test points:

- skrelatif: ``InfluenceExplainer(model, method="if", solver=...)``
  ``.fit(X, y).transform(X_test)`` with the exact solver and with ``"cg"``
  (block preconditioner, ``tol=1e-8``), on the sparse data.
- pyDVL 0.10 (torch, float64, as many threads as cores), on the same model
  as an ``nn.Linear`` without bias and the mean log-loss (the
  cross-entropy of the softmax for more than two classes), with
  ``regularization=1/(n C)`` (the penalty's curvature at the scale of the
  mean; its scores are ``n`` times skrelatif's). Torch's autograd needs
  dense inputs, so its ``DataLoader`` densifies batches of ``--batch`` rows
  of the CSR matrix as it goes (``--batch 500`` on ``multiclass``: its
  scores hold a batch's per-example gradients, batch x P, 4 GB there).
  ``CgInfluence`` (``rtol=1e-8``, ``atol=0``,
  block CG over the test points, at most ``--cg-maxiter`` iterations), the
  same with its ``NystroemPreconditioner`` (rank ``--rank``, default 100),
  ``NystroemSketchInfluence`` and ``ArnoldiInfluence`` (rank ``--rank``).
- kronfluence 1.0.1's EK-FAC (its default: the Fisher with labels sampled
  from the model), every factor and score in float64, damping ``1/(n C)``
  (its scores are ``n`` times skrelatif's). For an ``nn.Linear`` of d inputs
  it holds the d x d covariance of the inputs and its eigenvectors; the row
  is not run when they exceed the machine's memory (the ``binary`` shape:
  149 GiB; ``multiclass``: 37 GiB). ``--skip`` leaves out peer rows.

The table gives each row's seconds, their ratio to the exact answer's
(``/ exact``), and its agreement with the exact answer over the test
points: the largest score difference relative to the largest exact score,
the median over test points of the Spearman correlation of the scores with
the exact ones, and the mean overlap of the top 10 proponents.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

WARMUP = (200, 2)  # training rows and test points of the warm-up call
#: Training documents, words and classes of each shape (``binary`` and
#: ``multiclass`` are ``bench_large.py``'s).
SHAPES = {
    "tiny": (300, 1_500, 2),  # the test suite's
    "quick": (2_000, 10_000, 2),
    "mid": (5_000, 25_000, 2),
    "binary": (20_000, 100_000, 2),
    "multiclass-tiny": (300, 1_500, 3),  # the test suite's
    "multiclass-quick": (1_000, 5_000, 20),
    "multiclass": (10_000, 50_000, 20),
}
PEER_ROWS = (
    ("pydvl-cg", "pyDVL CgInfluence"),
    ("pydvl-cg-nystroem", "pyDVL CgInfluence + NystroemPreconditioner"),
    ("pydvl-nystroem", "pyDVL NystroemSketchInfluence"),
    ("pydvl-arnoldi", "pyDVL ArnoldiInfluence"),
    ("kronfluence-ekfac", "kronfluence EK-FAC"),
)
SKRELATIF_ROWS = (
    ("data-space", 'skrelatif solver="data-space" (exact)'),
    ("cg-reference", 'skrelatif solver="cg", tol=1e-12 (exact)'),
    ("cg", 'skrelatif solver="cg", tol=1e-8'),
)
#: ``solver`` and ``solver_options`` of each skrelatif row.
SKRELATIF_SOLVERS = {
    "data-space": ("data-space", None),
    "cg-reference": ("cg", {"tol": 1e-12}),
    "cg": ("cg", {"tol": 1e-8}),
}


def exact_row(n_classes):
    """The row whose scores are the exact answer: ``"data-space"`` for a
    binary model; for more classes its n K x n K Gram system does not fit
    (298 GiB on ``multiclass``), and conjugate gradients at a relative
    residual of 1e-12 are the reference."""
    return "data-space" if n_classes == 2 else "cg-reference"


# -- the problem (skrelatif's environment) ---------------------------------------------
def save_problem(directory, shape, n_test):
    """The text problem as an .npz of CSR parts (for every library), the
    model refitted with its intercept as the weight of a constant input."""
    import warnings

    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_large import tfidf_documents

    n, n_words, n_classes = SHAPES[shape]
    X, y = tfidf_documents(n + n_test, n_words, n_classes)
    X = sparse.hstack([X, np.ones((X.shape[0], 1))], format="csr")
    X, y, X_test = X[:n], y[:n], X[n:]
    model = LogisticRegression(C=1.0, fit_intercept=False, tol=1e-8, max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    y_test = model.predict(X_test)
    path = os.path.join(directory, "problem.npz")
    np.savez(
        path,
        data=X.data,
        indices=X.indices,
        indptr=X.indptr,
        shape=X.shape,
        test_data=X_test.data,
        test_indices=X_test.indices,
        test_indptr=X_test.indptr,
        test_shape=X_test.shape,
        y=y,
        y_index=np.searchsorted(model.classes_, y),
        y_test_index=np.searchsorted(model.classes_, y_test),
        coef=model.coef_,
        C=model.C,
    )
    return path


def _matrices(data):
    from scipy import sparse

    X = sparse.csr_matrix(
        (data["data"], data["indices"], data["indptr"]), shape=tuple(data["shape"])
    )
    X_test = sparse.csr_matrix(
        (data["test_data"], data["test_indices"], data["test_indptr"]),
        shape=tuple(data["test_shape"]),
    )
    return X, X_test


def _model(data):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=float(data["C"]), fit_intercept=False)
    model.classes_ = np.unique(data["y"])
    model.coef_ = data["coef"]
    model.intercept_ = np.zeros(len(model.coef_))
    return model


def skrelatif_call(data, row):
    from skrelatif import InfluenceExplainer

    X, X_test = _matrices(data)
    y, model = data["y"], _model(data)
    solver, options = SKRELATIF_SOLVERS[row]

    def call():
        explainer = InfluenceExplainer(
            model, method="if", solver=solver, solver_options=options
        )
        return explainer.fit(X, y).transform(X_test)

    return call


# -- the peers (their environment) ----------------------------------------------------
def _log_loss(F, target, reduction="mean"):
    """The log-loss of the outputs ``F`` (n, K): binary (K = 1) as
    ``softplus(-+f)`` of float targets, else the cross-entropy of the
    softmax."""
    import torch

    if F.shape[1] == 1:
        losses = torch.nn.functional.softplus((1 - 2 * target) * F[:, 0])
        return losses.mean() if reduction == "mean" else losses.sum()
    return torch.nn.functional.cross_entropy(F, target.long(), reduction=reduction)


def _torch_problem(data, batch):
    """The model as an ``nn.Linear``, the mean log-loss, a DataLoader of dense
    batches of the training rows, and dense (rows -> tensors) helpers."""
    import torch
    from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(os.cpu_count())
    X, X_test = _matrices(data)
    coef = data["coef"]
    model = torch.nn.Linear(coef.shape[1], coef.shape[0], bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(coef))
    y = torch.from_numpy(data["y_index"]).double()
    y_test = torch.from_numpy(data["y_test_index"]).double()

    loss = _log_loss

    def dense(rows):
        return torch.from_numpy(X[rows].toarray())

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return X.shape[0]

        def __getitem__(self, rows):
            return dense(rows), y[rows]

    loader = DataLoader(
        Rows(),
        batch_size=None,
        sampler=BatchSampler(SequentialSampler(range(X.shape[0])), batch, False),
    )
    test = torch.from_numpy(X_test.toarray())
    return model, loss, loader, dense, X.shape[0], test, y_test, y


def pydvl_call(data, method, args):
    from pydvl.influence.torch import (
        ArnoldiInfluence,
        CgInfluence,
        NystroemSketchInfluence,
    )
    from pydvl.influence.torch.preconditioner import NystroemPreconditioner

    model, loss, loader, dense, n, test, y_test, y = _torch_problem(data, args.batch)
    regularization = 1.0 / (n * float(data["C"]))
    cg = dict(rtol=1e-8, atol=0.0, maxiter=args.cg_maxiter, solve_simultaneously=True)
    build = {
        "pydvl-cg": lambda: CgInfluence(model, loss, regularization, **cg),
        "pydvl-cg-nystroem": lambda: CgInfluence(
            model,
            loss,
            regularization,
            preconditioner=NystroemPreconditioner(args.rank),
            **cg,
        ),
        "pydvl-nystroem": lambda: NystroemSketchInfluence(
            model, loss, regularization, rank=args.rank
        ),
        "pydvl-arnoldi": lambda: ArnoldiInfluence(
            model, loss, regularization, rank=args.rank
        ),
    }[method]

    def call():
        influence = build().fit(loader)
        factors = influence.influence_factors(test, y_test)  # (H/n)^-1 g_t
        scores = [
            influence.influences_from_factors(
                factors, dense(slice(i, i + args.batch)), y[i : i + args.batch]
            ).detach()
            for i in range(0, n, args.batch)
        ]
        return np.hstack([s.numpy() for s in scores]) / n

    return call


def kronfluence_bytes(data):
    """Bytes of kronfluence's EK-FAC factors for an ``nn.Linear`` of d inputs:
    the d x d input covariance and its eigenvectors, float64."""
    d = int(data["coef"].shape[1])
    return 2 * 8 * d * d


def kronfluence_call(data, args):
    """kronfluence's EK-FAC (its default strategy and Fisher: labels sampled
    from the model), every factor and score in float64, damping ``1/(n C)``
    (the penalty's curvature at the scale of its mean Fisher)."""
    import torch
    from kronfluence.analyzer import Analyzer, prepare_model
    from kronfluence.arguments import FactorArguments, ScoreArguments
    from kronfluence.task import Task

    model, loss, _, dense, n, test, y_test, y = _torch_problem(data, args.batch)
    X, _ = _matrices(data)

    class Rows(torch.utils.data.Dataset):
        def __init__(self, rows, labels):
            self.rows, self.labels = rows, labels

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            return self.rows(i), self.labels[i]

    def sampled_labels(F):  # labels drawn from the model's predicted distribution
        if F.shape[1] == 1:
            return torch.bernoulli(torch.sigmoid(F[:, 0]))
        return torch.multinomial(torch.softmax(F, dim=1), 1)[:, 0]

    class LogLoss(Task):
        def compute_train_loss(self, batch, model, sample=False):
            x, target = batch
            F = model(x)
            if sample:
                with torch.no_grad():
                    target = sampled_labels(F)
            return _log_loss(F, target, "sum")

        def compute_measurement(self, batch, model):
            x, target = batch
            return _log_loss(model(x), target, "sum")

    train = Rows(lambda i: torch.from_numpy(X[i].toarray()[0]), y)
    query = Rows(lambda i: test[i], y_test)
    double = torch.float64
    factor_args = FactorArguments(
        activation_covariance_dtype=double,
        gradient_covariance_dtype=double,
        per_sample_gradient_dtype=double,
        lambda_dtype=double,
    )
    score_args = ScoreArguments(
        damping_factor=1.0 / (n * float(data["C"])),
        per_sample_gradient_dtype=double,
        precondition_dtype=double,
        score_dtype=double,
    )
    directory = os.path.join(os.path.dirname(args.data), "kronfluence")

    def call():
        task = LogLoss()
        analyzer = Analyzer(
            "bench",
            prepare_model(torch.nn.Sequential(model), task),
            task,
            cpu=True,
            disable_tqdm=True,
            output_dir=directory,
        )
        analyzer.fit_all_factors(
            "ekfac",
            train,
            per_device_batch_size=args.batch,
            factor_args=factor_args,
            overwrite_output_dir=True,
        )
        analyzer.compute_pairwise_scores(
            "scores",
            "ekfac",
            query,
            train,
            per_device_query_batch_size=len(y_test),
            per_device_train_batch_size=args.batch,
            score_args=score_args,
            overwrite_output_dir=True,
        )
        scores = analyzer.load_pairwise_scores("scores")["all_modules"]
        return scores.numpy() / n

    return call


def worker(args):
    """Time one row; print JSON on the last line."""
    data = dict(np.load(args.data))
    if args.row == "kronfluence-ekfac" and kronfluence_bytes(data) > _memory():
        print(json.dumps({"skipped": kronfluence_bytes(data)}))
        return

    def build(data):
        if args.row in dict(SKRELATIF_ROWS):
            return skrelatif_call(data, args.row)
        if args.row == "kronfluence-ekfac":
            return kronfluence_call(data, args)
        return pydvl_call(data, args.row, args)

    try:
        call = build(data)
        warm_up = build(_subset(data, *WARMUP))
    except ImportError as exc:
        print(json.dumps({"missing": str(exc)}))
        return
    warm_up()
    start = time.perf_counter()
    scores = np.asarray(call())
    seconds = time.perf_counter() - start
    path = os.path.join(os.path.dirname(args.data), f"{args.row}-scores.npy")
    np.save(path, scores)
    print(json.dumps({"seconds": seconds, "scores": path}))


def _memory():
    """The machine's memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _subset(data, rows, tests):
    """The problem cut to its first ``rows`` training rows and ``tests`` test
    points (the warm-up's input)."""
    X, X_test = _matrices(data)
    cut = dict(data)
    for prefix, M in (("", X[:rows]), ("test_", X_test[:tests])):
        cut[prefix + "data"], cut[prefix + "indices"] = M.data, M.indices
        cut[prefix + "indptr"], cut[prefix + "shape"] = M.indptr, M.shape
    cut["y"], cut["y_index"] = data["y"][:rows], data["y_index"][:rows]
    cut["y_test_index"] = data["y_test_index"][:tests]
    return cut


# -- the driver (skrelatif's environment) ----------------------------------------------
def agreement(scores, exact, top=10):
    from scipy.stats import spearmanr

    spearman = [spearmanr(a, b)[0] for a, b in zip(scores, exact)]
    overlap = [
        len(set(np.argsort(-a)[:top]) & set(np.argsort(-b)[:top])) / top
        for a, b in zip(scores, exact)
    ]
    return {
        "error": float(np.abs(scores - exact).max() / np.abs(exact).max()),
        "spearman": float(np.median(spearman)),
        "top10": float(np.mean(overlap)),
    }


def run(python, row, path, args):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_peers import run_worker

    command = [python, os.path.abspath(__file__), "--worker", "--row", row]
    command += ["--data", path, "--batch", str(args.batch), "--rank", str(args.rank)]
    command += ["--cg-maxiter", str(args.cg_maxiter)]
    return run_worker(command)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=SHAPES, default="binary")
    parser.add_argument("--n-test", type=int, default=20)
    parser.add_argument(
        "--peers-python", default=os.environ.get("SKRELATIF_PEERS_PYTHON")
    )
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rank", type=int, default=100)
    parser.add_argument("--cg-maxiter", type=int, default=300)
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=[row for row, _ in PEER_ROWS],
        help="peer rows not to run",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    with tempfile.TemporaryDirectory() as directory:
        path = save_problem(directory, args.shape, args.n_test)
        exact_name = exact_row(SHAPES[args.shape][2])
        rows = [(row, label) for row, label in SKRELATIF_ROWS
                if row == "cg" or row == exact_name]  # fmt: skip
        results = {}
        for row, _ in rows:
            results[row] = run(sys.executable, row, path, args)
        for row, _ in PEER_ROWS:
            if row in args.skip:
                results[row] = {"missing": "skipped (--skip)"}
            elif args.peers_python:
                results[row] = run(args.peers_python, row, path, args)
            else:
                results[row] = {"missing": "no --peers-python"}
        exact = np.load(results[exact_name]["scores"])
        for result in results.values():
            if "scores" in result:
                result.update(agreement(np.load(result["scores"]), exact))
        exact_seconds = results[exact_name]["seconds"]
        print(f"{'row':<48} {'seconds':>8} {'/ exact':>7} "
              f"{'max err':>9} {'Spearman':>8} {'top-10':>6}")  # fmt: skip
        for row, label in rows + list(PEER_ROWS):
            result = results[row]
            if "seconds" not in result:
                if "skipped" in result:
                    why = f"not run: {result['skipped'] / 2**30:.1f} GiB of factors"
                else:
                    why = result.get("missing") or result.get("error")
                print(f"{label:<48} {why}")
                continue
            print(
                f"{label:<48} {result['seconds']:8.2f} "
                f"{result['seconds'] / exact_seconds:7.1f} {result['error']:9.1e} "
                f"{result['spearman']:8.4f} {result['top10']:6.2f}"
            )
        print(json.dumps({row: {k: v for k, v in r.items() if k != "scores"}
                          for row, r in results.items()}))  # fmt: skip


if __name__ == "__main__":
    main()

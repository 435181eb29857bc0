"""skrelatif against dattri and pyDVL on the same influence scores (issue 13).

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_peers.py --peers-python peers/bin/python
    python benchmarks/bench_peers.py --quick                  # digits only
    python benchmarks/bench_peers.py --problems binary --repeat 1

The peers live in a separate, optional environment that needs neither
skrelatif nor this repository (the data and the fitted model reach it through
an ``.npz`` file)::

    python3 -m venv peers && peers/bin/pip install torch==2.13.0 dattri==0.3.0 \
        "pydvl[influence]==0.10.0" scikit-learn

(``torch==2.13.0`` exactly: the CPU build this was measured with, found as a
local wheel here; a bare ``torch`` from the default index pulls the
multi-GB CUDA build. pyDVL's ``influence`` extra brings ``dask`` and
``distributed``, without which ``pydvl.influence`` does not import). Give
its python with ``--peers-python`` or the environment variable
``SKRELATIF_PEERS_PYTHON``; a peer is reported "not installed" when there is
none or it cannot be imported there.

What is timed, per (library, problem, method), each in its own process, after
one warm-up call on the first 200 training rows and 10 test points (it runs
every code path: imports, torch.func transforms, BLAS threads; with
``--full-warmup`` it is a whole call, which doubles minute-long rows), the
median of ``--repeat`` calls: everything the method needs from the fitted model
(Hessian, factorisation or solve, normalisers) plus the scores of the 100 test
points against every training example, float64. skrelatif:
``InfluenceExplainer(model, method=..., solver="cholesky").fit(X, y)`` then
``.transform(X_test, y_test)`` (the exact Hessian, one Cholesky factorisation,
as the peers compute it; ``solver="auto"`` would choose ``"block-diagonal"``,
an approximation, for the 10-class problem). The peers run on torch CPU with as
many threads as the machine has cores, with their explicit-Hessian methods:
dattri's ``IFAttributorExplicit`` (``torch.func.hessian`` of the loss over the
whole training set in one batch, since with several it sums the batches'
inverse Hessians, then ``torch.linalg.solve``; its RelatIF computes the Hessian
twice, once for the normalisers and once for the test points) and pyDVL's
``DirectInfluence`` (the same, batched over a ``DataLoader`` of
``--pydvl-batch`` rows, then ``torch.linalg.solve``). The labels explained are
the model's predictions (skrelatif's default), given to every library.

The same objective for all. scikit-learn's ``LogisticRegression`` minimises
``F = C sum_i s_i l_i + 1/2 ||W||^2`` (intercept not penalised; binary: one
logit, multiclass: softmax). The peers get an ``nn.Module`` holding the fitted
``coef_`` and ``intercept_`` and a loss whose per-example gradient at the
fitted parameters is ``s_i`` times the log-loss gradient ``g_i`` (as in
skrelatif, removing an example removes its loss, not part of the penalty) and
whose Hessian over the training set is ``F``'s:

- dattri (its loss is summed over the batch it is given): ``C s_i l_i`` per
  example plus, for a batch of m of the n rows, ``m/n * 1/2 ||W - W*||^2``
  with ``W*`` the fitted weights (a constant): its gradient vanishes at the
  fitted model, its Hessian is exactly the penalty's. Train gradients
  ``C s_i g_i``, test gradients ``g_t`` (a separate ``target_func``), Hessian
  ``H = d^2 F``.
- pyDVL (its loss sees only outputs and targets, and it averages Hessians
  over the rows): ``s_i l_i`` per example, and ``DirectInfluence._create_block``
  overridden to add the penalty's constant diagonal ``1/(n C)`` on ``W`` to
  the Hessian pyDVL computes, i.e. ``H / (n C)`` (pyDVL's ``regularization``
  is an isotropic damping, which would damp the intercepts too).
- Multiclass: the softmax is invariant to a common shift of the intercepts,
  which are not penalised, so ``H`` is singular along that direction and every
  gradient is orthogonal to it. skrelatif adds a rank-one term along it
  (``H^+ g``); the peers keep the last class's intercept fixed (a buffer, not a
  parameter): for gradients orthogonal to the null direction
  ``g_t^T H_red^-1 g_i = g_t^T H^+ g_i`` exactly, so the scores are the same.

Scores, mapped onto skrelatif's (``"if"``: ``C s_i g_t^T H^-1 g_i``;
``"l-relatif"``: ``g_t^T H^-1 g_i / sqrt(g_i^T H^-1 g_i)``; positive =
proponent, which is also both peers' sign):

- dattri ``"if"``: ``attribute(train, test)`` is ``C s_i g_i^T H^-1 g_t``,
  skrelatif's score exactly. ``"l-relatif"``: dattri's own RelatIF,
  ``attribute(train, test, relatif_method="l")``, divides by
  ``sqrt(g_i^T H^-1 C s_i g_i)`` (its test function on the training rows), so
  it is ``sqrt(C s_i)`` times skrelatif's.
- pyDVL ``"if"``: ``influences(x_test, y_test, x, y)`` (mode ``up``) is
  ``g_t^T (H/(nC))^-1 s_i g_i``, n times skrelatif's. ``"l-relatif"``: pyDVL
  has no RelatIF; the cheapest route through its API is used:
  ``influence_factors(x, y)`` (``(H/(nC))^-1 s_i g_i`` for all training rows,
  one solve with n right-hand sides), the test scores from those factors
  (``influences_from_factors(factors, x_test, y_test)``), and the
  self-influences as the row-wise dot of the factors with the per-example
  gradients from pyDVL's ``TorchGradientProvider``; scores divided by the
  square root of the self-influences are ``sqrt(n C)`` times skrelatif's.

Output: per problem and method, the seconds of each library, the fastest
peer, the ratio of its time to skrelatif's, and "max rel. diff.", the largest
difference between a peer's mapped scores and skrelatif's relative to
skrelatif's largest score (over both peers; the script fails if it exceeds
1e-6); then the same times as the table of issue 13.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

PROBLEMS = {
    "digits": "digits (1697 training rows x 64), K=10",
    "binary": "binary 20000x784",
    "multiclass": "10 classes, 5000x784",
}
LIBRARIES = ("skrelatif", "dattri", "pydvl")
METHODS = ("if", "l-relatif")
TOLERANCE = 1e-6
WARMUP = (200, 10)  # training rows and test points of the warm-up call


# -- the problems (skrelatif's environment) -------------------------------------------
def make_problem(name):
    """Training data, test points and the fitted scikit-learn model."""
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        X, y, X_test = X[:1697], y[:1697], X[1697:]
        model = LogisticRegression(C=0.1, tol=1e-8, max_iter=1000).fit(X, y)
        return X, y, X_test, model
    from bench_scale import mnist_like

    n, n_classes = {"binary": (20_000, 2), "multiclass": (5_000, 10)}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mnist_like(n, 100, n_classes=n_classes)


def save_problem(name, directory):
    """The problem's .npz (for every library) and pickled model (skrelatif's)."""
    import pickle

    X, y, X_test, model = make_problem(name)
    y_test = model.predict(X_test)
    classes = model.classes_
    path = os.path.join(directory, f"{name}.npz")
    np.savez(
        path,
        X=X,
        y=y,
        X_test=X_test,
        y_test=y_test,
        y_index=np.searchsorted(classes, y),
        y_test_index=np.searchsorted(classes, y_test),
        coef=model.coef_,
        intercept=model.intercept_,
        fit_intercept=model.fit_intercept,
        C=model.C,
        sample_weight=np.ones(len(y)),
    )
    with open(os.path.join(directory, f"{name}.pkl"), "wb") as file:
        pickle.dump(model, file)
    P = model.coef_.size + (model.intercept_.size if model.fit_intercept else 0)
    return path, X.shape, len(classes), P


# -- workers: one (library, problem, method) per process -------------------------------
def skrelatif_call(data, directory, name, method):
    import pickle

    from skrelatif import InfluenceExplainer

    with open(os.path.join(directory, f"{name}.pkl"), "rb") as file:
        model = pickle.load(file)
    X, y, X_test, y_test = data["X"], data["y"], data["X_test"], data["y_test"]
    weight = data["sample_weight"]

    def call():
        ex = InfluenceExplainer(model, method=method, solver="cholesky")
        ex.fit(X, y, sample_weight=weight)
        return ex.transform(X_test, y_test)

    return call


class _Torch:
    """The fitted model as torch sees it, and the log-loss (peers' environment)."""

    def __init__(self, data):
        import torch
        from torch import nn

        torch.set_default_dtype(torch.float64)
        torch.set_num_threads(os.cpu_count())
        self.torch = torch
        coef, intercept = data["coef"], data["intercept"]
        self.n = len(data["y"])
        self.C = float(data["C"])
        self.binary = coef.shape[0] == 1
        fit_intercept = bool(data["fit_intercept"])
        # Multinomial with an intercept: the last class's intercept stays fixed
        # (a buffer), which removes the Hessian's null direction exactly.
        free = intercept.size - (0 if self.binary else 1) if fit_intercept else 0

        class Linear(nn.Module):
            def __init__(self):
                super().__init__()
                self.weight = nn.Parameter(torch.tensor(coef))
                self.bias = nn.Parameter(torch.tensor(intercept[:free]))
                self.register_buffer("fixed", torch.tensor(intercept[free:]))

            def forward(self, x):
                return x @ self.weight.T + torch.cat([self.bias, self.fixed])

        self.model = Linear()
        self.W = self.model.weight.detach().clone()  # the fitted weights
        tensor = torch.from_numpy
        self.X, self.X_test = tensor(data["X"]), tensor(data["X_test"])
        dtype = torch.float64 if self.binary else torch.long
        self.y = tensor(data["y_index"]).to(dtype)
        self.y_test = tensor(data["y_test_index"]).to(dtype)
        self.s = tensor(data["sample_weight"])
        self.s_test = torch.ones(len(self.y_test))

    def log_loss(self, F, y):
        """Per-row log-loss of outputs F (..., K) at labels y (binary: K = 1,
        y in {0, 1}, as softplus(+-f) so that its gradient does not cancel)."""
        torch = self.torch
        if self.binary:
            return torch.nn.functional.softplus((1 - 2 * y) * F[..., 0])
        true = torch.gather(F, -1, y.unsqueeze(-1)).squeeze(-1)
        return torch.logsumexp(F, dim=-1) - true


def dattri_call(data, method):
    from dattri.algorithm.influence_function import IFAttributorExplicit
    from dattri.task import AttributionTask
    from torch.func import functional_call
    from torch.utils.data import DataLoader, TensorDataset

    m = _Torch(data)
    n, C, W = m.n, m.C, m.W

    def loss_func(params, batch):
        # C s_i l_i summed over the batch + its share m/n of the penalty's
        # curvature, centred at the fitted W (zero gradient there).
        x, y, s = batch
        rows = x.shape[0] if x.ndim == 2 else 1
        F = functional_call(m.model, params, (x,))
        penalty = 0.5 * ((params["weight"] - W) ** 2).sum()
        return C * (s * m.log_loss(F, y)).sum() + rows / n * penalty

    def target_func(params, batch):
        x, y, _ = batch
        return m.log_loss(functional_call(m.model, params, (x,)), y).sum()

    train = DataLoader(TensorDataset(m.X, m.y, m.s), batch_size=n, shuffle=False)
    test = DataLoader(
        TensorDataset(m.X_test, m.y_test, m.s_test),
        batch_size=len(m.y_test),
        shuffle=False,
    )
    relatif = "l" if method == "l-relatif" else None

    def call():
        task = AttributionTask(
            loss_func=loss_func,
            model=m.model,
            checkpoints=m.model.state_dict(),
            target_func=target_func,
        )
        attributor = IFAttributorExplicit(task=task, device="cpu")
        attributor.cache(train)
        return attributor.attribute(train, test, relatif_method=relatif).detach().T

    return call


def pydvl_call(data, method, batch_size):
    import torch
    from pydvl.influence.torch import DirectInfluence
    from pydvl.influence.torch.base import (
        TorchBatch,
        TorchGradientProvider,
        TorchOperatorGradientComposition,
    )
    from pydvl.influence.torch.functional import hessian
    from pydvl.influence.torch.operator import DirectSolveOperator
    from torch.utils.data import DataLoader, TensorDataset

    m = _Torch(data)
    penalty = 1.0 / (m.n * m.C)

    class PenalisedDirectInfluence(DirectInfluence):
        """``DirectInfluence`` plus the L2 penalty's constant Hessian,
        ``1/(n C)`` on the weights' diagonal (pyDVL's Hessian is the mean over
        the rows of the loss's)."""

        def _create_block(self, block_params, data, regularization):
            matrix = hessian(self.model, self.loss, data, restrict_to=block_params)
            diagonal = torch.cat(
                [
                    torch.full((p.numel(),), penalty if key == "weight" else 0.0)
                    for key, p in block_params.items()
                ]
            )
            matrix.diagonal().add_(diagonal)
            return TorchOperatorGradientComposition(
                DirectSolveOperator(matrix),
                TorchGradientProvider(self.model, self.loss, restrict_to=block_params),
            )

    def loss(F, target):  # target: (label, sample weight) per row
        label = target[:, 0] if m.binary else target[:, 0].long()
        return (target[:, 1] * m.log_loss(F, label)).mean()

    target = torch.stack([m.y.double(), m.s], dim=1)
    target_test = torch.stack([m.y_test.double(), m.s_test], dim=1)
    loader = DataLoader(
        TensorDataset(m.X, target), batch_size=batch_size, shuffle=False
    )

    def call():
        influence = PenalisedDirectInfluence(m.model, loss).fit(loader)
        if method == "if":
            return influence.influences(m.X_test, target_test, m.X, target).detach()
        factors = influence.influence_factors(m.X, target).detach()
        scores = influence.influences_from_factors(factors, m.X_test, target_test)
        (params,) = influence.parameter_dict.values()  # one block: all of them
        gradients = TorchGradientProvider(m.model, loss, params).flat_grads(
            TorchBatch(m.X, target)
        )
        self_influence = (factors * gradients.detach()).sum(dim=1)
        return (scores.detach() / self_influence.sqrt()[:, None]).T

    return call


def subset(data, rows, tests):
    """The problem cut to its first ``rows`` training rows and ``tests`` test
    points (the warm-up's input)."""
    cut = dict(data)
    for key in ("X", "y", "y_index", "sample_weight"):
        cut[key] = data[key][:rows]
    for key in ("X_test", "y_test", "y_test_index"):
        cut[key] = data[key][:tests]
    return cut


def worker(args):
    """Time one (library, problem, method); print JSON on the last line."""
    data = dict(np.load(args.data))
    directory, name = os.path.dirname(args.data), args.problem

    def build(data):
        if args.library == "skrelatif":
            return skrelatif_call(data, directory, name, args.method)
        if args.library == "dattri":
            return dattri_call(data, args.method)
        return pydvl_call(data, args.method, args.pydvl_batch)

    try:
        call = build(data)
        warm_up = call if args.full_warmup else build(subset(data, *WARMUP))
    except ImportError as exc:
        print(json.dumps({"missing": str(exc)}))
        return
    warm_up()
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        scores = call()
        times.append(time.perf_counter() - start)
    scores = np.asarray(scores)
    path = os.path.join(directory, f"{name}-{args.library}-{args.method}-scores.npz")
    np.savez(path, scores=scores)
    print(json.dumps({"times": times, "scores": path}))


# -- the driver (skrelatif's environment) ----------------------------------------------
def scale(library, method, data):
    """Factor that maps a library's raw scores onto skrelatif's (columns: per
    training example); see the module docstring."""
    n, C, s = len(data["y"]), float(data["C"]), data["sample_weight"]
    if library == "dattri" and method == "l-relatif":
        return 1 / np.sqrt(C * s)
    if library == "pydvl":
        return 1 / n if method == "if" else 1 / np.sqrt(n * C)
    return 1.0


def run(python, library, path, name, method, args):
    command = [
        python,
        os.path.abspath(__file__),
        "--worker",
        "--library",
        library,
        "--problem",
        name,
        "--method",
        method,
        "--data",
        path,
        "--repeat",
        str(args.repeat),
        "--pydvl-batch",
        str(args.pydvl_batch),
    ] + (["--full-warmup"] if args.full_warmup else [])
    return run_worker(command)


def run_worker(command):
    """Run a worker process; the JSON of its last line of output, or
    ``{"error": ...}`` with its exit status and last line of errors."""
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONWARNINGS="ignore")
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit status {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def cell(result):
    if result is None:
        return "not installed"
    if "missing" in result:
        return "not installed"
    if "error" in result:
        return "failed"
    return f"{statistics.median(result['times']):.3f}"


def seconds(result):
    ok = result is not None and "times" in result
    return statistics.median(result["times"]) if ok else np.inf


def print_summary(summary):
    """The table of issue 13: per problem, IF / l-RelatIF seconds."""
    print(
        "\n| problem | skrelatif IF / l-RelatIF | fastest peer IF / l-RelatIF "
        "| ratio |\n| --- | --- | --- | --- |"
    )
    for label, ((sk_if, *peer_if), (sk_l, *peer_l)) in summary.items():
        peers = " / ".join(
            f"{t:.2f} ({'pyDVL' if name == 'pydvl' else name})" if ok else "-"
            for t, name, _, ok in (peer_if, peer_l)
        )
        ratios = " / ".join(
            f"{r:.1f}x" if ok else "-" for _, _, r, ok in (peer_if, peer_l)
        )
        print(f"| {label} | {sk_if:.2f} / {sk_l:.2f} s | {peers} s | {ratios} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--problems",
        nargs="+",
        choices=list(PROBLEMS),
        default=list(PROBLEMS),
        help="which problems (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="digits only")
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed calls per row after a warm-up"
    )
    parser.add_argument(
        "--peers-python",
        default=os.environ.get("SKRELATIF_PEERS_PYTHON"),
        help="python of the peers' environment (default: $SKRELATIF_PEERS_PYTHON)",
    )
    parser.add_argument(
        "--pydvl-batch",
        type=int,
        default=1000,
        help="rows per batch of pyDVL's Hessian DataLoader",
    )
    parser.add_argument(
        "--full-warmup",
        action="store_true",
        help="warm up with a whole call instead of one on a slice of the problem",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--library", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--problem", choices=list(PROBLEMS), help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    from bench_scale import gemm_rate

    problems = ["digits"] if args.quick else args.problems
    peers = args.peers_python
    if peers is not None and not os.path.exists(peers):
        print(f"peers python {peers} not found: the peers are not installed")
        peers = None
    print(
        f"{os.cpu_count()} cores; BLAS GEMM: {gemm_rate() / 1e9:.1f} GFLOP/s "
        f"(float64); median of {args.repeat} calls after a warm-up, each "
        "(library, problem, method) in its own process\n",
        flush=True,
    )
    header = (
        f"{'problem':<42} {'method':<10} {'skrelatif s':>11} {'dattri s':>13} "
        f"{'pyDVL s':>13} {'fastest peer':>12} {'ratio':>7} {'max rel. diff.':>14}"
    )
    rows, summary, failed = [], {}, False
    with tempfile.TemporaryDirectory() as directory:
        for name in problems:
            path, shape, K, P = save_problem(name, directory)
            data = dict(np.load(path))
            label = PROBLEMS[name] + (f" (P = {P})" if name == "multiclass" else "")
            results, worst = {}, 0.0
            for method in METHODS:
                for library in LIBRARIES:
                    python = sys.executable if library == "skrelatif" else peers
                    result = None
                    if python is not None:
                        result = run(python, library, path, name, method, args)
                    results[library, method] = result
                    print(f"{name} {method} {library}: {cell(result)}", file=sys.stderr)
                    if result is not None and "error" in result:
                        print(f"  {library} {name} {method}: {result['error']}")
                    if result is not None and "missing" in result:
                        print(f"  {library} not installed: {result['missing']}")
                reference = results["skrelatif", method]
                if "times" not in reference:
                    raise SystemExit(f"skrelatif failed: {reference}")
                expected = np.load(reference["scores"])["scores"]
                for library in LIBRARIES[1:]:
                    result = results[library, method]
                    if result is None or "times" not in result:
                        continue
                    got = np.load(result["scores"])["scores"]
                    got = got * scale(library, method, data)
                    diff = np.abs(got - expected).max() / np.abs(expected).max()
                    results[library, method]["diff"] = diff
                    worst = max(worst, diff)
            for method in METHODS:
                times = {lib: seconds(results[lib, method]) for lib in LIBRARIES}
                fastest = min(LIBRARIES[1:], key=times.get)
                ratio = times[fastest] / times["skrelatif"]
                found = np.isfinite(times[fastest])
                diffs = [
                    results[lib, method].get("diff", np.nan)
                    for lib in LIBRARIES[1:]
                    if results[lib, method] is not None
                    and "diff" in results[lib, method]
                ]
                summary.setdefault(label, []).append(
                    (times["skrelatif"], times[fastest], fastest, ratio, found)
                )
                rows.append(
                    f"{label:<42} {method:<10} {times['skrelatif']:>11.3f} "
                    f"{cell(results['dattri', method]):>13} "
                    f"{cell(results['pydvl', method]):>13} "
                    f"{fastest if found else '-':>12} "
                    f"{(f'{ratio:.1f}x' if found else '-'):>7} "
                    f"{(f'{max(diffs):.1e}' if diffs else '-'):>14}"
                )
            print(header if len(rows) == 2 else "", *rows[-2:], sep="\n", flush=True)
            failed |= worst > TOLERANCE
    print_summary(summary)
    if failed:
        raise SystemExit(
            f"a peer's scores differ from skrelatif's by more than {TOLERANCE:g}"
        )


if __name__ == "__main__":
    main()

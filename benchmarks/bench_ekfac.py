"""EK-FAC against K-FAC and the dense Gauss-Newton matrix, and EK-FAC at
MNIST size.

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_ekfac.py            # both parts (about 25 minutes)
    python benchmarks/bench_ekfac.py --quick    # small sizes (under a minute)
    python benchmarks/bench_ekfac.py --part agreement
    python benchmarks/bench_ekfac.py --part scale --repeat 3

**agreement**: networks small enough for the dense Gauss-Newton matrix
(``solver="cholesky"``, the exact reference), each trained with L-BFGS on
standardised features (breast cancer, digits); for ``method="l-relatif"``
and ``"if"``, the scores of 40 test points (their predicted labels) by
``"kfac"``, ``"ekfac"`` with exact test-train products (``cross_rank=0``),
with the default rank-8 products, and with kronfluence's per-layer damping
(``solver_options={"layer_damping": 0.1}``), each against the dense
matrix's with the same ``damping="auto"``: the median over test points of
the Spearman correlation over all training examples, and the mean share of
the top 10 proponents found (top-10 overlap); with ``fit`` + ``transform``
seconds and ``normaliser_error_``. This is the accuracy-versus-time table of
the user guide's networks page.

**scale**: ``MLPClassifier((256, 128))`` (ReLU, ``alpha=1e-2``, Adam, 10
epochs, not timed) on 20,000 MNIST-shaped images (784 features, 10
classes, P = 235,146), made without a download: scikit-learn's 8 x 8 digits
upsampled to 24 x 24 (bilinear), placed at a random offset in a 28 x 28
frame, plus Gaussian noise (sd 0.05); 1,000 more of them are the test
points. Timed: ``InfluenceExplainer(model, method="l-relatif",
solver="ekfac").fit`` (Kronecker factors, their eigenbases, the corrected
eigenvalues, every training example's normaliser, and ``normaliser_error_``
on 4 training examples against conjugate gradients with a budget of about
the solver's own fitting time) and ``explain(X_test, k=10)`` of the 1,000
test points, medians of ``--repeat`` runs; ``solver="kfac"`` alike. The
agreement of the default truncated test-train products (``cross_rank=8``)
with the exact ones (the same fitted solver, dense solves and products) is
measured on 50 test points.

kronfluence's EK-FAC on the same model was not run (it needs torch in a
separate environment; left for a later run).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from scipy import ndimage, stats
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer


def agreement(scores, reference, k=10):
    """Median Spearman over rows and mean top-k overlap of the proponents."""
    rho = np.median(
        [stats.spearmanr(a, b).statistic for a, b in zip(scores, reference)]
    )
    top = np.mean(
        [
            len(set(np.argsort(-a)[:k]) & set(np.argsort(-b)[:k])) / k
            for a, b in zip(scores, reference)
        ]
    )
    return float(rho), float(top)


def small_networks(quick):
    cancer = load_breast_cancer(return_X_y=True)
    digits = load_digits(return_X_y=True)
    cases = [
        ("breast cancer", cancer, (16,), "tanh", 1.0),
        ("breast cancer", cancer, (16,), "relu", 1.0),
        ("digits", digits, (32,), "tanh", 1.0),
        ("digits", digits, (32, 16), "relu", 0.1),
    ]
    return cases[:2] if quick else cases


def part_agreement(quick):
    variants = (
        ("cholesky", None, ""),
        ("kfac", None, ""),
        ("ekfac", {"cross_rank": 0}, " (exact products)"),
        ("ekfac", None, " (rank 8)"),
        ("ekfac", {"cross_rank": 0, "layer_damping": 0.1}, " (layer damping)"),
    )
    print(
        f"{'network':<36}{'P':>6} {'method':<11}{'solver':<26}"
        f"{'seconds':>8}{'spearman':>9}{'top-10':>7}{'norm.err':>9}"
    )
    for name, (X, y), hidden, activation, alpha in small_networks(quick):
        X_train, X_test, y_train, _ = train_test_split(
            X, y, test_size=0.25, random_state=0, stratify=y
        )
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)[:40]
        model = MLPClassifier(
            hidden, activation=activation, alpha=alpha, solver="lbfgs",
            max_iter=5000, random_state=0,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        P = sum(W.size + W.shape[1] for W in model.coefs_)
        label = f"{name} {hidden} {activation}"
        for method in ("l-relatif", "if"):
            reference = None
            for solver, options, note in variants:
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    explainer = InfluenceExplainer(
                        model, method=method, solver=solver, solver_options=options
                    ).fit(X_train, y_train)
                scores = explainer.transform(X_test)
                seconds = time.perf_counter() - start
                if reference is None:
                    reference = scores
                rho, top = agreement(scores, reference)
                error = explainer.normaliser_error_
                shown = solver + note
                print(
                    f"{label:<36}{P:>6} {method:<11}{shown:<26}{seconds:>8.2f}"
                    f"{rho:>9.3f}{top:>7.2f}"
                    + (f"{error:>9.1e}" if error is not None else f"{'-':>9}"),
                    flush=True,
                )


def mnist_like(n, seed=0):
    """n MNIST-shaped images from the 8 x 8 digits (see the module docstring)."""
    images, labels = load_digits(return_X_y=True)
    rng = np.random.RandomState(seed)
    pick = rng.randint(0, len(images), n)
    big = ndimage.zoom(images[pick].reshape(n, 8, 8) / 16.0, (1, 3, 3), order=1)
    out = np.zeros((n, 28, 28))
    offsets = rng.randint(0, 5, (n, 2))
    for row, (i, j) in enumerate(offsets):
        out[row, i : i + 24, j : j + 24] = big[row]
    out += 0.05 * rng.standard_normal(out.shape)
    return out.reshape(n, 784), labels[pick]


def part_scale(quick, repeat):
    n, m, hidden = (2000, 100, (64, 32)) if quick else (20_000, 1000, (256, 128))
    X, y = mnist_like(n + m)
    X_train, y_train, X_test = X[:n], y[:n], X[n:]
    model = MLPClassifier(hidden, alpha=1e-2, max_iter=10, random_state=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    P = sum(W.size + W.shape[1] for W in model.coefs_)
    print(
        f"{n} x 784, MLPClassifier({hidden}), P = {P}: trained in "
        f"{time.perf_counter() - start:.0f} s, train accuracy "
        f"{model.score(X_train, y_train):.3f}",
        flush=True,
    )
    explainers = {}
    for solver in ("ekfac", "kfac"):
        fits, explains = [], []
        for _ in range(repeat):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # not at a minimum
                explainer = InfluenceExplainer(model, method="l-relatif", solver=solver)
                start = time.perf_counter()
                explainer.fit(X_train, y_train)
            fits.append(time.perf_counter() - start)
            start = time.perf_counter()
            explainer.explain(X_test, k=10)
            explains.append(time.perf_counter() - start)
        explainers[solver] = explainer
        print(
            f"solver={solver!r}: fit {statistics.median(fits):.1f} s "
            f"(runs {', '.join(f'{t:.1f}' for t in fits)}), explain {m} "
            f"{statistics.median(explains):.1f} s "
            f"(runs {', '.join(f'{t:.1f}' for t in explains)}), "
            f"damping {explainer.damping_:.3g}, normaliser_error_ "
            f"{explainer.normaliser_error_:.3f}",
            flush=True,
        )
    ekfac = explainers["ekfac"]
    solver = ekfac._influence.solver_  # noqa: SLF001 - the benchmark reports it
    print(f"EK-FAC test-train product ranks per layer: {solver.cross_ranks_}")
    few = X_test[:50]
    truncated = ekfac.transform(few)
    # the same fitted EK-FAC with the exact products: dense solves of the
    # test gradients and dense products with the training gradients
    solver.factored_rank = lambda: 0
    start = time.perf_counter()
    full = ekfac.transform(few)
    seconds = time.perf_counter() - start
    del solver.factored_rank
    rho, top = agreement(truncated, full)
    relative = np.abs(truncated - full).max() / np.abs(full).max()
    print(
        f"truncated vs exact EK-FAC products, 50 test points: Spearman {rho:.4f}, "
        f"top-10 overlap {top:.3f}, largest difference {relative:.1e} of the "
        f"largest score (exact products: {seconds:.1f} s for 50)"
    )
    rho, top = agreement(explainers["kfac"].transform(few), full)
    print(f"K-FAC vs EK-FAC (exact products): Spearman {rho:.3f}, top-10 {top:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--part", choices=("agreement", "scale", "both"), default="both"
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if args.part in ("agreement", "both"):
        part_agreement(args.quick)
    if args.part in ("scale", "both"):
        part_scale(args.quick, args.repeat)


if __name__ == "__main__":
    main()

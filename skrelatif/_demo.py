"""The digits demo behind ``python -m skrelatif`` (and ``skrelatif demo``)."""

from __future__ import annotations

import time
import warnings
from typing import TextIO

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._explainer import InfluenceExplainer
from ._explanation import method_name
from ._neighbors import NearestNeighborExplainer

DEMO_METHODS = ("if", "theta-relatif", "l-relatif")


def run_demo(
    *,
    n_show: int = 6,
    n_eval: int = 200,
    k: int = 5,
    random_state: int = 0,
    out: TextIO | None = None,
    plot: str | None = None,
    model: str = "logreg",
) -> dict[str, dict[str, float]]:
    """Explain test digits with IF and both RelatIF methods and print a summary.

    Returns, per method, the share of top-``k`` proponents that carry the
    explained label (``same_label``) and the median self-influence percentile of
    the proponents (``typicality``: low = typical training examples).

    With ``plot`` (a file name), also saves the ``n_show`` listed test digits and
    their top-``k`` proponents per method, and their ``k`` nearest neighbours in
    the model's input space, as an image (needs matplotlib).

    ``model="mlp"`` explains a ``(64,)`` :class:`~sklearn.neural_network.MLPClassifier`
    (trained by L-BFGS; the Gauss-Newton Hessian) instead of the logistic
    regression.
    """

    def say(*args):
        print(*args, file=out, flush=True)

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=random_state, stratify=y
    )
    start = time.perf_counter()
    if model == "mlp":
        name = "A (64,) MLPClassifier"
        final = MLPClassifier(
            hidden_layer_sizes=(64,),
            alpha=0.1,
            solver="lbfgs",
            tol=1e-8,
            max_iter=1000,
            random_state=random_state,
        )
    else:
        name = "Logistic regression"
        final = LogisticRegression(C=0.1, tol=1e-8)
    model = make_pipeline(StandardScaler(), final)
    with warnings.catch_warnings():  # L-BFGS's iteration limit: close enough
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    say(
        f"{name} on scikit-learn's digits: {len(X_train)} training and "
        f"{len(X_test)} test images, test accuracy {model.score(X_test, y_test):.3f}."
    )
    shown = X_test[:n_show]
    evaluated = X_test[:n_eval]
    summary = {}
    lines = {}
    explainers = {}
    for method in DEMO_METHODS:
        explainer = InfluenceExplainer(model, method=method).fit(X_train, y_train)
        e = explainer.explain(evaluated, k=k)
        labels = y_train[e.proponents]
        rank = explainer.self_influence_.argsort().argsort() / len(y_train)
        summary[method] = {
            "same_label": float(np.mean(labels == e.target[:, None])),
            "typicality": float(np.median(rank[e.proponents])),
        }
        lines[method] = labels[:n_show]
        explainers[method_name(method)] = explainer
    targets = model.predict(shown)
    say(f"\nLabels of the top {k} proponents of the first {n_show} test digits:")
    say(f"{'predicted':>9}  " + "  ".join(f"{m:>15}" for m in DEMO_METHODS))
    for row, target in enumerate(targets):
        cells = ("".join(str(v) for v in lines[m][row]) for m in DEMO_METHODS)
        say(f"{target:>9}  " + "  ".join(f"{c:>15}" for c in cells))
    say(f"\nOver {len(evaluated)} test digits:")
    say(
        f"{'method':>15}  {'proponents with the predicted label':>36}  "
        f"{'median self-influence percentile':>33}"
    )
    for method, row in summary.items():
        say(f"{method:>15}  {row['same_label']:>36.1%}  {row['typicality']:>33.0%}")
    relatif_better = all(
        summary[m]["same_label"] >= summary["if"]["same_label"]
        and summary[m]["typicality"] < summary["if"]["typicality"]
        for m in ("theta-relatif", "l-relatif")
    )
    say(
        "\nHere RelatIF's proponents share the predicted label at least as often as "
        "IF's and are more typical (lower self-influence): IF favours outliers."
        if relatif_better
        else "\nHere RelatIF did not beat IF on both counts."
    )
    say(f"Done in {time.perf_counter() - start:.1f} s.")
    if plot is not None:
        # Nearest neighbours where the model sees the digits: after the scaler.
        neighbors = NearestNeighborExplainer(model).fit(X_train, y_train)
        explainers[method_name("nearest-neighbor")] = neighbors
        _save_grid(plot, explainers, shown, X_train, k)
        say(f"Saved the test digits and their top {k} proponents to {plot}.")
    return summary


def _save_grid(
    path: str, explainers: dict, shown: np.ndarray, X_train: np.ndarray, k: int
) -> None:
    """Save the ``--plot`` image with :class:`~skrelatif.ExplanationGridDisplay`,
    on a figure made without :mod:`matplotlib.pyplot` (no GUI backend needed)."""
    from matplotlib.figure import Figure

    from ._plot import ExplanationGridDisplay, _grid_figsize

    figure = Figure(
        figsize=_grid_figsize(len(shown), len(explainers), k), layout="constrained"
    )
    display = ExplanationGridDisplay.from_explainers(
        explainers, shown, X_train, k=k, ax=figure.add_subplot()
    )
    display.figure_.suptitle(
        f"Top {k} proponents of each test digit "
        "(labels: blue = the predicted label, orange = another)",
        fontsize=10,
    )
    display.figure_.savefig(path, dpi=100)

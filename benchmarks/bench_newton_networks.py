"""Network ``method="newton"``: the test loss at the updated parameters
against the linearised outputs, both against warm-started refits.

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_newton_networks.py

Breast cancer, standardised, a stratified 75/25 split;
``MLPClassifier((8,), activation="tanh", alpha=1, solver="lbfgs",
tol=1e-12)``. The scores of ``method="newton"`` (one Newton step of the
objective without each training example, by Woodbury) for 10 test points
(their true labels) and 60 training examples spanning the range of the
scores are compared with :func:`skrelatif.validation.leave_one_out` (for a
network: L-BFGS refits warm-started from the trained weights). "updated" is
the package's evaluation, the test loss at ``theta* + delta_i`` through the
forward pass (spec section 7); "linearised" is the evaluation at the
outputs ``f_t + J_t delta_i``, exact only for models whose outputs are
linear in the parameters (what the package did for networks before), got
here by declaring the network's outputs linear. Printed: Pearson r and the
least-squares slope (actual ~ slope * predicted) over the 600 pairs, per
``hessian`` (and ``damping``: the Gauss-Newton matrix of this network is
nearly singular).
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer
from skrelatif._adapters.mlp import MLPAdapter
from skrelatif.validation import agreement, leave_one_out


def spanning(scores, n):
    """n training indices spanning the range of the scores."""
    order = np.argsort(np.abs(scores).max(axis=0))
    return order[np.unique(np.linspace(0, len(order) - 1, n).round().astype(int))]


def main():
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    test = np.random.RandomState(0).choice(len(X_test), 10, replace=False)
    X_test, y_test = X_test[test], y_test[test]
    model = MLPClassifier(
        (8,), activation="tanh", alpha=1.0, solver="lbfgs", tol=1e-12,
        max_iter=20_000, random_state=0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)

    def scores(hessian, linearised, damping=0.0):
        MLPAdapter.outputs_linear_in_params = linearised
        try:
            explainer = InfluenceExplainer(
                model, method="newton", hessian=hessian, damping=damping
            )
            explainer.fit(X_train, y_train)
            return explainer, explainer.transform(X_test, y_test)
        finally:
            MLPAdapter.outputs_linear_in_params = False

    explainer, reference = scores("exact", False)
    indices = spanning(reference, 60)
    start = time.perf_counter()
    loo = leave_one_out(explainer, X_test, y_test, indices)
    seconds = time.perf_counter() - start
    print(f"{len(indices)} warm-started refits ({loo.solver}) in {seconds:.1f} s")
    actual = loo.test_loss_change
    print(
        f"{'hessian':<14}{'damping':>8}  {'evaluation':<12}{'pearson':>9}{'slope':>8}"
    )
    for hessian, damping in (
        ("exact", 0.0),
        ("gauss-newton", 0.0),
        ("gauss-newton", 1e-3),
    ):
        for linearised in (False, True):
            _, predicted = scores(hessian, linearised, damping)
            a = agreement(predicted[:, indices], actual)
            name = "linearised" if linearised else "updated"
            print(
                f"{hessian:<14}{damping:>8g}  {name:<12}"
                f"{a.pearson:>9.3f}{a.slope:>8.2f}"
            )


if __name__ == "__main__":
    main()

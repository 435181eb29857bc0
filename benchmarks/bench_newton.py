"""Speed and accuracy of the second-order tools of issue 10.

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_newton.py

Digits, standardised, 1,000 training images x 64 pixels, 10 classes (650
parameters), ``LogisticRegression(C=0.1, tol=1e-10)``, 100 test points.

(a) :func:`skrelatif.validation.leave_one_out` (exact Newton iterations from
    the optimum, relative tolerance 1e-10 on the step) against refitting the
    scikit-learn model without each of 50 training examples (``newton-cg`` and
    ``lbfgs``, ``tol=1e-10``, warm-started from the fitted parameters, and
    ``lbfgs`` from scratch, as a user refits): the
    wall time of each (median of 3 runs), their ratio, and the largest
    difference between the test-loss changes and the parameter-change norms
    that the two find, relative to the largest value.
(b) ``method="newton"`` against ``method="if"``: the wall time of ``fit`` and
    of ``transform`` on the 100 test points (median of 3 each), and the
    ratios, which the issue bounds by K = 10 (the number of outputs). The
    ``"newton"`` fit computes every example's leave-one-out step (``loo_loss_``,
    n K solves); the ``"if"`` fit leaves ``self_influence_`` for first access.

Everything runs with one BLAS thread (as ``leave_one_out`` does for each
removal); times depend on the machine and its load.
"""

import time
import warnings
from functools import partial

import numpy as np
from scipy.special import logsumexp
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skrelatif import InfluenceExplainer
from skrelatif.validation import leave_one_out

C, N_TRAIN, N_TEST, N_REMOVED, REPEATS = 0.1, 1000, 100, 50, 3


def log_losses(model, X, y):
    F = model.decision_function(X)
    return logsumexp(F, axis=1) - F[np.arange(len(y)), y]


def parameters(model):
    """coef and intercept, without the common shift of the intercepts (to
    which a multinomial model is invariant)."""
    intercept = model.intercept_ - model.intercept_.mean()
    return np.concatenate([model.coef_.ravel(), intercept])


def refit_all(model, X, y, X_test, y_test, removed, solver, warm=True):
    """Test-loss changes and parameter-change norms of refits (warm-started
    from the fitted parameters, or from scratch as a user refits)."""
    params = dict(C=C, tol=1e-10, max_iter=100_000, solver=solver, warm_start=warm)

    def fit(rows):
        refit = LogisticRegression(**params)
        if warm:
            refit.coef_ = model.coef_.copy()
            refit.intercept_ = model.intercept_.copy()
        keep = np.delete(np.arange(len(y)), rows)
        return refit.fit(X[keep], y[keep])

    reference = fit([])
    before, theta = log_losses(reference, X_test, y_test), parameters(reference)
    changes, norms = [], []
    for i in removed:
        refit = fit([i])
        changes.append(log_losses(refit, X_test, y_test) - before)
        norms.append(np.linalg.norm(parameters(refit) - theta))
    return np.column_stack(changes), np.array(norms)


def timed(function, repeats=REPEATS):
    """The last result of ``function()`` and the median wall time."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, float(np.median(times))


def main():
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(y))
    X, y = StandardScaler().fit_transform(X)[order], y[order]
    X_train, y_train = X[:N_TRAIN], y[:N_TRAIN]
    X_test, y_test = X[N_TRAIN : N_TRAIN + N_TEST], y[N_TRAIN : N_TRAIN + N_TEST]
    model = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X_train, y_train)
    removed = np.random.RandomState(1).choice(N_TRAIN, N_REMOVED, replace=False)
    print(
        f"digits: {N_TRAIN} x {X.shape[1]}, 10 classes, C={C}; {N_REMOVED} removals, "
        f"{N_TEST} test points; median of {REPEATS} runs, one BLAS thread"
    )

    with threadpool_limits(limits=1, user_api="blas"):
        explainer = InfluenceExplainer(model, method="if").fit(X_train, y_train)
        loo, t_loo = timed(
            lambda: leave_one_out(explainer, X_test, y_test, removed, solver="newton")
        )
        print(f"(a) leave_one_out (Newton):      {t_loo:7.2f} s")
        scale = np.abs(loo.test_loss_change).max()
        for solver, warm in (
            ("newton-cg", True),
            ("lbfgs", True),
            ("lbfgs", False),
        ):
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a refit that does not converge
                (changes, norms), t_refit = timed(
                    partial(
                        refit_all,
                        model,
                        X_train,
                        y_train,
                        X_test,
                        y_test,
                        removed,
                        solver,
                        warm,
                    )
                )
            loss_diff = np.abs(loo.test_loss_change - changes).max() / scale
            norm_diff = np.abs(loo.param_change_norm - norms).max() / norms.max()
            print(
                f"    refit, {solver:9s} {'warm' if warm else 'cold'}:      "
                f"{t_refit:7.2f} s   "
                f"leave_one_out is {t_refit / t_loo:5.1f}x faster; max relative "
                f"difference: test-loss change {loss_diff:.1e}, "
                f"||delta theta|| {norm_diff:.1e}"
            )

        times = {}
        for method in ("if", "newton"):
            fitted, t_fit = timed(
                partial(InfluenceExplainer(model, method=method).fit, X_train, y_train)
            )
            _, t_transform = timed(partial(fitted.transform, X_test))
            times[method] = (t_fit, t_transform)
    for method, (t_fit, t_transform) in times.items():
        print(
            f"(b) {method!r:8s} fit {t_fit:6.2f} s + transform {t_transform:6.2f} s "
            f"= {t_fit + t_transform:6.2f} s"
        )
    ratio = [times["newton"][j] / times["if"][j] for j in (0, 1)]
    total = sum(times["newton"]) / sum(times["if"])
    print(
        f"    newton / if: fit {ratio[0]:.1f}x, transform {ratio[1]:.1f}x, "
        f"fit + transform {total:.1f}x (bound: K = 10)"
    )


if __name__ == "__main__":
    main()

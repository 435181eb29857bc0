"""
==============================================
Approximate leave-one-out cross-validation
==============================================

Leave-one-out cross-validation refits the model once per training example.
With ``method="newton"``, :attr:`~skrelatif.InfluenceExplainer.loo_loss_`
gives each example's loss under the model refit without it from *one* fit:
one Newton step of the leave-one-out objective per example (a K x K solve,
K the number of outputs). For a squared loss that step is exact, and
``loo_loss_`` is the exact leave-one-out error.

Here we choose ``C`` of a logistic regression with it, and compare with
scikit-learn's ``cross_val_score(..., cv=LeaveOneOut())``.
"""

# %%
# Choosing C on the wine data
# ---------------------------
# Standardised once on all the data (the scaler is not part of what is
# cross-validated, in both computations), 178 examples, 3 classes. Both use
# the same tightly converged solver.
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes, load_wine
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.metrics import log_loss, make_scorer
from sklearn.model_selection import LeaveOneOut, cross_val_score
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer

X, y = load_wine(return_X_y=True)
X = StandardScaler().fit_transform(X)
Cs = np.logspace(-2, 1.5, 6)


def make_model(C):
    return LogisticRegression(C=C, solver="newton-cholesky", tol=1e-8, max_iter=1000)


# %%
# One fit per C: ``loo_loss_`` (Newton) and, for comparison, the first-order
# estimate, the training loss plus the ``"if"`` self-influence.
start = time.perf_counter()
newton, first_order = [], []
for C in Cs:
    model = make_model(C).fit(X, y)
    newton.append(InfluenceExplainer(model, method="newton").fit(X, y).loo_loss_.mean())
    train_loss = -np.log(model.predict_proba(X)[np.arange(len(y)), y])
    self_influence = InfluenceExplainer(model, method="if").fit(X, y).self_influence_
    first_order.append((train_loss + self_influence).mean())
time_newton = time.perf_counter() - start

# %%
# One fit per C and per example: scikit-learn's leave-one-out
# cross-validation. (The built-in ``"neg_log_loss"`` scorer cannot score a
# single held-out example, whose label set is incomplete: the labels are
# passed explicitly.)
scorer = make_scorer(
    log_loss, greater_is_better=False, response_method="predict_proba", labels=[0, 1, 2]
)
start = time.perf_counter()
exact = [
    -cross_val_score(make_model(C), X, y, cv=LeaveOneOut(), scoring=scorer).mean()
    for C in Cs
]
time_exact = time.perf_counter() - start

print("       C   loo_loss_  first-order  LeaveOneOut CV")
for C, a, b, c in zip(Cs, newton, first_order, exact):
    print(f"{C:8.3f}   {a:9.5f}  {b:11.5f}  {c:14.5f}")
print(f"C chosen by loo_loss_:            {Cs[np.argmin(newton)]:.3f}")
print(f"C chosen by the first-order loss: {Cs[np.argmin(first_order)]:.3f}")
print(f"C chosen by LeaveOneOut CV:       {Cs[np.argmin(exact)]:.3f}")
print(
    f"time: loo_loss_ {time_newton:.2f} s ({len(Cs)} fits), LeaveOneOut CV "
    f"{time_exact:.1f} s ({len(Cs) * len(y)} fits)"
)

# %%
# The approximation is close for strong regularisation and drifts as ``C``
# grows (each example moves the optimum further and one Newton step no longer
# reaches it), but here both curves have their minimum at the same ``C``. The
# first-order estimate (the training loss plus the predicted rise of the
# example's own loss, linearised) falls with ``C`` throughout: it would choose
# the weakest regularisation.
fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
ax.plot(Cs, exact, "o-", label="LeaveOneOut CV (n refits per C)")
ax.plot(Cs, newton, "s--", label="loo_loss_ (Newton, one fit per C)")
ax.plot(Cs, first_order, "^:", label="first order (one fit per C)")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("C")
ax.set_ylabel("mean leave-one-out log-loss")
ax.set_title("Wine, standardised logistic regression")
ax.legend()

# %%
# Exact for squared loss: Ridge on diabetes
# -----------------------------------------
# For ridge regression ``loo_loss_`` is the exact leave-one-out squared error,
# the same quantity that :class:`~sklearn.linear_model.RidgeCV` computes in
# closed form (``store_cv_results=True``).
X, y = load_diabetes(return_X_y=True)
X = StandardScaler().fit_transform(X)
for alpha in (0.1, 10.0, 1000.0):
    ridge = Ridge(alpha=alpha).fit(X, y)
    ours = InfluenceExplainer(ridge, method="newton").fit(X, y).loo_loss_
    theirs = RidgeCV(alphas=[alpha], store_cv_results=True).fit(X, y)
    theirs = theirs.cv_results_.ravel()
    error = np.abs(ours - theirs).max() / np.abs(theirs).max()
    print(
        f"Ridge(alpha={alpha:g}): mean LOO squared error {ours.mean():.2f}, "
        f"max relative difference to RidgeCV {error:.1e}"
    )
    assert error < 1e-10
plt.show()

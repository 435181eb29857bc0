"""
==========================================================================
Explaining a neural network: digits, per-label explanations, leave-one-out
==========================================================================

Influence functions and RelatIF for an
:class:`~sklearn.neural_network.MLPClassifier`, as Barshan et al. (2020) do
for their ConvNets: the Hessian is replaced by the generalised Gauss-Newton
matrix (the Fisher of the log-likelihood, their appendix A; the default
``hessian="auto"`` for networks), inverted exactly or through Kronecker
factors per layer (``solver="kfac"``, their appendix C).

1. Digits explained by a ``(64,)`` network with IF, theta-RelatIF, l-RelatIF
   and nearest neighbours, next to the l-RelatIF explanations of a logistic
   regression on the same data (Fig. 7's idea, with a network).
2. A digit the network finds confusable, explained for each of its two most
   likely labels (Fig. 10's idea): which training digits support each
   reading of it.
3. The network version of Fig. 6: the influence function's predicted change
   of a test loss against actual leave-one-out retraining, for every
   curvature and solver, on a small network. Retraining starts from the trained weights
   (warm start, L-BFGS to a tight tolerance): for a non-convex model this is
   the *local* answer, the minimum nearest the trained one.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrelatif import (
    ExplanationGridDisplay,
    InfluenceExplainer,
    LeaveOneOutDisplay,
    NearestNeighborExplainer,
)
from skrelatif.validation import agreement, leave_one_out

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=1000, random_state=0, stratify=y
)
network = make_pipeline(
    StandardScaler(),
    MLPClassifier(
        hidden_layer_sizes=(64,),
        alpha=0.1,
        solver="lbfgs",
        tol=1e-8,
        max_iter=1000,
        random_state=0,
    ),
)
with warnings.catch_warnings():  # L-BFGS's iteration limit: close enough
    warnings.simplefilter("ignore", ConvergenceWarning)
    network.fit(X_train, y_train)
linear = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, tol=1e-8))
linear.fit(X_train, y_train)
print(
    f"test accuracy: network {network.score(X_test, y_test):.3f}, "
    f"logistic regression {linear.score(X_test, y_test):.3f}"
)

# Influence functions assume a model at a minimum of its objective: L-BFGS
# gets there (the explainer warns when the objective's gradient is large).
explainers = {
    "IF (MLP)": InfluenceExplainer(network, method="if"),
    "θ-RelatIF (MLP)": InfluenceExplainer(network, method="theta-relatif"),
    "ℓ-RelatIF (MLP)": InfluenceExplainer(network, method="l-relatif"),
    "Nearest-N": NearestNeighborExplainer(network),
    "ℓ-RelatIF (logistic)": InfluenceExplainer(linear, method="l-relatif"),
}
for explainer in explainers.values():
    explainer.fit(X_train, y_train)

# %%
# The grid
# --------
shown = np.random.RandomState(1).choice(len(X_test), size=5, replace=False)
display = ExplanationGridDisplay.from_explainers(
    explainers, X_test[shown], X_train, k=3
)
display.figure_.suptitle("Top-3 proponents of the predicted label")

# Over 300 test digits: the share of top-3 proponents with the predicted
# label, and how unusual they are (median self-influence percentile under
# the network's Gauss-Newton matrix).
rank = explainers["IF (MLP)"].self_influence_.argsort().argsort() / len(y_train)
many = X_test[:300]
print(f"{'method':22s} {'same label':>10s} {'self-infl. percentile':>22s}")
for name, explainer in explainers.items():
    e = explainer.explain(many, k=3)
    same = np.mean(y_train[e.proponents] == e.target[:, None])
    print(f"{name:22s} {same:10.3f} {np.median(rank[e.proponents]):22.0%}")

# %%
# A confusable digit, explained for each of its two most likely labels
# --------------------------------------------------------------------
proba = np.sort(network.predict_proba(X_test), axis=1)
confusable = int(np.argmin(proba[:, -1] - proba[:, -2]))
top_two = network.classes_[np.argsort(network.predict_proba(X_test[[confusable]]))]
labels = top_two[0, ::-1][:2]
print(f"test digit {confusable}: p = {proba[confusable, ::-1][:2].round(3)}")
print(f"for the labels {labels} (true label {y_test[confusable]})")
display = ExplanationGridDisplay.from_explainers(
    {"ℓ-RelatIF (MLP)": explainers["ℓ-RelatIF (MLP)"]},
    X_test[[confusable, confusable]],
    X_train,
    y=labels,
    k=5,
)
display.figure_.suptitle("One digit, two labels: the proponents of each")

# %%
# Leave-one-out on a small network, for every curvature and solver
# ------------------------------------------------------------------
# A (8,) tanh network on 300 breast-cancer tumours, trained to a tight
# tolerance; 20 removals (the training examples with the largest exact
# influence on one test loss).
Xb, yb = load_breast_cancer(return_X_y=True)
Xb = StandardScaler().fit_transform(Xb)
Xb_train, yb_train, Xb_test, yb_test = Xb[:300], yb[:300], Xb[300:301], yb[300:301]
small = MLPClassifier(
    hidden_layer_sizes=(8,),
    activation="tanh",
    solver="lbfgs",
    alpha=10.0,
    tol=1e-10,
    max_iter=10_000,
    random_state=0,
).fit(Xb_train, yb_train)
# Undamped (``damping=0``) but in the last panel, which shows the exact
# Hessian with the default ``damping="auto"`` (a tenth of its mean diagonal
# for networks; see the networks page of the user guide).
options = {
    "exact": {"hessian": "exact", "damping": 0},
    "gauss-newton": {"hessian": "gauss-newton", "damping": 0},
    "kfac": {"hessian": "gauss-newton", "solver": "kfac", "damping": 0},
    "lissa": {
        "hessian": "exact",
        "solver": "lissa",
        "damping": 0,
        "random_state": 0,
        "solver_options": {"depth": 500},
    },
    "identity": {"hessian": "identity"},
    "exact, damping auto": {"hessian": "exact"},
}
scores = {}
for hessian, kwargs in options.items():
    explainer = InfluenceExplainer(small, method="if", **kwargs)
    scores[hessian] = (explainer.fit(Xb_train, yb_train), explainer)
exact = scores["exact"][1]
removed = np.argsort(-np.abs(exact.transform(Xb_test, yb_test)[0]))[:20]
loo = leave_one_out(exact, Xb_test, yb_test, removed)
fig, axes = plt.subplots(1, len(options), figsize=(3.2 * len(options), 3.4))
print(f"Pearson r of the predicted against the actual change ({loo.solver}):")
for ax, (hessian, (_, explainer)) in zip(axes, scores.items()):
    predicted = explainer.transform(Xb_test, yb_test)[:, removed]
    r = agreement(predicted, loo.test_loss_change).pearson
    print(f"  {hessian:20s} damping={explainer.damping_:<8.3g} Pearson r = {r:.3f}")
    LeaveOneOutDisplay.from_predictions(
        predicted, loo.test_loss_change, name=hessian, ax=ax
    )
    ax.set_title(hessian)
fig.suptitle("IF on a (8,) network against warm-started leave-one-out")
# With this strong penalty the fitted network's residuals are large, so the
# second-order term that the Gauss-Newton matrix (and K-FAC, which
# approximates it) leaves out is large too: only the exact Hessian (and
# LiSSA, which estimates it) predicts the removals well here, undamped. The
# default ``damping="auto"`` (last panel), whose fraction of the mean
# curvature was chosen on other networks (the networks page's "Damping"),
# agrees less with retraining on this one: pass ``damping=0`` where the
# exact Hessian is positive definite and the scores' scale matters.
fig.tight_layout()
plt.show()

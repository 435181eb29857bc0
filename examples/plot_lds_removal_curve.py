"""
========================================================================
The field's yardsticks: linear datamodeling score and removal curves
========================================================================

Data-attribution methods are graded by two experiments that retrain the
model many times (see "How accurate is each method?" in the user guide):

- the **linear datamodeling score** (LDS; Park et al. 2023, TRAK): refit the
  model on random halves of the training set, predict each refit's test loss
  from the scores, and take the Spearman correlation across the halves;
- the **removal curve** (Brophy et al. 2023): remove a test point's top
  proponents, refit, and measure how much its test loss rises, beside the
  same number of random examples (and the nearest neighbours).

:class:`~skrelatif.LinearDatamodelingDisplay` and
:class:`~skrelatif.RemovalCurveDisplay` compute both (in their ``from_*``
methods) and draw them.
"""

# %%
# A logistic regression on breast cancer
# --------------------------------------
# Standardised data, trained to a tight tolerance (influence functions are a
# local approximation around the optimum).
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrelatif import (
    InfluenceExplainer,
    LinearDatamodelingDisplay,
    NearestNeighborExplainer,
    RemovalCurveDisplay,
)

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, random_state=0, stratify=y
)
model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, tol=1e-10))
model.fit(X_train, y_train)
test = np.random.RandomState(0).choice(len(X_test), size=8, replace=False)
X_t, y_t = X_test[test], y_test[test]

explainers = {
    method: InfluenceExplainer(model, method=method).fit(X_train, y_train)
    for method in ("if", "newton", "l-relatif")
}

# %%
# Linear datamodeling score
# -------------------------
# The same 50 random halves for both methods (``subsets`` given explicitly),
# so that they are graded on the same refits. The x axis is the predicted
# change of the test loss when the other half is removed (the sum of the
# removed examples' ``"if"`` scores, or the group Newton step), the y axis
# the test loss of the model refit on the half. Only ranks count.
rng = np.random.RandomState(0)
n_train = len(X_train)
subsets = np.zeros((50, n_train), dtype=bool)
for row in subsets:
    row[rng.choice(n_train, n_train // 2, replace=False)] = True

fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), layout="constrained")
for ax, method in zip(axes, ("if", "newton")):
    display = LinearDatamodelingDisplay.from_explainer(
        explainers[method], X_t, y_t, test_index=0, subsets=subsets, ax=ax
    )
    print(
        f"method={method!r:9} LDS (mean over {len(X_t)} test points) = "
        f"{display.lds_.score:.3f}; test point 0: rho = {display.spearman_:.3f}"
    )

# %%
# Removal curve
# -------------
# For each test point, its top 0.5%, 1%, 2% and 5% proponents are removed and
# the model refit; the lines are the mean change of the test loss. The
# dashed line removes as many random examples; the nearest neighbours (in the
# standardised space) are a second baseline.
neighbours = NearestNeighborExplainer(model).fit(X_train, y_train)
display = RemovalCurveDisplay.from_explainers(
    {
        "IF": explainers["if"],
        "l-RelatIF": explainers["l-relatif"],
        "nearest neighbours": neighbours,
    },
    X_t,
    y_t,
    fractions=(0.005, 0.01, 0.02, 0.05),
    random_state=0,
)
lines = {**display.lines_, "random": display.random_line_}
for name, line in lines.items():
    print(f"{name:18} mean test loss change at 5%: {line.get_ydata()[-1]:.4f}")
plt.show()

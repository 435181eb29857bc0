"""
========================================================================
What removing the top proponent does: RelatIF vs IF vs nearest (Table 4)
========================================================================

Table 4 of Barshan et al. (2020): for 100 random test digits, take the single
strongest proponent chosen by each method, remove it, retrain, and measure the
change of the test loss *relative to the global effect of the removal*:

- ``Δ test loss / ||Δθ||``: per unit of parameter change;
- ``Δ test loss / sqrt(sum_j Δl_j²)``: per unit of change of all the training
  losses.

An influence function picks the example whose removal changes the test loss
the most, which is often an example that changes *everything* (an outlier or
a mislabelled digit). RelatIF is meant to pick examples whose effect is
specific to the test point, so both ratios should be larger for RelatIF than
for IF and for the nearest neighbour. The numbers below are what this script
measures (mean ± standard error over the 100 test points).
"""

# %%
# Model and explainers
# --------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer, NearestNeighborExplainer
from skrelatif.validation import leave_one_out

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, random_state=0, stratify=y
)
model = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-8, max_iter=5000))
model.fit(X_train, y_train)
print(f"test accuracy: {model.score(X_test, y_test):.3f}")

rng = np.random.RandomState(0)
X_t = X_test[rng.choice(len(X_test), size=100, replace=False)]

explainers = {
    "IF": InfluenceExplainer(model, method="if"),
    "theta-RelatIF": InfluenceExplainer(model, method="theta-relatif"),
    "l-RelatIF": InfluenceExplainer(model, method="l-relatif"),
    "Nearest-N": NearestNeighborExplainer(model),
}
top = {}
for name, explainer in explainers.items():
    explainer.fit(X_train, y_train)
    top[name] = explainer.explain(X_t, k=1).proponents[:, 0]

# %%
# Retrain once per distinct removed example
# -----------------------------------------
# The test losses are taken at the predicted labels (the labels explained).
removed = np.unique(np.concatenate(list(top.values())))
print(f"{len(removed)} distinct examples to remove")
loo = leave_one_out(explainers["IF"], X_t, None, removed, n_jobs=2)
column = {index: j for j, index in enumerate(removed)}

# %%
# The table
# ---------
rows = np.arange(len(X_t))
results = {}
print(f"{'method':14s} {'Δloss/||Δθ||':>18s} {'Δloss/RSS(Δl)':>18s} {'Δloss':>9s}")
for name, chosen in top.items():
    j = np.array([column[index] for index in chosen])
    change = loo.test_loss_change[rows, j]
    ratios = {
        "theta": change / loo.param_change_norm[j],
        "loss": change / loo.train_loss_change_rss[j],
    }
    results[name] = ratios
    cells = [
        f"{r.mean():.3f} ± {r.std(ddof=1) / np.sqrt(len(r)):.3f}"
        for r in ratios.values()
    ]
    print(f"{name:14s} {cells[0]:>18s} {cells[1]:>18s} {change.mean():9.4f}")

# %%
# Paired comparison: RelatIF against IF on the same test points (mean
# difference ± standard error of the difference).
for key, label in (("theta", "Δloss/||Δθ||"), ("loss", "Δloss/RSS(Δl)")):
    for name in ("theta-RelatIF", "l-RelatIF"):
        diff = results[name][key] - results["IF"][key]
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        print(f"{label:14s} {name} - IF: {diff.mean():+.3f} ± {se:.3f}")

# %%
# The same numbers as a bar chart.
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
for ax, key, label in zip(
    axes, ("theta", "loss"), ("Δ test loss / ||Δθ||", "Δ test loss / RSS(Δ train loss)")
):
    means = [results[name][key].mean() for name in results]
    errors = [results[name][key].std(ddof=1) / np.sqrt(len(X_t)) for name in results]
    ax.bar(list(results), means, yerr=errors, capsize=4, color="tab:blue")
    ax.set_ylabel(label)
    ax.tick_params(axis="x", rotation=20)
fig.suptitle("Removing the top proponent of 100 test digits")
plt.show()

"""
==============================================================================
Which training digits explain a prediction? RelatIF, IF, nearest (Figs. 7, 11)
==============================================================================

For a few test digits, the three strongest proponents chosen by
theta-RelatIF, l-RelatIF, the influence function (IF) and the nearest
neighbours (in the model's standardised input space), as in Figs. 7 and 11 of
Barshan et al. (2020). A proponent's label is blue when it is the predicted
label; a proponent framed in orange carries another label.

IF favours examples with a large *global* influence: atypical or badly fitted
digits, which change the whole model when removed. RelatIF divides that
influence out and returns typical examples of the predicted class; nearest
neighbours look alike pixel by pixel but ignore what the model does.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrelatif import (
    ExplanationGridDisplay,
    InfluenceExplainer,
    NearestNeighborExplainer,
)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, random_state=0, stratify=y
)
model = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-8, max_iter=5000))
model.fit(X_train, y_train)

explainers = {
    "theta-RelatIF": InfluenceExplainer(model, method="theta-relatif"),
    "l-RelatIF": InfluenceExplainer(model, method="l-relatif"),
    "IF": InfluenceExplainer(model, method="if"),
    "Nearest-N": NearestNeighborExplainer(model),
}
for explainer in explainers.values():
    explainer.fit(X_train, y_train)

# %%
# The grid
# --------
shown = np.random.RandomState(1).choice(len(X_test), size=6, replace=False)
display = ExplanationGridDisplay.from_explainers(
    explainers, X_test[shown], X_train, k=3
)
display.figure_.suptitle("Top-3 proponents of the predicted label")

# %%
# What the methods pick, over 300 test digits
# -------------------------------------------
# The share of top-3 proponents that carry the predicted label, and how
# unusual the chosen examples are for the model: their training loss and
# their self-influence (the predicted rise of their own loss when removed),
# as medians over the chosen examples.
train_loss = -np.log(model.predict_proba(X_train)[np.arange(len(y_train)), y_train])
self_influence = InfluenceExplainer(model, method="if").fit(X_train, y_train)
self_influence = self_influence.self_influence_
X_many = X_test[np.random.RandomState(0).choice(len(X_test), 300, replace=False)]
print(f"{'method':14s} {'same label':>10s} {'train loss':>11s} {'self-infl.':>11s}")
for name, explainer in explainers.items():
    e = explainer.explain(X_many, k=3)
    same = np.mean(e.train_target[e.proponents] == e.target[:, None])
    chosen = e.proponents.ravel()
    print(
        f"{name:14s} {same:10.3f} {np.median(train_loss[chosen]):11.4f} "
        f"{np.median(self_influence[chosen]):11.4f}"
    )
print(
    f"{'(all train)':14s} {'':10s} {np.median(train_loss):11.4f} "
    f"{np.median(self_influence):11.4f}"
)
plt.show()

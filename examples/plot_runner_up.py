"""
==========================================================
Explaining the predicted label and the runner-up (Fig. 10)
==========================================================

An explanation is always *of a label*. Besides the model's prediction, one can
ask why the model also considered its second most probable class: which
training examples support the runner-up? Fig. 10 of Barshan et al. (2020)
shows both for ambiguous digits. Pass the labels to explain as ``y``.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrelatif import ExplanationGridDisplay, InfluenceExplainer

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, random_state=0, stratify=y
)
model = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-8, max_iter=5000))
model.fit(X_train, y_train)
explainer = InfluenceExplainer(model, method="l-relatif").fit(X_train, y_train)

# %%
# The most ambiguous test digits: the smallest gap between the two most
# probable classes.
proba = model.predict_proba(X_test)
order = np.argsort(proba, axis=1)
first, second = order[:, -1], order[:, -2]
gap = proba[np.arange(len(X_test)), first] - proba[np.arange(len(X_test)), second]
ambiguous = np.argsort(gap)[:5]
predicted = model.classes_[first[ambiguous]]
runner_up = model.classes_[second[ambiguous]]
for t, p, r in zip(ambiguous, predicted, runner_up):
    print(
        f"test digit {t:4d} (true {y_test[t]}): predicted {p} "
        f"(p={proba[t, first[t]]:.2f}), runner-up {r} (p={proba[t, second[t]]:.2f})"
    )

# %%
# Top proponents of each label
# ----------------------------
predicted_e = explainer.explain(X_test[ambiguous], k=4)
runner_up_e = explainer.explain(X_test[ambiguous], y=runner_up, k=4)

fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 12))
ExplanationGridDisplay.from_explanation(
    {"l-RelatIF, predicted": predicted_e}, X_test[ambiguous], X_train, ax=top
)
ExplanationGridDisplay.from_explanation(
    {"l-RelatIF, runner-up": runner_up_e}, X_test[ambiguous], X_train, ax=bottom
)

# %%
# Over all test digits, the share of top-4 proponents that carry the explained
# label, for the prediction and for the runner-up.
second_all = model.classes_[second]
for name, labels in (("predicted", None), ("runner-up", second_all)):
    e = explainer.explain(X_test, y=labels, k=4)
    same = np.mean(e.train_target[e.proponents] == e.target[:, None])
    print(f"{name:10s}: {same:.3f} of the top-4 proponents carry the explained label")
plt.show()

"""
=====================================================
How many training examples does a prediction rest on?
=====================================================

An influence score says what removing *one* training example would do. A
question users ask more often is whether a prediction is robust: how many
training examples would have to go for the predicted label to change?
:meth:`~skrelatif.InfluenceExplainer.flip_sets` answers it for each test
point, greedily: training examples are ranked by how much their own removal
(one Newton step of the leave-one-out objective) lowers the margin of the
predicted label, and the shortest prefix of that ranking whose removal
*together* (the group Newton step) changes the label is kept. With
``verify=True`` every set is confirmed by refitting the model without it
(Newton iterations to the exact optimum), and shortened while the refit
without it still changes the label.

Here we check the sets once more with plain scikit-learn: one
``LogisticRegression`` refit without each set, and one without the set minus
its last example.
"""

# %%
# A digits classifier
# -------------------
# 800 training images, standardised (the scaler is fitted once, outside the
# model, so that refitting without a set changes nothing but the model),
# multinomial logistic regression with strong regularisation.
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer

X, y = load_digits(return_X_y=True)
X_train_raw, X_test_raw, y_train, y_test = train_test_split(
    X, y, train_size=800, random_state=0, stratify=y
)
scaler = StandardScaler().fit(X_train_raw)
X_train, X_test = scaler.transform(X_train_raw), scaler.transform(X_test_raw)

params = dict(C=0.05, tol=1e-10, max_iter=10_000)
model = LogisticRegression(**params).fit(X_train, y_train)
print(f"test accuracy: {model.score(X_test, y_test):.3f}")

# %%
# Flip sets of 20 test digits
# ---------------------------
MAX_SIZE = 30
test_points = np.random.RandomState(0).choice(len(X_test), size=20, replace=False)
X_t = X_test[test_points]
predicted = model.predict(X_t)

start = time.perf_counter()
explainer = InfluenceExplainer(model, method="newton").fit(X_train, y_train)
sets = explainer.flip_sets(X_t, max_size=MAX_SIZE, verify=True)
print(f"flip_sets of {len(X_t)} test points: {time.perf_counter() - start:.1f} s")

found = sets.size > 0
print(f"sizes: {sets.size.tolist()} (-1: no set of at most {MAX_SIZE} found)")
print(
    f"{found.sum()} of {len(X_t)} predictions change after removing at most "
    f"{MAX_SIZE} of the {len(X_train)} training examples; all verified by "
    f"refitting: {bool(sets.verified[found].all())}"
)

# %%
# Independent check with scikit-learn
# -----------------------------------
# For each set: refit ``LogisticRegression`` without it (the label must
# change) and without the set minus its last example (it must not: the set is
# the shortest greedy prefix that flips). The greedy search gives no guarantee
# that no *other*, smaller set exists.


def refit_without(rows):
    kept = np.delete(np.arange(len(X_train)), rows)
    return LogisticRegression(**params).fit(X_train[kept], y_train[kept])


after = {}
for t in np.flatnonzero(found):
    rows = sets.indices[t]
    label = refit_without(rows).predict(X_t[t : t + 1])[0]
    shorter = refit_without(rows[:-1]).predict(X_t[t : t + 1])[0]
    after[t] = label
    print(
        f"test #{test_points[t]:3d} (label {y_test[test_points[t]]}, predicted "
        f"{predicted[t]}): {len(rows):2d} removed -> refit predicts {label}; "
        f"without the last one: {shorter}"
    )
    assert label != predicted[t] and shorter == predicted[t]

# %%
# How many examples each prediction rests on
# -------------------------------------------
# Most predictions survive the removal of dozens of training examples; a few,
# close to the decision boundary, change after removing a handful.
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
bins = np.arange(1, MAX_SIZE + 2) - 0.5
ax.hist(sets.size[found], bins=bins, color="C0", label="flip-set size")
ax.bar(MAX_SIZE + 3, (~found).sum(), width=2, color="C7", label=f"none <= {MAX_SIZE}")
ax.set_xlabel("training examples removed to change the predicted label")
ax.set_ylabel("test points")
ax.set_title(f"Digits, LogisticRegression(C={params['C']}): {len(X_t)} test points")
ax.legend()

# %%
# The smallest sets
# -----------------
# Each row: the test digit (in red: its prediction, then the label predicted
# by the refit without the set), followed by the removed training digits with their
# labels, in removal order.
smallest = np.flatnonzero(found)[np.argsort(sets.size[found], kind="stable")][:3]
n_cols = 1 + sets.size[smallest].max()
fig, axes = plt.subplots(
    len(smallest), n_cols, figsize=(1.3 * n_cols, 1.7 * len(smallest)), squeeze=False
)
for row, t in zip(axes, smallest):
    for ax in row:
        ax.set_axis_off()
    row[0].imshow(X_test_raw[test_points[t]].reshape(8, 8), cmap="gray_r")
    row[0].set_title(
        f"test #{test_points[t]}\n{predicted[t]} -> {after[t]}", color="C3", fontsize=9
    )
    for ax, i in zip(row[1:], sets.indices[t]):
        ax.imshow(X_train_raw[i].reshape(8, 8), cmap="gray_r")
        ax.set_title(f"#{i}: {y_train[i]}", fontsize=9)
fig.suptitle("Smallest flip sets: removing these changes the prediction")
plt.show()

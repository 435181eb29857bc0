"""
=======================================================
Which support vectors explain a kernel SVM's prediction
=======================================================

For a soft-margin SVM, the influence function of a training example on a test
prediction is ``y_i y_t K(x_i, x_t)`` for support vectors and zero for every
other example (Barshan et al. 2020, appendix F). With a polynomial kernel,
``K(x_i, x_t)`` grows with the norm of ``x_i`` in feature space, so the
influence function tends to pick far-away, large-norm support vectors, such as
an outlier. RelatIF divides by ``sqrt(K(x_i, x_i))``, as if every support
vector were a unit vector in feature space, and picks the support vectors
that are most *similar* to the test point instead.

This example fits ``SVC(kernel="poly", degree=2)`` on two classes, one of
which has a mislabelled outlier deep inside the other class, and shows the
top proponents chosen by each method for one test point.
"""

# %%
# A two-class toy problem with an outlier
# ---------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.svm import SVC

from skrelatif import InfluenceExplainer

rng = np.random.RandomState(0)
X = np.vstack(
    [
        rng.normal([1.5, 1.5], 1.0, (40, 2)),  # class 1
        rng.normal([-1.5, -1.5], 1.0, (40, 2)),  # class 0
        [[-6.0, -5.0]],  # an outlier labelled 1, inside class 0
    ]
)
y = np.r_[np.ones(40), np.zeros(40), 1].astype(int)
outlier = len(y) - 1
x_test = np.array([[0.7, 0.9]])

model = SVC(kernel="poly", degree=2, gamma=1.0, coef0=1.0, C=0.1).fit(X, y)
print(
    f"{len(model.support_)} support vectors; the outlier is one of them:",
    outlier in model.support_,
)
print("predicted class of the test point:", model.predict(x_test)[0])

# %%
# Influence function versus RelatIF
# ---------------------------------
# Both explainers score only the support vectors. The influence function's
# strongest proponent is the outlier: its feature vector is long, so its
# kernel value with the test point is large. RelatIF normalises it away and
# prefers the support vectors next to the test point.
explanations = {}
for method in ("if", "l-relatif"):
    explainer = InfluenceExplainer(model, method=method).fit(X, y)
    explanations[method] = explainer.explain(x_test, k=3)
    e = explanations[method]
    print(
        f"{method:>9}: proponents {e.proponents[0]}, "
        f"scores {np.round(e.proponent_scores[0], 2)}"
    )

# %%
# Plot the decision boundary, the support vectors and each method's choice.
xx, yy = np.meshgrid(np.linspace(-7, 4, 200), np.linspace(-6, 4, 200))
decision = model.decision_function(np.c_[xx.ravel(), yy.ravel()]).reshape(xx.shape)

fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharey=True)
titles = {"if": "Influence function", "l-relatif": "RelatIF"}
for ax, (method, e) in zip(axes, explanations.items()):
    ax.contour(
        xx,
        yy,
        decision,
        levels=[-1, 0, 1],
        colors="grey",
        linestyles=["--", "-", "--"],
        linewidths=1,
    )
    ax.scatter(
        X[:, 0], X[:, 1], c=y, cmap="coolwarm", s=25, edgecolors="k", linewidths=0.3
    )
    sv = model.support_vectors_
    ax.scatter(
        sv[:, 0],
        sv[:, 1],
        s=90,
        facecolors="none",
        edgecolors="k",
        linewidths=0.8,
        label="support vectors",
    )
    top = X[e.proponents[0]]
    ax.scatter(
        top[:, 0],
        top[:, 1],
        s=220,
        facecolors="none",
        edgecolors="green",
        linewidths=2.5,
        label="top-3 proponents",
    )
    ax.scatter(
        *x_test[0], marker="*", s=300, c="gold", edgecolors="k", label="test point"
    )
    ax.annotate("outlier", X[outlier], xytext=(8, 8), textcoords="offset points")
    ax.set_title(titles[method])
    ax.set_xlabel("$x_1$")
axes[0].set_ylabel("$x_2$")
axes[0].legend(loc="lower right", fontsize="small")
fig.tight_layout()
plt.show()

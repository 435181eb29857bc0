"""
=====================================================
The identical-class test (Hanawa et al., ICLR 2021)
=====================================================

A minimal sanity check for example-based explanations (Hanawa, Yokoi, Hara &
Inui, 2021): the most relevant training example for a test prediction should
belong to the *predicted* class. We report, per method, the share of test
points whose top proponent carries the predicted label.

Besides the influence function (IF), theta-RelatIF, l-RelatIF and nearest
neighbours, the identity-Hessian variants are included: with ``H = I``, IF is
the plain gradient dot product, and both RelatIF methods rank examples by the
cosine between the test and training gradients (the "gradient cosine" that
Hanawa et al. found to pass the test).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer, NearestNeighborExplainer

methods = {
    "IF": dict(method="if"),
    "theta-RelatIF": dict(method="theta-relatif"),
    "l-RelatIF": dict(method="l-relatif"),
    "IF, H=I (grad. dot)": dict(method="if", hessian="identity"),
    "l-RelatIF, H=I (grad. cos)": dict(method="l-relatif", hessian="identity"),
}
datasets = {
    "breast cancer": load_breast_cancer,
    "wine": load_wine,
    "digits": load_digits,
}
results = {}
for data_name, loader in datasets.items():
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=y
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-8, max_iter=5000))
    model.fit(X_train, y_train)
    explainers = {
        name: InfluenceExplainer(model, **params) for name, params in methods.items()
    }
    explainers["Nearest-N"] = NearestNeighborExplainer(model)
    for name, explainer in explainers.items():
        e = explainer.fit(X_train, y_train).explain(X_test, k=1)
        results[data_name, name] = np.mean(
            e.train_target[e.proponents[:, 0]] == e.target
        )

# %%
# The table
# ---------
names = list(methods) + ["Nearest-N"]
print(f"{'method':28s}" + "".join(f"{d:>15s}" for d in datasets))
for name in names:
    print(f"{name:28s}" + "".join(f"{results[d, name]:15.3f}" for d in datasets))

fig, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
width = 0.8 / len(datasets)
for j, data_name in enumerate(datasets):
    ax.bar(
        np.arange(len(names)) + j * width,
        [results[data_name, name] for name in names],
        width,
        label=data_name,
    )
ax.set_xticks(np.arange(len(names)) + width * (len(datasets) - 1) / 2, names)
ax.tick_params(axis="x", rotation=20)
ax.set_ylim(0, 1.05)
ax.set_ylabel("Top proponent has the\npredicted label (share)")
ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
plt.show()

"""
===================================================
Finding mislabelled training examples (Koh & Liang)
===================================================

Section 5.4 of Koh & Liang (2017): flip the labels of 10% of the training
examples, train on the noisy data, then check training examples one by one,
in order of

- **self-influence** (``InfluenceExplainer.self_influence_``: the predicted rise
  of an example's own loss when it is removed),
- **training loss** (the model's own loss on the example),
- **random** order,

and count the share of flipped labels found as more of the data is checked.

Mislabelled examples have a large global influence, which is exactly what
RelatIF discounts. So, second question: how many of each method's top
explanations of test predictions are flipped examples? Barshan et al. (2020)
expect fewer for RelatIF than for IF.
"""

# %%
# Both data sets, one after the other
# -----------------------------------
# 10% of the training labels get a random other label; the test labels are
# clean.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer, NearestNeighborExplainer


def flip_labels(y, fraction, classes, rng):
    """Give ``fraction`` of the examples a random other label."""
    flipped = rng.choice(len(y), size=int(round(fraction * len(y))), replace=False)
    noisy = y.copy()
    for i in flipped:
        noisy[i] = rng.choice(classes[classes != y[i]])
    return noisy, flipped


def found_fraction(order, flipped):
    """Share of ``flipped`` among the first m of ``order``, for every m."""
    is_flipped = np.zeros(len(order), dtype=bool)
    is_flipped[flipped] = True
    return np.cumsum(is_flipped[order]) / len(flipped)


checked = np.array([0.05, 0.1, 0.2, 0.3, 0.5])
fig, axes = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
for ax, (name, loader) in zip(
    axes, (("breast cancer", load_breast_cancer), ("digits", load_digits))
):
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=y
    )
    rng = np.random.RandomState(0)
    noisy, flipped = flip_labels(y_train, 0.1, np.unique(y), rng)
    model = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-8, max_iter=5000))
    model.fit(X_train, noisy)
    print(f"\n== {name}: {len(flipped)} of {len(y_train)} training labels flipped")
    print(f"test accuracy with noisy labels: {model.score(X_test, y_test):.3f}")

    # Check the training examples in order of self-influence, loss, at random.
    explainer = InfluenceExplainer(model, method="if").fit(X_train, noisy)
    train_loss = -np.log(
        model.predict_proba(X_train)[
            np.arange(len(noisy)), np.searchsorted(model.classes_, noisy)
        ]
    )
    orders = {
        "self-influence": np.argsort(-explainer.self_influence_, kind="stable"),
        "training loss": np.argsort(-train_loss, kind="stable"),
        "random": rng.permutation(len(noisy)),
    }
    share = np.arange(1, len(noisy) + 1) / len(noisy)
    print(
        "share of flipped labels found after checking "
        + ", ".join(f"{c:.0%}" for c in checked)
        + " of the training data:"
    )
    for label, order in orders.items():
        curve = found_fraction(order, flipped)
        at = curve[np.ceil(checked * len(noisy)).astype(int) - 1]
        print(f"  {label:15s} " + "  ".join(f"{v:.3f}" for v in at))
        ax.plot(share, curve, label=label)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", label="random (expected)")
    ax.set_xlabel("Share of training data checked")
    ax.set_ylabel("Share of flipped labels found")
    ax.set_title(name)
    ax.legend(loc="lower right")

    # Flipped examples among the top-5 (and top-1) proponents of every test
    # prediction.
    explainers = {
        "IF": explainer,
        "theta-RelatIF": InfluenceExplainer(model, method="theta-relatif"),
        "l-RelatIF": InfluenceExplainer(model, method="l-relatif"),
        "Nearest-N": NearestNeighborExplainer(model),
    }
    is_flipped = np.zeros(len(noisy), dtype=bool)
    is_flipped[flipped] = True
    print(
        "share of flipped examples among the top proponents of test points "
        f"(base rate {is_flipped.mean():.3f}):"
    )
    for label, method in explainers.items():
        if label != "IF":
            method.fit(X_train, noisy)
        e = method.explain(X_test, k=5)
        print(
            f"  {label:14s} top-5: {is_flipped[e.proponents].mean():.3f}   "
            f"top-1: {is_flipped[e.proponents[:, 0]].mean():.3f}"
        )
plt.show()

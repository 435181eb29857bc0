"""
===============================================
Explaining a regressor's predictions (diabetes)
===============================================

A regressor has no predicted label to explain: without targets,
:class:`~skrelatif.InfluenceExplainer` explains the *prediction itself*. A
training example scores positive (a proponent) when it pushes the prediction
up, i.e. when removing it and refitting the model would lower the prediction,
and negative (an opponent) when it pulls the prediction down. Here a ridge
regression on scikit-learn's diabetes data (442 patients, 10 features, a
measure of disease progression one year later) is explained with the
influence function (``"if"``), l-RelatIF and the Newton step (``"newton"``,
exact leave-one-out for squared loss), and the scores are checked against
actual refits.
"""

# %%
# The model
# ---------
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer, LeaveOneOutDisplay
from skrelatif.validation import agreement, leave_one_out

start = time.perf_counter()
X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
model = make_pipeline(StandardScaler(), Ridge(alpha=10.0)).fit(X_train, y_train)
r2 = model.score(X_test, y_test)
print(f"{len(X_train)} training patients, R^2 on the test set: {r2:.3f}")

# %%
# Proponents and opponents of one prediction
# ------------------------------------------
# ``explain(X)`` without ``y``: ``target`` holds the predictions explained.
# ``"if"`` scores are in the prediction's own units: the predicted drop of
# the prediction when the example is removed. ``"newton"`` gives the exact
# drop for ridge (squared loss has a constant Hessian); l-RelatIF divides by
# the example's influence on the whole training set, so it favours examples
# that move this prediction more than they move everything else.
x = X_test[:1]
explainers = {
    method: InfluenceExplainer(model, method=method).fit(X_train, y_train)
    for method in ("if", "l-relatif", "newton")
}
for method, explainer in explainers.items():
    e = explainer.explain(x, k=3)
    print(f"\nmethod={method!r}: prediction {e.target[0]:.2f}")
    print(e.to_frame().drop(columns=["test_index", "target"]).to_string(index=False))

# %%
# The sign: removing the top proponent lowers the prediction
# ----------------------------------------------------------
# Refit the ridge without the top ``"if"`` proponent. The scores treat the
# pipeline's earlier steps as fixed (the scaler is not refitted), so the exact
# check refits the ridge alone on the scaled data; refitting the whole
# pipeline moves the scaler a little too.
top = explainers["if"].explain(x, k=1).proponents[0, 0]
keep = np.delete(np.arange(len(X_train)), top)
scaler = model[0]
ridge = clone(model[-1]).fit(scaler.transform(X_train[keep]), y_train[keep])
without = ridge.predict(scaler.transform(x))[0]
without_pipeline = clone(model).fit(X_train[keep], y_train[keep]).predict(x)[0]
prediction = model.predict(x)[0]
print(f"prediction with all patients:        {prediction:.3f}")
print(f"without patient {top} (scaler fixed):   {without:.3f}")
print(f"without patient {top} (scaler refit):   {without_pipeline:.3f}")
for method in ("if", "newton"):
    score = explainers[method].transform(x)[0, top]
    print(f"{method!r:>9} score of patient {top}: {score:.3f}")
print(f"actual drop (scaler fixed): {prediction - without:.3f}")

# %%
# Validation: the scores against leave-one-out refits
# ---------------------------------------------------
# :func:`~skrelatif.validation.leave_one_out` with ``y_test=None`` tracks
# minus the prediction (its "test loss change" is the prediction's drop), so
# it is the quantity the scores predict. 40 random removals, 10 test points;
# ``solver="refit"`` refits scikit-learn's ``Ridge`` for each removal (the
# default, ``"auto"``, would use the package's own Newton iterations, which
# for ridge give the same numbers to about 1e-13).
rng = np.random.RandomState(0)
removed = rng.choice(len(X_train), size=40, replace=False)
X_t = X_test[:10]
loo = leave_one_out(explainers["if"], X_t, None, removed, solver="refit")
print(f"retrained by {loo.solver!r}: {loo.test_loss_change.size} changes")
scores = {}
for method in ("if", "newton"):
    scores[method] = explainers[method].transform(X_t)[:, removed]
    a = agreement(scores[method], loo.test_loss_change)
    print(f"method={method!r:9}  Pearson r = {a.pearson:.4f}  slope = {a.slope:.3f}")

# %%
# Predicted against actual changes: the influence function is first order,
# the Newton step sits on the diagonal.
fig, ax = plt.subplots(figsize=(5.5, 5.5), layout="constrained")
for method, marker in (("if", "o"), ("newton", "x")):
    LeaveOneOutDisplay.from_predictions(
        scores[method],
        loo.test_loss_change,
        name=method,
        method=method,
        quantity="drop of the prediction",
        ax=ax,
        marker=marker,
    )
ax.set_title("Ridge on diabetes: removing one patient")
plt.show()
print(f"\ntotal time: {time.perf_counter() - start:.1f} s")

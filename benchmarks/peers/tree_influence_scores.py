"""tree-influence's BoostIn and LeafInfluence on the data of an ``.npz`` file.

Run by ``benchmarks/bench_tree_removal.py`` in a separate environment that
needs neither skrelatif nor this repository; see that script's docstring for
how to build it. Reads ``X_train, y_train, X_test, y_test, params`` (the
``HistGradientBoostingClassifier`` parameters as JSON) and ``decision`` (the
decision function skrelatif's side computed on ``X_test``), trains the same
model (deterministic: same data, same parameters, same scikit-learn), checks
that its decision function equals ``decision``, and writes, per method, the
(n_test, n_train) scores and the wall time of ``fit`` + ``get_local_influence``,
or the error it raised.

tree-influence 0.1.7 predates scikit-learn 1.6: its parser reads
``model._estimator_type`` (removed) and asserts that ``_baseline_prediction``
is a float (an array now), and its multiclass loss builds a
``OneHotEncoder(sparse=False)`` (``sparse_output`` since scikit-learn 1.2).
Two attribute shims on the fitted model and one on that encoder restore
them without changing what it computes (checked: the decision function is
unchanged).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.preprocessing import OneHotEncoder


def _encoder(*args, sparse=None, **kwargs):
    return OneHotEncoder(*args, sparse_output=bool(sparse), **kwargs)


def main(source: str, target: str, methods: list[str]) -> None:
    from tree_influence.explainers import BoostIn, LeafInfluence
    from tree_influence.explainers.parsers import util

    util.OneHotEncoder = _encoder

    data = np.load(source)
    params = json.loads(str(data["params"]))
    X, y = data["X_train"], data["y_train"]
    X_test, y_test = data["X_test"], data["y_test"]
    model = HistGradientBoostingClassifier(**params).fit(X, y)
    decision = model.decision_function(X_test)
    if not np.allclose(decision, data["decision"], rtol=1e-12, atol=1e-12):
        raise SystemExit("the peer's model differs from skrelatif's")
    model._estimator_type = "classifier"
    if model.n_trees_per_iteration_ == 1:
        model._baseline_prediction = np.float64(np.ravel(model._baseline_prediction)[0])
    explainers = {"boostin": BoostIn, "leaf_influence": LeafInfluence}
    out = {}
    for name in methods:
        start = time.perf_counter()
        try:
            explainer = explainers[name]().fit(model, X, y)
            scores = explainer.get_local_influence(X_test, y_test)  # (n_train, n_test)
        except Exception as exc:  # its own check refuses the model: say why
            out[f"{name}_error"] = f"{type(exc).__name__}: {exc}"[:200]
            continue
        out[f"{name}_seconds"] = time.perf_counter() - start
        out[name] = np.asarray(scores).T
    np.savez(target, **out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3].split(","))

"""The built-in models' preprocessing: raw CSV columns to model inputs.

``--model logreg|svc|ridge`` puts a
:class:`~sklearn.compose.ColumnTransformer` before the model, fitted on the
training file and explained with it (the scores are those of the final model,
on the transformed rows):

- numeric columns: missing values replaced by the training median, then
  standardised (:class:`~sklearn.preprocessing.StandardScaler`);
- text columns: missing values replaced by the most frequent training value,
  then one-hot encoded, a value the training file does not have encoded as
  all zeros (``handle_unknown="ignore"``).

The columns are selected by position in the feature array that
:func:`~skrelatif._cli._csv.features` builds, so pandas is not needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: What each kind of column goes through, for ``--verbose`` and the report.
STEPS = {
    "numeric": "missing values -> the training median, then standardised",
    "text": "missing values -> the most frequent training value, then one-hot "
    "encoded, values not seen in training -> all zeros",
}


def column_transformer(kinds: dict[str, str]) -> Any:
    """The :class:`~sklearn.compose.ColumnTransformer` for columns of these
    ``kinds`` (in this order), numeric columns first in its output."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    positions = {kind: [] for kind in STEPS}
    for j, kind in enumerate(kinds.values()):
        positions[kind].append(j)
    steps = {
        "numeric": lambda: make_pipeline(
            SimpleImputer(strategy="median"), StandardScaler()
        ),
        "text": lambda: make_pipeline(
            SimpleImputer(strategy="most_frequent"),
            OneHotEncoder(handle_unknown="ignore"),
        ),
    }
    return ColumnTransformer(
        [
            (kind, steps[kind](), columns)
            for kind, columns in positions.items()
            if columns
        ]
    )


def _missing(values: np.ndarray) -> int:
    if values.dtype == object:
        return sum(isinstance(v, float) and v != v for v in values.tolist())
    return int(np.isnan(values.astype(float)).sum())


def _shown(values: list[Any], limit: int = 8) -> str:
    text = ", ".join(map(str, values[:limit]))
    return text + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def describe(
    transformer: Any,
    kinds: dict[str, str],
    X_train: np.ndarray,
    X_test: np.ndarray,
) -> list[str]:
    """Lines saying what the fitted ``transformer`` does with each column:
    the kinds, the imputed values, the categories."""
    names = list(kinds)
    lines = []
    for kind, _, positions in transformer.transformers_:
        if kind not in STEPS:
            continue
        steps = transformer.named_transformers_[kind]
        imputer = steps[0]
        lines.append(
            f"{kind} columns ({STEPS[kind]}): " + ", ".join(names[j] for j in positions)
        )
        for i, j in enumerate(positions):
            facts = []
            if kind == "text":
                categories = list(steps[-1].categories_[i])
                facts.append(f"{len(categories)} values ({_shown(categories)})")
                unseen = sum(
                    not (isinstance(v, float) and v != v) and v not in set(categories)
                    for v in X_test[:, j].tolist()
                )
                if unseen:
                    facts.append(
                        f"{unseen} test rows with a value not seen in training"
                    )
            missing = (_missing(X_train[:, j]), _missing(X_test[:, j]))
            if any(missing):
                fill = imputer.statistics_[i]
                facts.append(
                    f"{missing[0]} missing in training, {missing[1]} in test, "
                    f"imputed with {fill:.6g}"
                    if kind == "numeric"
                    else f"{missing[0]} missing in training, {missing[1]} in test, "
                    f"imputed with {fill!r}"
                )
            if facts:
                lines.append(f"  {names[j]}: " + "; ".join(facts))
    n_inputs = transformer.transform(X_train[:1]).shape[1]
    lines.append(f"{len(names)} feature columns -> {n_inputs} model inputs")
    return lines

"""Mistakes caught before fitting, each with what to do instead.

Checked on types and values, never on the text of a library's error: a model
skrelatif does not explain, and a numeric target given to a classifier.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._errors import CommandLineError

#: A classifier's target with more distinct numbers than this (and fewer than
#: :data:`ROWS_PER_CLASS` rows per value) looks like a regression target.
MANY_VALUES = 20
ROWS_PER_CLASS = 5


def check_model(model: Any, final: Any, source: str) -> None:
    """Refuse a model that :class:`~skrelatif.InfluenceExplainer` does not
    explain, naming the supported ones and what to do instead.

    ``final`` is the last step of ``model``'s pipelines; ``source`` says where
    the model comes from ("the model in model.skops").
    """
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    from .._adapters import find_adapter, supported_estimators

    try:
        find_adapter(final)
    except TypeError:
        pass
    else:
        return
    name = type(final).__name__
    where = "" if final is model else " at the end of its pipeline"
    supported = (
        f"skrelatif explains {', '.join(supported_estimators())}, or a Pipeline "
        "ending in one of them"
    )
    if isinstance(final, (GridSearchCV, RandomizedSearchCV)):
        advice = (
            f"a {name} is not explained itself: pass the model it selected, "
            "its fitted .best_estimator_ (for example skops.io.dump("
            "search.best_estimator_, 'model.skops'))"
        )
    else:
        advice = (
            "for another model, skrelatif.NearestNeighborExplainer (Python) "
            "explains predictions with the nearest training rows in the model's "
            "input space"
        )
    raise CommandLineError(
        f"{source} is a {name}{where}, which has no influence scores: "
        f"{supported}; {advice}"
    )


def check_classifier_target(
    y: np.ndarray, column: str, model: str, *, fitted: bool
) -> None:
    """A classifier's labels: numbers that are not whole (a regression
    target) are an error, many distinct whole numbers a warning, each saying
    to use a regressor. ``model`` names the classifier in the message."""
    if y.dtype.kind not in "iuf":
        return
    advice = "for a numeric target use --model ridge (a regressor)"
    if y.dtype.kind == "f":
        finite = np.isfinite(y)
        if not finite.all():
            raise CommandLineError(
                f"the target column {column!r} has a value that is not a finite "
                f"number ({float(y[~finite][0])!r})"
            )
        fraction = y != np.round(y)
        if fraction.any():
            raise CommandLineError(
                f"the target column {column!r} holds numbers such as "
                f"{float(y[fraction][0])!r}, but {model} is a classifier, which needs "
                f"class labels: {advice}"
            )
    n_values = len(np.unique(y))
    if not fitted and n_values > max(MANY_VALUES, len(y) / ROWS_PER_CLASS):
        warnings.warn(
            f"the target column {column!r} has {n_values} distinct numbers in "
            f"{len(y)} rows, each one a class of {model}, a classifier; {advice}",
            UserWarning,
            stacklevel=2,
        )


def check_text_columns(cells: dict[str, list[str]], kinds: dict[str, str]) -> None:
    """Warn about a text column with a different value in every training row
    (an ID or free text): one-hot encoding makes it one input per row."""
    for name, kind in kinds.items():
        values = cells[name]
        if kind == "text" and len(values) >= 10 and len(set(values)) == len(values):
            warnings.warn(
                f"column {name!r} has a different value in each of the "
                f"{len(values)} training rows, so one-hot encoding gives one model "
                f"input per row; if it names the rows pass --id-column {name}, "
                f"else leave it out with --drop {name}",
                UserWarning,
                stacklevel=2,
            )

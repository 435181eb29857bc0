"""The inputs of ``skrelatif explain``: files, columns, model, X and y.

Everything is read and checked here, before anything is fitted: a bad file,
column or model is a :class:`~skrelatif._cli._errors.CommandLineError`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from . import _columns, _csv, _hints, _models
from ._errors import CommandLineError
from ._parser import MODELS, REGRESSORS


@dataclass
class Inputs:
    """The checked inputs of a run.

    ``kinds`` are the column kinds of the built-in model's preprocessing (None
    for a model file); ``name`` names the model in messages.
    """

    train: _csv.Table
    test: _csv.Table
    columns: _columns.Columns
    model: Any
    name: str
    regressor: bool
    kinds: dict[str, str] | None
    X_train: Any
    y_train: Any
    X_test: Any
    y_test: Any


def _model_file(args: argparse.Namespace) -> tuple[Any, str, bool, bool, str | None]:
    """The model of ``--model-file``: it, its name, whether it is fitted, wants a
    DataFrame, and why it needs numeric features (None: it does not)."""
    from sklearn.pipeline import Pipeline

    model = _models.load_model(
        args.model_file, trusted=args.trust, trust_pickle=args.trust_pickle
    )
    final = _models.final_estimator(model)
    _hints.check_model(model, final, f"the model in {args.model_file}")
    fitted = _models.is_fitted(model)
    numeric_only = (
        None
        if isinstance(model, Pipeline)
        else f"A {type(model).__name__} that is not in a pipeline"
    )
    name = f"the {type(final).__name__} in {args.model_file}"
    return model, name, fitted, _models.wants_frame(model, fitted), numeric_only


def read(args: argparse.Namespace) -> Inputs:
    """Read and check the files and the model of ``args``."""
    train = _csv.read_csv(args.train, "training")
    test = _csv.read_csv(args.test, "test")
    columns = _columns.select(
        train, test, target=args.target, drop=args.drop, id_column=args.id_column
    )
    for option, given in (
        ("--test-labels", args.test_labels),
        ("--with-test-labels", args.with_test_labels),
    ):
        if given and args.target not in test.names:
            raise CommandLineError(
                f"{option}: the test file {args.test} has no column {args.target!r}"
            )

    kinds = None
    if args.model_file is not None:
        model, name, fitted, frame, numeric_only = _model_file(args)
        regressor = _models.is_regressor(model)
        why_numeric = (
            f"The {type(_models.final_estimator(model)).__name__} in "
            f"{args.model_file} is a regressor and needs a numeric target"
        )
    else:
        choice = args.model or MODELS[0]
        kinds = _csv.column_kinds(train, columns.features)
        _hints.check_text_columns(train.columns, kinds)
        model = _models.builtin_model(choice, kinds)
        name, fitted, frame, numeric_only = f"--model {choice}", False, False, None
        regressor = choice in REGRESSORS
        why_numeric = (
            f"--model {choice} is a regressor and needs a numeric target (for class "
            f"labels use --model {_one_of([m for m in MODELS if m not in REGRESSORS])})"
        )
    classes = getattr(model, "classes_", None) if fitted else None

    def read_target(table: _csv.Table) -> Any:
        if regressor:  # float values, never labels
            return _csv.numeric_target(table, args.target, why_numeric)
        y = _csv.target(table, args.target, classes)
        if table is train:
            _hints.check_classifier_target(y, args.target, name, fitted=fitted)
        return y

    typed = None if kinds is None else (kinds, train)
    X_train = _csv.features(
        train, columns.features, numeric_only=numeric_only, frame=frame, kinds=typed
    )
    y_train = read_target(train)
    X_test = _csv.features(
        test, columns.features, numeric_only=numeric_only, frame=frame, kinds=typed
    )
    y_test = None
    if args.test_labels or args.with_test_labels:
        y_test = read_target(test)
    return Inputs(
        train,
        test,
        columns,
        model,
        name,
        regressor,
        kinds,
        X_train,
        y_train,
        X_test,
        y_test,
    )


def _one_of(names: list[str]) -> str:
    """``a, b or c``."""
    return (
        " or ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]
    )

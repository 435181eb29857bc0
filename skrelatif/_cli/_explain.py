"""``skrelatif explain``: read the CSV files, fit, explain, write the records."""

from __future__ import annotations

import argparse
import math
import re
import sys
import warnings
from typing import Any

from . import _csv, _models
from ._errors import CommandLineError, one_line
from ._output import check_output, records, write, write_atomically
from ._parser import MODELS, REGRESSORS
from ._progress import ProgressBar

_FEATURE_COUNT = re.compile(r"X has (\d+) features, but (\w+) is expecting (\d+)")
_SCORABLE = re.compile(r"can be scored \((\d+)\)")


def run(args: argparse.Namespace) -> int:
    """Run ``skrelatif explain`` with the parsed ``args``; returns 0."""
    output = None
    if args.output is not None:
        output = check_output(args.output, [args.train, args.test])
    if args.model is not None and args.model_file is not None:
        raise CommandLineError("give either --model or --model-file, not both")
    if args.trust and args.model_file is None:
        raise CommandLineError("--trust applies to a .skops --model-file only")

    def show_warning(message, category, filename, lineno, file=None, line=None):
        if not args.quiet:
            print(
                f"skrelatif: warning: {one_line(message)}", file=sys.stderr, flush=True
            )

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show_warning
        rows = _explanation_records(args)

    if output is None:
        write(rows, sys.stdout, ".csv")
        sys.stdout.flush()
        return 0
    try:
        write_atomically(rows, output)
    except OSError as exc:
        raise CommandLineError(
            f"cannot write {output}: {exc.strerror or one_line(exc)}"
        ) from None
    if not args.quiet:
        print(f"skrelatif: wrote {len(rows)} rows to {output}", file=sys.stderr)
    return 0


def _explain_rows(explainer: Any, X: Any, y: Any, k: int, progress: ProgressBar):
    """``explainer.explain`` over batches of test rows, updating ``progress``."""
    from .._explanation import Explanation

    n_test = X.shape[0]
    batch = max(64, math.ceil(n_test / 100))
    parts = []
    progress.update(0)
    for start in range(0, n_test, batch):
        rows = slice(start, min(start + batch, n_test))
        X_rows = X.iloc[rows] if hasattr(X, "iloc") else X[rows]
        parts.append(explainer.explain(X_rows, None if y is None else y[rows], k=k))
        progress.update(rows.stop)
    progress.close()
    return Explanation.concatenate(parts)


def _model_error(exc: Exception, args: argparse.Namespace, model: Any) -> str:
    """The explainer's error, in the command line's terms where it has some."""
    message = one_line(exc)
    count = _FEATURE_COUNT.search(message)
    if count is not None:
        got, _, expected = count.groups()
        source = f"the model in {args.model_file}" if args.model_file else "the model"
        return (
            f"--train {args.train} and --test {args.test} have {got} feature "
            f"columns, but {source} expects {expected}: the feature columns of "
            "the files must be those the model was trained on"
        )
    scorable = _SCORABLE.search(message)
    final = _models.final_estimator(model)
    if scorable is not None and type(final).__name__ in ("SVC", "NuSVC", "LinearSVC"):
        return (
            f"--k {args.k} is more than the {scorable.group(1)} support vectors of "
            f"the {type(final).__name__}, the only training rows it can score: "
            f"pass --k {scorable.group(1)} or less"
        )
    return message


def _explanation_records(args: argparse.Namespace) -> list[dict]:
    from sklearn.pipeline import Pipeline

    from .._explainer import InfluenceExplainer

    train = _csv.read_csv(args.train, "training")
    test = _csv.read_csv(args.test, "test")
    if args.target not in train.names:
        raise CommandLineError(
            f"the training file {args.train} has no column {args.target!r} (--target); "
            f"its columns are {', '.join(map(repr, train.names))}"
        )
    features = [name for name in train.names if name != args.target]
    if not features:
        raise CommandLineError(
            f"the training file {args.train} has no feature columns besides "
            f"{args.target!r}"
        )
    _csv.check_test_columns(train, test, features, args.target)
    for option, given in (
        ("--test-labels", args.test_labels),
        ("--with-test-labels", args.with_test_labels),
    ):
        if given and args.target not in test.names:
            raise CommandLineError(
                f"{option}: the test file {args.test} has no column {args.target!r}"
            )

    if args.model_file is not None:
        model = _models.load_model(
            args.model_file, trusted=args.trust, trust_pickle=args.trust_pickle
        )
        fitted = _models.is_fitted(model)
        frame = _models.wants_frame(model, fitted)
        numeric_only = (
            None
            if isinstance(model, Pipeline)
            else f"A {type(model).__name__} that is not in a pipeline"
        )
        regressor = _models.is_regressor(model)
        why_numeric = (
            f"The {type(_models.final_estimator(model)).__name__} in "
            f"{args.model_file} is a regressor and needs a numeric target"
        )
    else:
        name = args.model or MODELS[0]
        model = _models.builtin_model(name)
        fitted, frame = False, False
        numeric_only = f"The built-in model (--model {name})"
        regressor = name in REGRESSORS
        why_numeric = (
            f"--model {name} is a regressor and needs a numeric target (for class "
            "labels use --model logreg or svc)"
        )
    classes = getattr(model, "classes_", None) if fitted else None

    def read_target(table: _csv.Table) -> Any:
        if regressor:  # float values, never labels
            return _csv.numeric_target(table, args.target, why_numeric)
        return _csv.target(table, args.target, classes)

    X_train = _csv.features(train, features, numeric_only=numeric_only, frame=frame)
    y_train = read_target(train)
    X_test = _csv.features(test, features, numeric_only=numeric_only, frame=frame)
    y_test = None
    if args.test_labels or args.with_test_labels:
        y_test = read_target(test)

    explainer = InfluenceExplainer(
        model,
        method=args.method,
        hessian=args.hessian,
        solver=args.solver,
        damping=args.damping,
        n_jobs=args.n_jobs,
    )
    progress = ProgressBar(
        X_test.shape[0],
        stream=sys.stderr,
        enabled=not args.quiet and sys.stderr.isatty(),
    )
    try:
        explainer.fit(X_train, y_train)
        explanation = _explain_rows(
            explainer, X_test, y_test if args.test_labels else None, args.k, progress
        )
        predictions = None
        if args.with_test_labels:
            predictions = (
                explainer.estimator_.predict(X_test)
                if args.test_labels
                else explanation.target
            )
    except (ValueError, TypeError) as exc:  # bad data or an unsupported model
        progress.close()
        raise CommandLineError(_model_error(exc, args, model)) from None
    return records(
        explanation, test_labels=y_test, predictions=predictions, regressor=regressor
    )

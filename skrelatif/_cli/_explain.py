"""``skrelatif explain``: read the CSV files, fit, explain, write the records
(or the HTML report of :mod:`skrelatif._cli._report`)."""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from typing import Any

from ..exceptions import FeatureCountError, TooFewCandidatesError
from . import _inputs, _models
from ._errors import CommandLineError, one_line
from ._output import check_output, records, write, write_atomically
from ._progress import ProgressBar
from ._report import METHOD_NAMES, Report, render


def run(args: argparse.Namespace) -> int:
    """Run ``skrelatif explain`` with the parsed ``args``; returns 0."""
    output = None
    if args.output is not None:
        output = check_output(args.output, [args.train, args.test])
    if args.model is not None and args.model_file is not None:
        raise CommandLineError("give either --model or --model-file, not both")
    if args.trust and args.model_file is None:
        raise CommandLineError("--trust applies to a .skops --model-file only")
    if args.quiet and args.verbose:
        raise CommandLineError("give either --quiet or --verbose, not both")
    html = output is not None and output.suffix.lower() == ".html"

    def show_warning(message, category, filename, lineno, file=None, line=None):
        if not args.quiet:
            print(
                f"skrelatif: warning: {one_line(message)}", file=sys.stderr, flush=True
            )

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show_warning
        rows, report = _explanation_records(args, html)

    if output is None:
        write(rows, sys.stdout, ".csv")
        sys.stdout.flush()
        return 0
    try:
        write_atomically(render(report) if html else rows, output)
    except OSError as exc:
        raise CommandLineError(
            f"cannot write {output}: {exc.strerror or one_line(exc)}"
        ) from None
    if not args.quiet:
        what = (
            f"the report of {len(report.test_names)} test rows"
            if html
            else f"{len(rows)} rows"
        )
        print(f"skrelatif: wrote {what} to {output}", file=sys.stderr)
    return 0


def _say(lines: list[str]) -> None:
    for line in lines:
        print(f"skrelatif: {line}", file=sys.stderr, flush=True)


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
    """The explainer's error, in the command line's terms where it has some
    (by its type and attributes, never its text)."""
    if isinstance(exc, FeatureCountError):
        source = f"the model in {args.model_file}" if args.model_file else "the model"
        return (
            f"--train {args.train} and --test {args.test} have {exc.got} feature "
            f"columns, but {source} expects {exc.expected}: the feature columns of "
            "the files must be those the model was trained on"
        )
    if isinstance(exc, TooFewCandidatesError):
        final = _models.final_estimator(model)
        only = (
            ""
            if exc.what == "training examples"
            else (", the only training rows it can score")
        )
        return (
            f"--k {args.k} is more than the {exc.n_candidates} {exc.what} of the "
            f"{type(final).__name__}{only}: pass --k {exc.n_candidates} or less"
        )
    return one_line(exc)


def _explanation_records(
    args: argparse.Namespace, html: bool
) -> tuple[list[dict], Report | None]:
    """The output records and, if ``html``, the report's contents."""
    from .._explainer import InfluenceExplainer
    from ._preprocess import STEPS, describe

    inputs = _inputs.read(args)
    columns, model = inputs.columns, inputs.model
    final = _models.final_estimator(model)
    left_out = ", ".join(f"{n} ({o})" for n, o in columns.left_out.items())
    source = (
        f"--model-file {args.model_file}"
        if args.model_file
        else f"--model {args.model or 'logreg'}"
    )
    facts = [
        ("training file", f"{args.train} ({inputs.X_train.shape[0]} rows)"),
        ("test file", f"{args.test} ({inputs.X_test.shape[0]} rows)"),
        ("target column", args.target),
        ("model", f"{final!r} ({source})"),
        ("feature columns", ", ".join(columns.features)),
        *([("left out", left_out)] if left_out else []),
    ]
    if args.verbose:
        _say([f"{name}: {value}" for name, value in facts])
    if inputs.kinds is not None:
        facts += [
            (f"{kind} columns", STEPS[kind])
            for kind in STEPS
            if kind in inputs.kinds.values()
        ]
    facts += [
        ("method", METHOD_NAMES[args.method]),
        ("k", str(args.k)),
    ]

    explainer = InfluenceExplainer(
        model,
        method=args.method,
        hessian=args.hessian,
        solver=args.solver,
        damping=args.damping,
        n_jobs=args.n_jobs,
    )
    X_test, y_test = inputs.X_test, inputs.y_test
    progress = ProgressBar(
        X_test.shape[0],
        stream=sys.stderr,
        enabled=not args.quiet and sys.stderr.isatty(),
    )
    try:
        explainer.fit(inputs.X_train, inputs.y_train)
        if args.verbose and inputs.kinds is not None:
            transformer = explainer.estimator_[0]
            _say(describe(transformer, inputs.kinds, inputs.X_train, X_test))
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
        self_influence = explainer.self_influence_ if html else None
        facts.append(
            (
                "curvature, solver, damping",
                f"{explainer.hessian_}, {explainer.solver_ or 'none needed'}, "
                f"{explainer.damping_:.3g}",
            )
        )
    except (ValueError, TypeError, MemoryError) as exc:  # bad data or model
        progress.close()
        raise CommandLineError(_model_error(exc, args, model)) from None
    rows = records(
        explanation,
        test_labels=y_test,
        predictions=predictions,
        regressor=inputs.regressor,
        test_ids=columns.test_ids,
        train_ids=columns.train_ids,
    )
    if not html:
        return rows, None

    def names(ids: list[str] | None, n: int) -> list[str]:
        if ids is None:
            return [f"row {i}" for i in range(n)]
        return [f"{args.id_column} {i}" for i in ids]

    report = Report(
        explanation=explanation,
        self_influence=self_influence,
        train=inputs.train,
        test=inputs.test,
        features=columns.features,
        target_column=args.target,
        train_labels=inputs.y_train,
        train_names=names(columns.train_ids, inputs.X_train.shape[0]),
        test_names=names(columns.test_ids, X_test.shape[0]),
        facts=facts,
        regressor=inputs.regressor,
        test_labels_explained=args.test_labels,
        test_labels=y_test if args.with_test_labels else None,
        predictions=predictions,
    )
    return rows, report

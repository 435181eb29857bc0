"""Command line: ``skrelatif [demo | explain]`` (same as ``python -m skrelatif``).

``skrelatif demo`` (the default) runs the digits demo; ``skrelatif explain``
explains the rows of a CSV file with the rows of another::

    skrelatif explain --train train.csv --test test.csv --target label \\
        --model logreg --method l-relatif --k 5 --output result.csv

Bad input (a missing column, non-numeric features for the built-in models, an
empty file, ...) gets one line on stderr, ``skrelatif: error: ...``, and exit
status 2; no output file is written then. The CSV files are read with the
:mod:`csv` module, so the command needs only skrelatif's own dependencies;
``.skops`` model files need ``skops`` and a model fitted on a
:class:`pandas.DataFrame` needs ``pandas`` (``pip install "skrelatif[cli]"``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

#: ``--model`` choices (the default is the first one).
MODELS = ("logreg", "svc")
#: Columns of the output, in order.
COLUMNS = ("test_row", "target", "kind", "rank", "train_row", "train_label", "score")
#: Output formats, by file suffix.
FORMATS = (".csv", ".json")


class CommandLineError(Exception):
    """Bad input: reported as one line on stderr with exit status 2."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _described(exc: BaseException) -> str:
    """``KeyError: 110``: for errors whose message alone says little."""
    return f"{type(exc).__name__}: {_one_line(exc)}"


# -- arguments -----------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number >= 0, got {text!r}"
        ) from None
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    from ._adapters import METHODS
    from ._solvers import SOLVERS

    parser = argparse.ArgumentParser(
        prog="skrelatif",
        description="Explain scikit-learn predictions with training examples "
        "(influence functions and RelatIF). Without a command, runs the demo.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{demo,explain}")
    demo = commands.add_parser(
        "demo",
        help="explain digits with IF and RelatIF (the default command)",
        description="Explain scikit-learn's digits with IF, theta-RelatIF and "
        "l-RelatIF and print how typical their proponents are.",
    )
    demo.add_argument(
        "--k",
        type=_positive_int,
        default=5,
        help="proponents per test digit (default: 5)",
    )
    demo.add_argument(
        "--n-show",
        type=_positive_int,
        default=6,
        help="test digits listed (default: 6)",
    )
    demo.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also save the listed test digits and their top proponents per "
        "method (IF, theta-RelatIF, l-RelatIF, nearest neighbour) as an image; "
        'needs matplotlib (pip install "skrelatif[plot]")',
    )

    explain = commands.add_parser(
        "explain",
        help="explain the rows of a CSV file with the rows of another",
        description="Fit a model on the training CSV (or load a fitted one) and "
        "write, for every row of the test CSV, its top-k proponents and "
        "opponents among the training rows. Rows are numbered from 0, header "
        "excluded.",
    )
    explain.add_argument(
        "--train",
        required=True,
        metavar="TRAIN.csv",
        help="training data: a header row, then one example per row",
    )
    explain.add_argument(
        "--test",
        required=True,
        metavar="TEST.csv",
        help="rows to explain: the training file's feature columns "
        "(the target column is optional)",
    )
    explain.add_argument(
        "--target",
        required=True,
        metavar="COLUMN",
        help="name of the label column of the training file",
    )
    explain.add_argument(
        "--model",
        choices=MODELS,
        default=None,
        help="logreg: StandardScaler + LogisticRegression (default); "
        "svc: StandardScaler + SVC (rbf kernel)",
    )
    explain.add_argument(
        "--model-file",
        metavar="FILE",
        help="a fitted (or unfitted) model or pipeline instead of --model: a .skops "
        "file (loaded with skops.io, trusted types only) or, with --trust-pickle, a "
        "joblib pickle. It is explained as trained on the training file.",
    )
    explain.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="TYPE",
        help="a type of the .skops file to trust although skops does not by "
        "default (repeat for several); check it first",
    )
    explain.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow --model-file to be a pickle: loading it runs any code it "
        "contains, so only for files from a source you trust",
    )
    explain.add_argument(
        "--method",
        choices=METHODS,
        default="l-relatif",
        help="the score (default: l-relatif)",
    )
    explain.add_argument(
        "--hessian",
        choices=tuple(SOLVERS),
        default="exact",
        help="how H^-1 is applied (default: exact)",
    )
    explain.add_argument(
        "--damping",
        type=_non_negative_float,
        default=0.0,
        help="added to the Hessian's diagonal (default: 0)",
    )
    explain.add_argument(
        "--k",
        type=_positive_int,
        default=5,
        help="proponents and opponents per test row (default: 5)",
    )
    explain.add_argument(
        "--test-labels",
        action="store_true",
        help="explain the labels in the test file's target column instead of "
        "the model's predictions",
    )
    explain.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="joblib jobs over chunks of training rows",
    )
    explain.add_argument(
        "--output",
        metavar="RESULT.csv|.json",
        help="where to write the result (.csv or .json); standard output (CSV) "
        "if not given",
    )
    explain.add_argument(
        "--quiet", action="store_true", help="no progress bar or warnings on stderr"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input)."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "explain":
            return _explain(args)
        return _demo(args)
    except CommandLineError as exc:
        print(f"skrelatif: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except BrokenPipeError:
        # The reader of standard output went away (``skrelatif explain | head``):
        # stop quietly, and keep Python's final flush from failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("\nskrelatif: interrupted", file=sys.stderr, flush=True)
        return 130


# -- demo ----------------------------------------------------------------------------
def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    plot = getattr(args, "plot", None)
    if plot is not None:
        from ._demo_plot import check_plot_path

        try:
            check_plot_path(plot)
        except (ImportError, ValueError) as exc:
            raise CommandLineError(_one_line(exc)) from None
    run_demo(k=getattr(args, "k", 5), n_show=getattr(args, "n_show", 6), plot=plot)
    return 0


# -- explain: reading ----------------------------------------------------------------
class _Table:
    """The columns of a CSV file, as strings."""

    def __init__(
        self, path: Path, names: list[str], rows: list[list[str]], lines: list[int]
    ):
        self.path = path
        self.names = names
        self.columns = {name: [row[j] for row in rows] for j, name in enumerate(names)}
        self.lines = lines  # the file's line number of each row

    def where(self, row: int) -> str:
        """``row 3, line 5``: rows count from 0 after the header, as in the output."""
        return f"row {row}, line {self.lines[row]}"


def _read_csv(path: str, what: str) -> _Table:
    file = Path(path)
    try:
        with open(file, newline="", encoding="utf-8-sig") as stream:
            reader = csv.reader(stream)
            header = next(reader, None)
            if header is None or not any(cell.strip() for cell in header):
                raise CommandLineError(
                    f"the {what} file {path} is empty: expected a header row with "
                    "the column names, then one row per example"
                )
            names = [cell.strip() for cell in header]
            if "" in names:
                raise CommandLineError(
                    f"the {what} file {path} has a column without a name (column "
                    f"{names.index('') + 1} of the header)"
                )
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                raise CommandLineError(
                    f"the {what} file {path} has repeated column names: "
                    + ", ".join(map(repr, repeated))
                )
            rows, lines = [], []
            for row in reader:
                if not row:
                    continue  # blank line
                if len(row) != len(names):
                    raise CommandLineError(
                        f"{path}, line {reader.line_num}: {len(row)} fields, but the "
                        f"header has {len(names)} columns"
                    )
                rows.append(row)
                lines.append(reader.line_num)
    except OSError as exc:
        raise CommandLineError(
            f"cannot read the {what} file {path}: {exc.strerror or _one_line(exc)}"
        ) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CommandLineError(
            f"{path} is not a readable CSV file: {_one_line(exc)}"
        ) from None
    if not rows:
        raise CommandLineError(f"the {what} file {path} has a header but no data rows")
    return _Table(file, names, rows, lines)


def _as_float(value: str) -> float | None:
    """The number in a CSV cell: NaN when empty, None when not a number."""
    value = value.strip()
    if not value:
        return math.nan
    try:
        return float(value)
    except ValueError:
        return None


def _feature_column(table: _Table, name: str) -> tuple[np.ndarray, int | None]:
    """A column as float64 if every cell is a number (or empty: NaN), else as
    strings; and the first row that is not a number (None if all are)."""
    cells = table.columns[name]
    numbers = [_as_float(cell) for cell in cells]
    for row, number in enumerate(numbers):
        if number is None:
            return np.array([cell.strip() for cell in cells], dtype=object), row
    return np.array(numbers, dtype=np.float64), None


def _labels(cells: list[str], like: np.ndarray | None = None) -> np.ndarray:
    """Labels as integers, else as floats, else as strings (the strings when
    ``like``, the classes of a fitted model, are strings)."""
    cells = [cell.strip() for cell in cells]
    if (
        like is not None
        and like.dtype.kind in "OUS"
        and all(isinstance(c, str) for c in like.tolist())
    ):
        return np.array(cells, dtype=object)
    for kind in (int, float):
        try:
            return np.array([kind(cell) for cell in cells])
        except ValueError:
            continue
    return np.array(cells, dtype=object)


def _target(table: _Table, column: str, like: np.ndarray | None) -> np.ndarray:
    cells = table.columns[column]
    for row, cell in enumerate(cells):
        if not cell.strip():
            raise CommandLineError(
                f"{table.path}, {table.where(row)}: the target column {column!r} "
                "is empty"
            )
    return _labels(cells, like)


# -- explain: the model --------------------------------------------------------------
def _builtin_model(name: str) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    final = LogisticRegression(tol=1e-8, max_iter=1000) if name == "logreg" else SVC()
    return make_pipeline(StandardScaler(), final)


def _load_model(path: str, *, trusted: list[str], trust_pickle: bool) -> Any:
    file = Path(path)
    if not file.is_file():
        raise CommandLineError(f"cannot read the model file {path}: no such file")
    if file.suffix == ".skops":
        try:
            import skops.io as sio
        except ImportError:
            raise CommandLineError(
                f'reading {path} needs skops: pip install "skrelatif[cli]"'
            ) from None
        try:
            untrusted = sio.get_untrusted_types(file=file)
        except Exception as exc:  # a corrupt zip, an unknown schema, ...
            raise CommandLineError(
                f"{path} is not a readable .skops file ({_described(exc)})"
            ) from None
        refused = [name for name in untrusted if name not in trusted]
        if refused:
            raise CommandLineError(
                f"{path} contains types that skops does not trust by default: "
                f"{', '.join(refused)}. Check them; to load the file anyway pass "
                + " ".join(f"--trust {name}" for name in refused)
            )
        try:
            return sio.load(file, trusted=list(untrusted) or None)
        except Exception as exc:
            raise CommandLineError(f"cannot load {path} ({_described(exc)})") from None
    if not trust_pickle:
        raise CommandLineError(
            f"{path} is not a .skops file, so it would be unpickled (joblib), and "
            "unpickling runs any code the file contains. Pass --trust-pickle if it "
            "comes from a source you trust, or save the model with "
            "skops.io.dump(model, 'model.skops')"
        )
    import joblib

    try:
        return joblib.load(file)
    except Exception as exc:  # unpickling fails in many ways
        raise CommandLineError(
            f"cannot load {path} as a joblib pickle ({_described(exc)})"
        ) from None


def _is_fitted(model: Any) -> bool:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except (NotFittedError, TypeError):
        return False
    return True


def _wants_frame(model: Any, fitted: bool) -> bool:
    """Give ``model`` a DataFrame: when fitted on one, or unfitted and pandas is
    there (so that column transformers can select columns by name)."""
    if fitted:
        return hasattr(model, "feature_names_in_")
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def _features(
    table: _Table, names: list[str], *, numeric_only: str | None, frame: bool
) -> Any:
    """The feature columns as an array (or a DataFrame if ``frame``).

    ``numeric_only`` names the model that needs complete numeric features
    (None: any column is passed on, as text if it is not numeric).
    """
    columns = {}
    for name in names:
        values, bad_row = _feature_column(table, name)
        if bad_row is not None and numeric_only:
            raise CommandLineError(
                f"column {name!r} of {table.path} is not numeric "
                f"({table.where(bad_row)}: {table.columns[name][bad_row].strip()!r}). "
                f"{numeric_only} needs numeric features: encode the column, or "
                "pass a pipeline that does with --model-file"
            )
        if numeric_only and np.isnan(values).any():
            row = int(np.flatnonzero(np.isnan(values))[0])
            raise CommandLineError(
                f"column {name!r} of {table.path} has a missing value "
                f"({table.where(row)}). {numeric_only} needs complete numeric "
                "features: impute them, or pass a pipeline that does with "
                "--model-file"
            )
        columns[name] = values
    if frame:
        try:
            import pandas as pd
        except ImportError:
            raise CommandLineError(
                "this model was fitted on a DataFrame with column names; reading "
                'the CSV files for it needs pandas: pip install "skrelatif[cli]"'
            ) from None
        return pd.DataFrame(columns)
    if all(values.dtype == np.float64 for values in columns.values()):
        return np.column_stack(list(columns.values()))
    return np.column_stack([values.astype(object) for values in columns.values()])


def _test_columns(train: _Table, test: _Table, features: list[str], target: str):
    extra = [name for name in test.names if name not in train.names]
    missing = [name for name in features if name not in test.names]
    if extra or missing:
        problems = []
        if extra:
            problems.append(
                f"columns that {train.path} does not have: "
                + ", ".join(map(repr, extra))
            )
        if missing:
            problems.append("no column " + ", ".join(map(repr, missing)))
        raise CommandLineError(
            f"the test file {test.path} must have the feature columns of the "
            f"training file (and optionally {target!r}); it has "
            + " and ".join(problems)
        )


# -- explain: progress and output ----------------------------------------------------
class ProgressBar:
    """A one-line progress bar, redrawn in place on ``stream``.

    Drawn only when ``enabled`` and after ``delay`` seconds, so that short runs
    print nothing; :meth:`close` erases it.

    >>> import io
    >>> out = io.StringIO()
    >>> bar = ProgressBar(4, stream=out, enabled=True, delay=0.0)
    >>> bar.update(2)
    >>> out.getvalue().strip()
    'explaining [###############               ]  2/4 test rows'
    """

    def __init__(
        self,
        total: int,
        *,
        stream: TextIO,
        enabled: bool,
        delay: float = 0.5,
        width: int = 30,
        label: str = "explaining",
    ) -> None:
        self.total, self.stream, self.enabled = total, stream, enabled
        self.delay, self.width, self.label = delay, width, label
        self.start = time.perf_counter()
        self.drawn = 0

    def update(self, done: int) -> None:
        if not self.enabled or time.perf_counter() - self.start < self.delay:
            return
        filled = self.width * done // max(self.total, 1)
        text = (
            f"{self.label} [{'#' * filled}{' ' * (self.width - filled)}] "
            f"{done:>{len(str(self.total))}}/{self.total} test rows"
        )
        self.stream.write("\r" + text)
        self.stream.flush()
        self.drawn = len(text)

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r" + " " * self.drawn + "\r")
            self.stream.flush()
            self.drawn = 0


def _explain_rows(explainer, X, y, k: int, progress: ProgressBar):
    """``explainer.explain`` over batches of test rows, updating ``progress``."""
    from ._explanation import Explanation

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
    return Explanation(
        proponents=np.vstack([e.proponents for e in parts]),
        proponent_scores=np.vstack([e.proponent_scores for e in parts]),
        opponents=np.vstack([e.opponents for e in parts]),
        opponent_scores=np.vstack([e.opponent_scores for e in parts]),
        target=np.concatenate([e.target for e in parts]),
        method=parts[0].method,
        train_target=parts[0].train_target,
    )


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _records(explanation, y_train: np.ndarray) -> list[dict]:
    """One record per (test row, kind, rank), in the order of :data:`COLUMNS`."""
    records = []
    n_test, k = explanation.proponents.shape
    for t in range(n_test):
        target = _python(explanation.target[t])
        for kind, index, scores in (
            ("proponent", explanation.proponents, explanation.proponent_scores),
            ("opponent", explanation.opponents, explanation.opponent_scores),
        ):
            for rank in range(k):
                i = int(index[t, rank])
                records.append(
                    dict(
                        zip(
                            COLUMNS,
                            (
                                t,
                                target,
                                kind,
                                rank + 1,
                                i,
                                _python(y_train[i]),
                                float(scores[t, rank]),
                            ),
                        )
                    )
                )
    return records


def _write(records: list[dict], stream: TextIO, suffix: str) -> None:
    if suffix == ".json":
        stream.write("[\n")
        stream.write(",\n".join(json.dumps(r, allow_nan=False) for r in records))
        stream.write("\n]\n")
    else:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(COLUMNS)
        for record in records:
            writer.writerow(
                repr(v) if isinstance(v, float) else v for v in record.values()
            )


def _check_output(path: str, inputs: list[str]) -> Path:
    file = Path(path)
    if file.suffix.lower() not in FORMATS:
        raise CommandLineError(
            f"--output {path}: the file name must end in .csv or .json"
        )
    if not file.parent.is_dir():
        raise CommandLineError(f"--output {path}: no directory {file.parent}")
    if file.is_dir():
        raise CommandLineError(f"--output {path} is a directory")
    for other in inputs:
        if file.exists() and Path(other).exists() and file.samefile(other):
            raise CommandLineError(f"--output {path} would overwrite an input file")
    return file


def _write_atomically(records: list[dict], file: Path) -> None:
    """Write to a temporary file beside ``file``, then rename it: a failure
    never leaves a partial output."""
    handle, temporary = tempfile.mkstemp(
        dir=file.parent, prefix=f".{file.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as stream:
            _write(records, stream, file.suffix.lower())
        os.replace(temporary, file)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# -- explain -------------------------------------------------------------------------
def _explain(args: argparse.Namespace) -> int:
    output = None
    if args.output is not None:
        output = _check_output(args.output, [args.train, args.test])
    if args.model is not None and args.model_file is not None:
        raise CommandLineError("give either --model or --model-file, not both")
    if args.trust and args.model_file is None:
        raise CommandLineError("--trust applies to a .skops --model-file only")

    def show_warning(message, category, filename, lineno, file=None, line=None):
        if not args.quiet:
            print(
                f"skrelatif: warning: {_one_line(message)}", file=sys.stderr, flush=True
            )

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show_warning
        records = _explanation_records(args)

    if output is None:
        _write(records, sys.stdout, ".csv")
        sys.stdout.flush()
    else:
        try:
            _write_atomically(records, output)
        except OSError as exc:
            raise CommandLineError(
                f"cannot write {output}: {exc.strerror or _one_line(exc)}"
            ) from None
    return 0


def _explanation_records(args: argparse.Namespace) -> list[dict]:
    from sklearn.pipeline import Pipeline

    from ._explainer import InfluenceExplainer

    train = _read_csv(args.train, "training")
    test = _read_csv(args.test, "test")
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
    _test_columns(train, test, features, args.target)
    if args.test_labels and args.target not in test.names:
        raise CommandLineError(
            f"--test-labels: the test file {args.test} has no column {args.target!r}"
        )

    if args.model_file is not None:
        model = _load_model(
            args.model_file, trusted=args.trust, trust_pickle=args.trust_pickle
        )
        if not hasattr(model, "fit"):
            raise CommandLineError(
                f"{args.model_file} holds a {type(model).__name__}, not a "
                "scikit-learn estimator"
            )
        fitted = _is_fitted(model)
        frame = _wants_frame(model, fitted)
        numeric_only = (
            None
            if isinstance(model, Pipeline)
            else f"A {type(model).__name__} that is not in a pipeline"
        )
    else:
        model = _builtin_model(args.model or MODELS[0])
        fitted, frame = False, False
        numeric_only = f"The built-in model (--model {args.model or MODELS[0]})"
    classes = getattr(model, "classes_", None) if fitted else None

    X_train = _features(train, features, numeric_only=numeric_only, frame=frame)
    y_train = _target(train, args.target, classes)
    X_test = _features(test, features, numeric_only=numeric_only, frame=frame)
    y_test = _target(test, args.target, classes) if args.test_labels else None

    explainer = InfluenceExplainer(
        model,
        method=args.method,
        hessian=args.hessian,
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
        explanation = _explain_rows(explainer, X_test, y_test, args.k, progress)
    except (ValueError, TypeError) as exc:  # bad data or an unsupported model
        progress.close()
        raise CommandLineError(_one_line(exc)) from None
    return _records(explanation, y_train)

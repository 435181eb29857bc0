"""Reading the CSV files of ``skrelatif explain`` and typing their columns.

The files are read with :mod:`csv`, so the command needs none of pandas;
cells become float64 features (an empty cell, ``NA``, ``NaN``, ``null``, ...
is NaN, as in :func:`pandas.read_csv`), text features (encoded by the built-in
model's column transformer or left to a pipeline), and integer, float or text
labels.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import CommandLineError, one_line


class Table:
    """The columns of a CSV file, as strings.

    Parameters
    ----------
    path : Path
        The file.
    names : list of str
        The column names, from the header.
    rows : list of list of str
        The data rows.
    lines : list of int
        The file's line number of each row.
    """

    def __init__(
        self, path: Path, names: list[str], rows: list[list[str]], lines: list[int]
    ) -> None:
        self.path = path
        self.names = names
        self.columns = {name: [row[j] for row in rows] for j, name in enumerate(names)}
        self.lines = lines

    def where(self, row: int) -> str:
        """``row 3, line 5``: rows count from 0 after the header, as in the output."""
        return f"row {row}, line {self.lines[row]}"


def read_csv(path: str, what: str) -> Table:
    """Read a CSV file with a header row; ``what`` ("training", "test") names
    it in error messages."""
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
            f"cannot read the {what} file {path}: {exc.strerror or one_line(exc)}"
        ) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CommandLineError(
            f"{path} is not a readable CSV file: {one_line(exc)}"
        ) from None
    if not rows:
        raise CommandLineError(f"the {what} file {path} has a header but no data rows")
    return Table(file, names, rows, lines)


#: Cells read as a missing value (a subset of :func:`pandas.read_csv`'s).
MISSING = frozenset(
    ("", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "<NA>", "#N/A")
)


def _as_float(value: str) -> float | None:
    """The number in a CSV cell: NaN when missing, None when not a number."""
    value = value.strip()
    if value in MISSING:
        return math.nan
    try:
        return float(value)
    except ValueError:
        return None


def _feature_column(table: Table, name: str) -> tuple[np.ndarray, int | None]:
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


def target(table: Table, column: str, like: np.ndarray | None) -> np.ndarray:
    """The label column ``column``, typed like ``like`` (a model's classes)."""
    cells = table.columns[column]
    for row, cell in enumerate(cells):
        if not cell.strip():
            raise CommandLineError(
                f"{table.path}, {table.where(row)}: the target column {column!r} "
                "is empty"
            )
    return _labels(cells, like)


def numeric_target(table: Table, column: str, why: str) -> np.ndarray:
    """The target column ``column`` as float64, for a regressor (``why`` ends
    the error message when a cell is not a number)."""
    cells = table.columns[column]
    values = np.empty(len(cells))
    for row, cell in enumerate(cells):
        number = _as_float(cell)
        if number is None or not math.isfinite(number):
            what = "empty" if not cell.strip() else f"not a number: {cell.strip()!r}"
            raise CommandLineError(
                f"{table.path}, {table.where(row)}: the target column {column!r} "
                f"is {what}. {why}"
            )
        values[row] = number
    return values


def column_kinds(table: Table, names: list[str]) -> dict[str, str]:
    """``"numeric"`` for a column of numbers (and missing values), else
    ``"text"``: how the built-in model encodes each column of the training
    file. A column with no value at all is an error."""
    kinds = {}
    for name in names:
        values, bad_row = _feature_column(table, name)
        if bad_row is None and np.isnan(values).all():
            raise CommandLineError(
                f"column {name!r} of {table.path} has no value in any row: leave "
                f"it out with --drop {name}"
            )
        kinds[name] = "numeric" if bad_row is None else "text"
    return kinds


def _typed(table: Table, name: str, kind: str, train: Table) -> np.ndarray:
    """A column read as the training file's ``kind`` of it: floats, or text
    with NaN for the missing cells."""
    if kind == "text":
        cells = [cell.strip() for cell in table.columns[name]]
        return np.array([math.nan if c in MISSING else c for c in cells], dtype=object)
    values, bad_row = _feature_column(table, name)
    if bad_row is not None:
        raise CommandLineError(
            f"column {name!r} is numeric in {train.path} but not in {table.path} "
            f"({table.where(bad_row)}: {table.columns[name][bad_row].strip()!r}): "
            "fix the cell, or leave the column out with --drop"
        )
    return values


def features(
    table: Table,
    names: list[str],
    *,
    numeric_only: str | None,
    frame: bool,
    kinds: tuple[dict[str, str], Table] | None = None,
) -> Any:
    """The feature columns as an array (or a DataFrame if ``frame``).

    ``numeric_only`` names the model that needs complete numeric features
    (None: any column is passed on, as text if it is not numeric).
    ``kinds``, the :func:`column_kinds` of the training file and that file,
    types every column as there (the built-in models).
    """
    columns = {}
    for name in names:
        if kinds is not None:
            columns[name] = _typed(table, name, kinds[0][name], kinds[1])
            continue
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

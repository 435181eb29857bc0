"""The output of ``skrelatif explain``: CSV or JSON records (or an HTML
report, see :mod:`skrelatif._cli._report`), written atomically."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ._errors import CommandLineError

#: Columns of the output, in order.
COLUMNS = ("test_row", "target", "kind", "rank", "train_row", "train_label", "score")
#: Columns added by ``--with-test-labels``.
TEST_LABEL_COLUMNS = ("test_label", "correct")
#: Columns added by ``--with-test-labels`` for a regressor.
TEST_TARGET_COLUMNS = ("test_label", "error")
#: Output formats, by file suffix.
FORMATS = (".csv", ".json", ".html")
#: The output's names of the columns of ``Explanation.to_records``.
_RENAMED = {
    "test_index": "test_row",
    "train_index": "train_row",
    "train_target": "train_label",
}


def records(
    explanation: Any,
    *,
    test_labels: Sequence[Any] | None = None,
    predictions: Sequence[Any] | None = None,
    regressor: bool = False,
    test_ids: Sequence[str] | None = None,
    train_ids: Sequence[str] | None = None,
) -> list[dict]:
    """One record per (test row, kind, rank), with the keys of :data:`COLUMNS`.

    With ``test_labels`` and ``predictions`` (one per test row), each record
    also gets ``test_label`` and ``correct`` (the prediction is that label),
    or for a ``regressor`` ``test_label`` and ``error`` (the prediction minus
    that target). With ``test_ids`` (``train_ids``), the row's ID replaces its
    number, as ``test_id`` (``train_id``) in place of ``test_row``
    (``train_row``).
    """
    rows = [
        {_RENAMED.get(key, key): value for key, value in record.items()}
        for record in explanation.to_records()
    ]
    if test_labels is not None and predictions is not None:
        for row in rows:
            t = row["test_row"]
            label = test_labels[t]
            row["test_label"] = label.item() if hasattr(label, "item") else label
            if regressor:
                row["error"] = float(predictions[t]) - float(test_labels[t])
            else:
                row["correct"] = bool(predictions[t] == test_labels[t])
    for ids, key in ((test_ids, "test"), (train_ids, "train")):
        if ids is not None:
            rows = [
                {
                    (f"{key}_id" if name == f"{key}_row" else name): (
                        ids[value] if name == f"{key}_row" else value
                    )
                    for name, value in row.items()
                }
                for row in rows
            ]
    return rows


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return value


def write(rows: list[dict], stream: TextIO, suffix: str) -> None:
    """Write ``rows`` as CSV (a header, then one line each) or a JSON array."""
    if suffix == ".json":
        stream.write("[\n")
        stream.write(",\n".join(json.dumps(r, allow_nan=False) for r in rows))
        stream.write("\n]\n")
        return
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(rows[0] if rows else COLUMNS)
    for row in rows:
        writer.writerow(_cell(v) for v in row.values())


def check_output(path: str, inputs: list[str]) -> Path:
    """Refuse an output path that cannot be written, before any work."""
    file = Path(path)
    if file.suffix.lower() not in FORMATS:
        raise CommandLineError(
            f"--output {path}: the file name must end in .csv, .json or .html"
        )
    if not file.parent.is_dir():
        raise CommandLineError(f"--output {path}: no directory {file.parent}")
    if file.is_dir():
        raise CommandLineError(f"--output {path} is a directory")
    for other in inputs:
        if file.exists() and Path(other).exists() and file.samefile(other):
            raise CommandLineError(f"--output {path} would overwrite an input file")
    return file


def write_atomically(rows: list[dict] | str, file: Path) -> None:
    """Write ``rows`` (or a text, such as an HTML page) to a temporary file
    beside ``file``, then rename it: a failure never leaves a partial output
    (nor changes an existing file)."""
    handle, temporary = tempfile.mkstemp(
        dir=file.parent, prefix=f".{file.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as stream:
            if isinstance(rows, str):
                stream.write(rows)
            else:
                write(rows, stream, file.suffix.lower())
        os.replace(temporary, file)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

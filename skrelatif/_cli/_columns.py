"""Which columns of ``skrelatif explain``'s files are features.

Every column of the training file but ``--target``, ``--id-column`` and the
``--drop`` columns is a feature; the test file must have the same features
(in any order) and may have the target, ID and dropped columns besides.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._csv import Table
from ._errors import CommandLineError


@dataclass
class Columns:
    """The columns of a run.

    Attributes
    ----------
    features : list of str
        The feature columns, in the training file's order.
    left_out : dict of str to str
        The columns that are not features (but the target), each with the
        option that left it out (``"--drop"`` or ``"--id-column"``).
    train_ids, test_ids : list of str or None
        The ``--id-column`` of each file, None when not given or when the
        file does not have the column.
    """

    features: list[str]
    left_out: dict[str, str]
    train_ids: list[str] | None
    test_ids: list[str] | None


def _dropped(drop: list[str], train: Table, test: Table, target: str) -> list[str]:
    """The ``--drop`` names (repeated or comma-separated), checked."""
    names = [name.strip() for option in drop for name in option.split(",")]
    if "" in names:
        raise CommandLineError(
            "--drop: an empty column name; give names separated by commas, such "
            "as --drop id,notes"
        )
    for name in names:
        if name == target:
            raise CommandLineError(
                f"--drop {name}: that is the --target column, which is never a feature"
            )
        if name not in train.names and name not in test.names:
            raise CommandLineError(
                f"--drop {name}: neither {train.path} nor {test.path} has that "
                f"column; the training file's columns are "
                + ", ".join(map(repr, train.names))
            )
    return list(dict.fromkeys(names))


def _ids(table: Table, column: str) -> list[str] | None:
    """The ID column of ``table`` (None if it has none): no empty or repeated
    ID, so that each names one row."""
    if column not in table.names:
        return None
    ids = [cell.strip() for cell in table.columns[column]]
    seen: dict[str, int] = {}
    for row, value in enumerate(ids):
        if not value:
            raise CommandLineError(
                f"{table.path}, {table.where(row)}: the --id-column {column!r} "
                "is empty; every row needs an ID"
            )
        if value in seen:
            raise CommandLineError(
                f"{table.path}: the --id-column {column!r} repeats {value!r} "
                f"({table.where(seen[value])} and {table.where(row)}); IDs must "
                "be unique"
            )
        seen[value] = row
    return ids


def select(
    train: Table, test: Table, *, target: str, drop: list[str], id_column: str | None
) -> Columns:
    """The feature columns, the left-out ones and the IDs, checked."""
    if target not in train.names:
        raise CommandLineError(
            f"the training file {train.path} has no column {target!r} (--target); "
            f"its columns are {', '.join(map(repr, train.names))}"
        )
    left_out = dict.fromkeys(_dropped(drop, train, test, target), "--drop")
    train_ids = test_ids = None
    if id_column is not None:
        if id_column == target:
            raise CommandLineError(
                f"--id-column {id_column} is the --target column; name the column "
                "of row names"
            )
        if id_column in left_out:
            raise CommandLineError(
                f"--id-column {id_column} is also in --drop; give it once (the ID "
                "column is never a feature)"
            )
        if id_column not in train.names and id_column not in test.names:
            raise CommandLineError(
                f"--id-column {id_column}: neither {train.path} nor {test.path} "
                "has that column"
            )
        left_out[id_column] = "--id-column"
        train_ids, test_ids = _ids(train, id_column), _ids(test, id_column)
    features = [n for n in train.names if n != target and n not in left_out]
    if not features:
        raise CommandLineError(
            f"the training file {train.path} has no feature columns besides "
            f"{target!r}" + (" and the left-out ones" if left_out else "")
        )
    _check_test_columns(train, test, features, target, left_out)
    return Columns(features, left_out, train_ids, test_ids)


def _check_test_columns(
    train: Table,
    test: Table,
    features: list[str],
    target: str,
    left_out: dict[str, str],
) -> None:
    """The test file must have the training file's feature columns (and at
    most the target and left-out columns besides)."""
    extra = [n for n in test.names if n not in train.names and n not in left_out]
    missing = [name for name in features if name not in test.names]
    if extra or missing:
        problems = []
        if extra:
            problems.append(
                f"columns that {train.path} does not have: "
                + ", ".join(map(repr, extra))
                + f" (leave them out with --drop {','.join(extra)})"
            )
        if missing:
            problems.append("no column " + ", ".join(map(repr, missing)))
        raise CommandLineError(
            f"the test file {test.path} must have the feature columns of the "
            f"training file (and optionally {target!r}); it has "
            + " and ".join(problems)
        )

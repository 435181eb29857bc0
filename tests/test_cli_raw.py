"""``skrelatif explain`` on raw tables: text, missing values, IDs, dropped
columns, and the hints for a wrong model or target.

A CLI-only user's files: an ID column, numeric columns with empty cells,
a text column with empty cells (and, in the test file, a value the training
file does not have) and a free-text column to drop. The output is checked
against the same preprocessing built by hand on :func:`pandas.read_csv`'s
reading of the files, and Ridge's predictions against numpy alone.
"""

import csv
import io
import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

import skrelatif
from skrelatif import InfluenceExplainer
from skrelatif._cli import main

pd = pytest.importorskip("pandas")
ROOT = Path(__file__).resolve().parents[1]
CITIES = ["Lyon", "Nantes", "Oslo", "Porto"]


def _raw_rows(rng, n, start, cities):
    """Rows of id, age, income, city, notes; the class label and a price."""
    age = rng.normal(40, 12, n)
    income = rng.lognormal(3, 0.5, n)
    city = rng.choice(cities, n, p=np.linspace(2, 1, len(cities)) / 1.5 / len(cities))
    bonus = np.array([{"Lyon": 8.0, "Oslo": -6.0}.get(c, 0.0) for c in city])
    price = 2 * age + income + bonus + rng.normal(0, 3, n)
    label = np.where(age + bonus + rng.normal(0, 6, n) > 40, "buy", "wait")
    cells = []
    for i in range(n):
        cells.append(
            [
                f"c{start + i:03d}",
                "" if i % 7 == 3 else f"{age[i]:.2f}",
                "NA" if i % 11 == 5 else f"{income[i]:.3f}",
                "" if i % 9 == 4 else city[i],
                f"note number {start + i}",
            ]
        )
    return cells, label, price


def _write(path, header, cells, targets):
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        for row, target in zip(cells, targets):
            writer.writerow([*row, *target])
    return path


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    d = tmp_path_factory.mktemp("raw")
    rng = np.random.RandomState(0)
    cells, label, price = _raw_rows(rng, 60, 0, CITIES)
    test_cells, test_label, test_price = _raw_rows(rng, 8, 100, CITIES)
    test_cells[2][3] = "Zagreb"  # a city the training file does not have
    header = ["id", "age", "income", "city", "notes"]
    return {
        "dir": d,
        "train": _write(
            d / "train.csv", [*header, "label", "price"], cells, zip(label, price)
        ),
        "test": _write(d / "test.csv", header, test_cells, [()] * 8),
        "test_labelled": _write(
            d / "test_labelled.csv",
            [*header, "label"],
            test_cells,
            zip(test_label),
        ),
    }


def _by_hand(final):
    """The built-in preprocessing, written out with column names."""
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    text = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    columns = ColumnTransformer(
        [("numeric", numeric, ["age", "income"]), ("text", text, ["city"])]
    )
    return make_pipeline(columns, final)


def _cli_rows(capsys, raw, *args, test="test"):
    argv = ["explain", "--train", str(raw["train"]), "--test", str(raw[test])]
    assert main([*argv, *map(str, args)]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def _check_rows(rows, e, train, test, target, k, *, train_ids=True):
    """The CLI's rows are the explanation's, named by ID."""
    assert len(rows) == len(test) * 2 * k
    at = 0
    for t in range(len(test)):
        for kind, index, scores in (
            ("proponent", e.proponents, e.proponent_scores),
            ("opponent", e.opponents, e.opponent_scores),
        ):
            for rank in range(k):
                row, i = rows[at], index[t, rank]
                at += 1
                assert row["test_id"] == test["id"][t]
                assert (row["kind"], int(row["rank"])) == (kind, rank + 1)
                if train_ids:
                    assert row["train_id"] == train["id"][i]
                else:
                    assert int(row["train_row"]) == i
                label = train[target][i]
                if isinstance(label, float):  # pandas parses floats to 1 ulp
                    np.testing.assert_allclose(
                        float(row["train_label"]), label, rtol=4e-16, atol=0
                    )
                else:
                    assert str(row["train_label"]) == str(label)
                expected = scores[t, rank]
                np.testing.assert_allclose(
                    float(row["score"]), expected, rtol=1e-7, atol=1e-9 * abs(expected)
                )


@pytest.mark.parametrize(
    "model, final, target",
    [
        ("logreg", LogisticRegression(tol=1e-8, max_iter=1000), "label"),
        ("svc", SVC(), "label"),
        ("ridge", Ridge(), "price"),
    ],
)
def test_raw_csv_with_text_missing_values_and_ids(raw, capsys, model, final, target):
    other = "price" if target == "label" else "label"
    rows = _cli_rows(
        capsys,
        raw,
        "--target",
        target,
        "--model",
        model,
        "--id-column",
        "id",
        "--drop",
        f"notes,{other}",
        "--k",
        3,
    )
    assert list(rows[0])[:2] == ["test_id", "target"] and "train_id" in rows[0]
    train = pd.read_csv(raw["train"])
    test = pd.read_csv(raw["test"])
    assert train["age"].isna().sum() > 0 and train["city"].isna().sum() > 0
    assert train["income"].isna().sum() > 0  # "NA" cells
    features = ["age", "income", "city"]
    ex = InfluenceExplainer(_by_hand(final)).fit(train[features], train[target])
    e = ex.explain(test[features], k=3)
    _check_rows(rows, e, train, test, target, 3)
    targets = [r["target"] for r in rows[:: 2 * 3]]
    if target == "price":
        np.testing.assert_allclose(np.array(targets, float), e.target, rtol=1e-9)
    else:
        assert targets == list(e.target)


def _ridge_by_numpy(train, test, alpha=1.0):
    """Median imputation, standardisation, one-hot (most frequent for the
    missing cells) and Ridge with an intercept, with numpy alone."""

    def encode(frame, reference):
        columns = []
        for name in ("age", "income"):
            ref = reference[name].to_numpy(float)
            median = np.nanmedian(ref)
            ref_filled = np.where(np.isnan(ref), median, ref)
            values = frame[name].to_numpy(float)
            values = np.where(np.isnan(values), median, values)
            columns.append((values - ref_filled.mean()) / ref_filled.std())
        cities = reference["city"].dropna().to_numpy(str)
        names, counts = np.unique(cities, return_counts=True)
        most = names[np.argmax(counts)]
        city = frame["city"].fillna(most).to_numpy(str)
        columns += [(city == name).astype(float) for name in names]
        return np.column_stack(columns)

    A, B = encode(train, train), encode(test, train)
    y = train["price"].to_numpy(float)
    mean_A, mean_y = A.mean(axis=0), y.mean()
    Ac = A - mean_A
    w = np.linalg.solve(Ac.T @ Ac + alpha * np.eye(A.shape[1]), Ac.T @ (y - mean_y))
    return (B - mean_A) @ w + mean_y


def test_ridge_predictions_match_numpy(raw, capsys):
    rows = _cli_rows(
        capsys, raw, "--target", "price", "--model", "ridge", "--drop", "notes,id,label"
    )
    predictions = np.array([float(r["target"]) for r in rows[::10]])
    expected = _ridge_by_numpy(pd.read_csv(raw["train"]), pd.read_csv(raw["test"]))
    scale = np.abs(expected).max()
    np.testing.assert_allclose(predictions, expected, rtol=1e-9, atol=1e-12 * scale)


def test_id_column_only_in_the_test_file(raw, capsys, tmp_path):
    train = pd.read_csv(raw["train"]).drop(columns=["id", "price", "notes"])
    path = tmp_path / "train_no_id.csv"
    train.to_csv(path, index=False)
    argv = ["explain", "--train", str(path), "--test", str(raw["test"])]
    argv += ["--target", "label", "--id-column", "id", "--drop", "notes", "--k", "2"]
    assert main(argv) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == [
        "test_id",
        "target",
        "kind",
        "rank",
        "train_row",
        "train_label",
        "score",
    ]
    test = pd.read_csv(raw["test"])
    final = LogisticRegression(tol=1e-8, max_iter=1000)
    features = ["age", "income", "city"]
    ex = InfluenceExplainer(_by_hand(final)).fit(train[features], train["label"])
    e = ex.explain(test[features], k=2)
    _check_rows(rows, e, train, test, "label", 2, train_ids=False)


def test_ids_are_text_in_json(raw, capsys, tmp_path):
    out = tmp_path / "result.json"
    argv = ["explain", "--train", str(raw["train"]), "--test", str(raw["test"])]
    argv += ["--target", "price", "--model", "ridge", "--drop", "notes,label"]
    assert main([*argv, "--id-column", "id", "--k", "1", "--output", str(out)]) == 0
    records = json.loads(out.read_text())
    test_ids = list(pd.read_csv(raw["test"])["id"])
    assert [r["test_id"] for r in records[::2]] == test_ids
    assert all(isinstance(r["train_id"], str) for r in records)
    assert all(isinstance(r["score"], float) for r in records)


def test_a_test_column_the_training_file_lacks_needs_drop(raw, capsys, tmp_path):
    test = pd.read_csv(raw["test"], dtype=str, keep_default_na=False)
    test["seat"] = "12A"
    path = tmp_path / "test_seat.csv"
    test.to_csv(path, index=False)
    argv = ["explain", "--train", str(raw["train"]), "--test", str(path)]
    argv += ["--target", "label", "--drop", "notes,price", "--id-column", "id"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "columns that" in err and "'seat' (leave them out with --drop seat)" in err
    assert main([*argv, "--drop", "seat"]) == 0
    with_seat_dropped = capsys.readouterr().out
    # the same rows as for the file without the column (--drop repeated)
    argv = ["explain", "--train", str(raw["train"]), "--test", str(raw["test"])]
    argv += ["--target", "label", "--drop", "notes", "--drop", "price"]
    assert main([*argv, "--id-column", "id"]) == 0
    assert capsys.readouterr().out == with_seat_dropped


def test_verbose_prints_the_columns_and_the_imputed_values(raw, capsys):
    argv = ["explain", "--train", str(raw["train"]), "--test", str(raw["test"])]
    argv += ["--target", "label", "--drop", "notes,price", "--id-column", "id"]
    assert main([*argv, "--verbose"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert all(line.startswith("skrelatif: ") for line in err)
    train, test = pd.read_csv(raw["train"]), pd.read_csv(raw["test"])
    median = train["age"].median()
    age = next(line for line in err if line.startswith("skrelatif:   age:"))
    assert age == (
        f"skrelatif:   age: {train['age'].isna().sum()} missing in training, "
        f"{test['age'].isna().sum()} in test, imputed with {median:.6g}"
    )
    city = next(line for line in err if line.startswith("skrelatif:   city:"))
    most = train["city"].value_counts().idxmax()
    assert city.startswith(
        f"skrelatif:   city: {train['city'].nunique()} values "
        f"({', '.join(sorted(train['city'].dropna().unique()))}); 1 test rows with "
        "a value not seen in training"
    )
    assert city.endswith(f"imputed with {most!r}")
    assert (
        "skrelatif: left out: notes (--drop), price (--drop), id (--id-column)" in err
    )
    n_inputs = 2 + train["city"].nunique()
    assert err[-1] == f"skrelatif: 3 feature columns -> {n_inputs} model inputs"


# -- hints ---------------------------------------------------------------------------
def test_a_text_column_with_a_value_per_row_gets_a_hint(raw, capsys):
    argv = ["explain", "--train", str(raw["train"]), "--test", str(raw["test"])]
    assert main([*argv, "--target", "label", "--drop", "price", "--k", "1"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"skrelatif: warning: column {name!r} has a different value in each of the "
        "60 training rows, so one-hot encoding gives one model input per row; if "
        f"it names the rows pass --id-column {name}, else leave it out with "
        f"--drop {name}"
        for name in ("id", "notes")
    ]
    assert len(set(pd.read_csv(raw["train"])["notes"])) == 60


@pytest.fixture(scope="module")
def numeric_target(tmp_path_factory):
    d = tmp_path_factory.mktemp("numeric")
    rng = np.random.RandomState(1)
    X = rng.normal(size=(120, 3))
    y = 50 + 20 * X[:, 0] + rng.normal(size=120)
    names = ["a", "b", "c"]
    return {
        "float": _write(d / "float.csv", [*names, "y"], X.tolist(), zip(y)),
        "whole": _write(d / "whole.csv", [*names, "y"], X.tolist(), zip(y.round())),
        "test": _write(d / "test.csv", names, X[:3].tolist(), [()] * 3),
        "dir": d,
    }


@pytest.mark.parametrize("model", ["logreg", "svc"])
def test_a_numeric_target_for_a_classifier_says_use_ridge(
    numeric_target, capsys, model
):
    argv = ["explain", "--test", str(numeric_target["test"]), "--target", "y"]
    argv += ["--model", model, "--k", "1"]
    assert main([*argv, "--train", str(numeric_target["float"])]) == 2
    err = capsys.readouterr().err
    y = float(pd.read_csv(numeric_target["float"])["y"][0])
    assert err == (
        f"skrelatif: error: the target column 'y' holds numbers such as {y!r}, "
        f"but --model {model} is a classifier, which needs class labels: for a "
        "numeric target use --model ridge (a regressor)\n"
    )
    # whole numbers are classes, but so many of them get a warning
    assert main([*argv, "--train", str(numeric_target["whole"])]) == 0
    err = capsys.readouterr().err
    n_values = pd.read_csv(numeric_target["whole"])["y"].nunique()
    assert n_values > 24  # more than 20, and fewer than 5 rows per value
    assert err == (
        f"skrelatif: warning: the target column 'y' has {n_values} distinct numbers "
        f"in 120 rows, each one a class of --model {model}, a classifier; for a "
        "numeric target use --model ridge (a regressor)\n"
    )
    ridge = ["--train", str(numeric_target["float"]), "--model", "ridge"]
    assert main([*argv, *ridge]) == 0


@pytest.mark.parametrize(
    "model, advice",
    [
        (GaussianNB(), "NearestNeighborExplainer"),
        (
            make_pipeline(StandardScaler(), GaussianNB()),
            "NearestNeighborExplainer",
        ),
        (GridSearchCV(LogisticRegression(), {"C": [1.0, 2.0]}), ".best_estimator_"),
    ],
)
def test_an_unsupported_model_file_says_what_to_do(
    numeric_target, capsys, model, advice
):
    import joblib

    from skrelatif._adapters import supported_estimators

    path = numeric_target["dir"] / f"{type(model).__name__}.joblib"
    joblib.dump(model, path)
    argv = ["explain", "--train", str(numeric_target["whole"])]
    argv += ["--test", str(numeric_target["test"]), "--target", "y"]
    assert main([*argv, "--model-file", str(path), "--trust-pickle"]) == 2
    err = capsys.readouterr().err
    final = model[-1] if hasattr(model, "steps") else model
    assert err.startswith(
        f"skrelatif: error: the model in {path} is a {type(final).__name__}"
    )
    assert ", ".join(supported_estimators()) in err and advice in err
    assert err.count("\n") == 1


def test_version():
    done = subprocess.run(
        [sys.executable, "-m", "skrelatif", "--version"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert done.stdout == f"skrelatif {skrelatif.__version__}\n"
    assert done.stdout.split()[1][0].isdigit()


# -- doc/command_line.rst: its example is what the command prints --------------------
RST = (ROOT / "doc" / "command_line.rst").read_text()


def _rst_commands():
    """Each ``$ skrelatif ...`` line of the page run on the example's files,
    with the lines shown after it (up to a blank line)."""
    commands = []
    lines = RST.splitlines()
    for at, line in enumerate(lines):
        if line.startswith("    $ skrelatif explain --train train.csv --test test.csv"):
            shown = []
            for following in lines[at + 1 :]:
                if not following.strip():
                    break
                shown.append(following[4:])
            commands.append((line[6:], [s for s in shown if s != "..."]))
    return commands


def _param(command, shown):
    # the default classifier on the example's 203 classes takes ~15 s
    slow = "--model" not in command and "--target progression" in command
    marks = [pytest.mark.slow] if slow else []
    name = command.split("test.csv ", 1)[1]
    return pytest.param(command, shown, marks=marks, id=name)


@pytest.fixture(scope="module")
def rst_example(tmp_path_factory):
    """The example's train.csv and test.csv, made by the page's own code."""
    code = RST.split(".. code-block:: python\n\n", 1)[1].split("\n\n", 2)
    code = "\n\n".join(code[:2])  # the import, then the lines that write the files
    assert 'to_csv("test.csv"' in code
    d = tmp_path_factory.mktemp("rst")
    cwd = Path.cwd()
    try:
        os.chdir(d)
        exec(textwrap.dedent(code), {})
    finally:
        os.chdir(cwd)
    return d


def _fields(line: str) -> list:
    """A line's comma-separated fields, numbers as floats."""
    fields = []
    for field in line.split(","):
        try:
            fields.append(float(field))
        except ValueError:
            fields.append(field)
    return fields


def _shown_in(line: str, printed: list[str]) -> bool:
    """``line`` is printed, its numbers to 1e-9 relative (the page shows them
    to the last digit, which BLAS may round otherwise on another machine)."""
    if line in printed:
        return True
    want = _fields(line)
    for other in printed:
        got = _fields(other)
        if len(got) == len(want) and all(
            a == b
            if isinstance(a, str) or isinstance(b, str)
            else np.isclose(a, b, rtol=1e-9, atol=1e-12 * max(abs(a), 1.0))
            for a, b in zip(got, want)
        ):
            return True
    return False


@pytest.mark.parametrize("command, shown", [_param(*c) for c in _rst_commands()])
def test_command_line_rst_example_is_what_the_command_prints(
    rst_example, capsys, monkeypatch, command, shown
):
    monkeypatch.chdir(rst_example)
    argv = shlex.split(command)[1:]
    status = main(argv)
    captured = capsys.readouterr()
    printed = captured.err.splitlines() + captured.out.splitlines()
    assert shown and all(_shown_in(line, printed) for line in shown), (shown, printed)
    assert status == (2 if any(s.startswith("skrelatif: error") for s in shown) else 0)

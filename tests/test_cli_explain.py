"""``skrelatif explain``: CSV files in, explanations out, bad input refused.

The command runs as a subprocess (``python -m skrelatif``) on files the tests
write; its output is checked against the Python API. The bad-input cases run
in-process through ``main`` (the same code, without the interpreter start-up),
and a few of them again as subprocesses for the exit status and stderr.
"""

import csv
import io
import json
import operator
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from skrelatif import InfluenceExplainer
from skrelatif._cli import COLUMNS, ProgressBar, main
from skrelatif._cli._output import TEST_LABEL_COLUMNS, TEST_TARGET_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
FEATURES = ["f0", "f1", "f2", "f3"]
NAMES = np.array(["ant", "bee", "cat"])


def _builtin(final, n_features=4):
    """The built-in model on numeric columns, written out: every column
    imputed with its median and standardised, then ``final``."""
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    columns = ColumnTransformer([("numeric", numeric, list(range(n_features)))])
    return make_pipeline(columns, final)


def _data(n_train=60, n_test=7):
    X, y = make_classification(
        n_samples=n_train + n_test,
        n_features=4,
        n_informative=3,
        n_redundant=0,
        n_classes=3,
        n_clusters_per_class=1,
        random_state=0,
    )
    return X[:n_train], NAMES[y[:n_train]], X[n_train:], NAMES[y[n_train:]]


def _write_csv(path, X, y=None, names=FEATURES, target="label"):
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(list(names) + ([target] if y is not None else []))
        for i, row in enumerate(X):
            cells = [v if isinstance(v, str) else repr(float(v)) for v in row]
            writer.writerow(cells + ([str(y[i])] if y is not None else []))
    return path


@pytest.fixture
def files(tmp_path):
    X, y, X_test, y_test = _data()
    return {
        "X": X,
        "y": y,
        "X_test": X_test,
        "y_test": y_test,
        "train": _write_csv(tmp_path / "train.csv", X, y),
        "test": _write_csv(tmp_path / "test.csv", X_test),
        "test_labelled": _write_csv(tmp_path / "test_labelled.csv", X_test, y_test),
        "dir": tmp_path,
    }


def _run(*args, check=True):
    """``python -m skrelatif explain ...`` from the repository root."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "skrelatif", "explain", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def _read_output(path):
    if Path(path).suffix == ".json":
        return json.loads(Path(path).read_text())
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def _check_against(records, explanation, y_train, k):
    """The output rows are the explanation, row by row."""
    n_test = len(explanation.target)
    assert len(records) == n_test * 2 * k
    assert list(records[0]) == list(COLUMNS)
    at = 0
    for t in range(n_test):
        for kind, index, scores in (
            ("proponent", explanation.proponents, explanation.proponent_scores),
            ("opponent", explanation.opponents, explanation.opponent_scores),
        ):
            for rank in range(k):
                record = records[at]
                at += 1
                assert int(record["test_row"]) == t
                assert str(record["target"]) == str(explanation.target[t])
                assert record["kind"] == kind
                assert int(record["rank"]) == rank + 1
                assert int(record["train_row"]) == index[t, rank]
                assert str(record["train_label"]) == str(y_train[index[t, rank]])
                np.testing.assert_allclose(
                    float(record["score"]), scores[t, rank], rtol=1e-9, atol=1e-12
                )


def test_explain_csv_output_matches_the_python_api(files):
    out = files["dir"] / "result.csv"
    done = _run(
        "--train",
        files["train"],
        "--test",
        files["test"],
        "--target",
        "label",
        "--k",
        3,
        "--output",
        out,
    )
    # One confirmation line on stderr, as ``demo --plot`` prints one.
    assert done.stdout == ""
    n_rows = 7 * 2 * 3  # test rows x (proponent, opponent) x k
    assert done.stderr == f"skrelatif: wrote {n_rows} rows to {out}\n"
    model = _builtin(LogisticRegression(tol=1e-8, max_iter=1000))
    ex = InfluenceExplainer(model, method="l-relatif").fit(files["X"], files["y"])
    _check_against(_read_output(out), ex.explain(files["X_test"], k=3), files["y"], 3)


def test_explain_json_output_with_svc_and_if(files):
    out = files["dir"] / "result.json"
    done = _run(
        "--train",
        files["train"],
        "--test",
        files["test"],
        "--target",
        "label",
        "--model",
        "svc",
        "--method",
        "if",
        "--k",
        2,
        "--output",
        out,
        "--quiet",
    )
    assert done.stderr == ""  # --quiet: not even the confirmation line
    records = _read_output(out)
    assert isinstance(records[0]["score"], float)
    assert isinstance(records[0]["rank"], int)
    model = _builtin(SVC())
    ex = InfluenceExplainer(model, method="if").fit(files["X"], files["y"])
    _check_against(records, ex.explain(files["X_test"], k=2), files["y"], 2)


def test_explain_given_test_labels_to_stdout(files, capsys):
    # In-process: the labels of the test file are explained, CSV on stdout.
    status = main(
        [
            "explain",
            "--train",
            str(files["train"]),
            "--test",
            str(files["test_labelled"]),
            "--target",
            "label",
            "--method",
            "theta-relatif",
            "--k",
            "2",
            "--test-labels",
        ]
    )
    assert status == 0
    records = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    model = _builtin(LogisticRegression(tol=1e-8, max_iter=1000))
    ex = InfluenceExplainer(model, method="theta-relatif").fit(files["X"], files["y"])
    e = ex.explain(files["X_test"], files["y_test"], k=2)
    assert list(e.target) == list(files["y_test"])
    _check_against(records, e, files["y"], 2)


@pytest.mark.parametrize("explain_test_labels", [False, True])
def test_with_test_labels_adds_the_label_and_whether_it_is_predicted(
    files, explain_test_labels
):
    # The first two test labels are wrong, so that "correct" is checked both ways.
    y_test = files["y_test"].copy()
    y_test[:2] = np.where(y_test[:2] == "ant", "bee", "ant")
    test = _write_csv(files["dir"] / "test_relabelled.csv", files["X_test"], y_test)
    out = files["dir"] / "result.json"
    args = ["--train", files["train"], "--test", test]
    args += ["--target", "label", "--k", 2, "--output", out, "--with-test-labels"]
    _run(*args, *(["--test-labels"] if explain_test_labels else []))
    records = _read_output(out)
    assert list(records[0]) == [*COLUMNS, *TEST_LABEL_COLUMNS]
    model = _builtin(LogisticRegression(tol=1e-8, max_iter=1000))
    model.fit(files["X"], files["y"])
    predicted = model.predict(files["X_test"])
    assert 0 < np.sum(predicted != y_test) < len(y_test)
    for record in records:
        t = record["test_row"]
        assert record["test_label"] == y_test[t]
        assert record["correct"] is bool(predicted[t] == y_test[t])
        explained = y_test[t] if explain_test_labels else predicted[t]
        assert record["target"] == explained
    ex = InfluenceExplainer(model).fit(files["X"], files["y"])
    e = ex.explain(files["X_test"], y_test if explain_test_labels else None, k=2)
    _check_against([{c: r[c] for c in COLUMNS} for r in records], e, files["y"], 2)


def test_with_test_labels_in_csv_and_without_the_column(files, capsys):
    args = ["explain", "--train", str(files["train"]), "--target", "label"]
    args += ["--k", "1", "--with-test-labels"]
    assert main([*args, "--test", str(files["test_labelled"])]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {row["correct"] for row in rows} <= {"true", "false"}
    assert [row["test_label"] for row in rows[::2]] == list(files["y_test"])
    assert main([*args, "--test", str(files["test"])]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"skrelatif: error: --with-test-labels: the test file {files['test']} has "
        "no column 'label'\n"
    )


def test_columns_of_the_test_file_are_matched_by_name(files, capsys):
    reordered = _write_csv(
        files["dir"] / "reordered.csv", files["X_test"][:, ::-1], names=FEATURES[::-1]
    )
    args = ["explain", "--train", str(files["train"]), "--target", "label", "--k", "2"]
    assert main([*args, "--test", str(files["test"])]) == 0
    expected = capsys.readouterr().out
    assert main([*args, "--test", str(reordered)]) == 0
    assert capsys.readouterr().out == expected


def _fitted_pipeline(files, first=None):
    first = first or StandardScaler()
    model = make_pipeline(first, LogisticRegression(C=0.5, tol=1e-8))
    return model.fit(files["X"], files["y"])


def test_model_file_skops(files):
    sio = pytest.importorskip("skops.io")
    model = _fitted_pipeline(files)
    path = files["dir"] / "model.skops"
    sio.dump(model, path)
    out = files["dir"] / "result.csv"
    _run(
        "--train",
        files["train"],
        "--test",
        files["test"],
        "--target",
        "label",
        "--model-file",
        path,
        "--method",
        "if",
        "--k",
        4,
        "--output",
        out,
    )
    ex = InfluenceExplainer(model, method="if").fit(files["X"], files["y"])
    _check_against(_read_output(out), ex.explain(files["X_test"], k=4), files["y"], 4)


def test_model_file_skops_refuses_untrusted_types_unless_trusted(files, capsys):
    sio = pytest.importorskip("skops.io")
    model = _fitted_pipeline(files, FunctionTransformer(operator.neg))
    path = files["dir"] / "model.skops"
    sio.dump(model, path)
    out = files["dir"] / "result.csv"
    args = [
        "explain",
        "--train",
        str(files["train"]),
        "--test",
        str(files["test"]),
        "--target",
        "label",
        "--model-file",
        str(path),
        "--output",
        str(out),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "_operator.neg" in err and "--trust" in err
    assert not out.exists()
    assert main([*args, "--trust", "_operator.neg", "--k", "2"]) == 0
    ex = InfluenceExplainer(model).fit(files["X"], files["y"])
    _check_against(_read_output(out), ex.explain(files["X_test"], k=2), files["y"], 2)


def test_model_file_pickle_needs_trust_pickle(files, capsys):
    joblib = pytest.importorskip("joblib")
    model = _fitted_pipeline(files)
    path = files["dir"] / "model.joblib"
    joblib.dump(model, path)
    out = files["dir"] / "result.json"
    args = [
        "explain",
        "--train",
        str(files["train"]),
        "--test",
        str(files["test"]),
        "--target",
        "label",
        "--model-file",
        str(path),
        "--output",
        str(out),
        "--k",
        "2",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--trust-pickle" in err and "runs any code" in err
    assert not out.exists()
    assert main([*args, "--trust-pickle"]) == 0
    ex = InfluenceExplainer(model).fit(files["X"], files["y"])
    _check_against(_read_output(out), ex.explain(files["X_test"], k=2), files["y"], 2)


def test_model_file_pipeline_fitted_on_a_dataframe(files, capsys):
    pd = pytest.importorskip("pandas")
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import OneHotEncoder

    # A text column, encoded by the pipeline: fine with --model-file.
    frame = pd.DataFrame(files["X"], columns=FEATURES)
    frame["colour"] = np.where(files["X"][:, 0] > 0, "red", "blue")
    test = pd.DataFrame(files["X_test"], columns=FEATURES)
    test["colour"] = np.where(files["X_test"][:, 0] > 0, "red", "blue")
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(), ["colour"]), (StandardScaler(), FEATURES)
        ),
        LogisticRegression(tol=1e-8),
    ).fit(frame, files["y"])
    frame.assign(label=files["y"]).to_csv(files["dir"] / "train_text.csv", index=False)
    test.to_csv(files["dir"] / "test_text.csv", index=False)
    path = files["dir"] / "model.joblib"
    pytest.importorskip("joblib").dump(model, path)
    assert (
        main(
            [
                "explain",
                "--train",
                str(files["dir"] / "train_text.csv"),
                "--test",
                str(files["dir"] / "test_text.csv"),
                "--target",
                "label",
                "--model-file",
                str(path),
                "--trust-pickle",
                "--k",
                "2",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert captured.err == ""
    records = list(csv.DictReader(io.StringIO(captured.out)))
    ex = InfluenceExplainer(model).fit(frame, files["y"])
    _check_against(records, ex.explain(test, k=2), files["y"], 2)


# -- bad input -----------------------------------------------------------------------
def _bad_inputs(files):
    d = files["dir"]
    X, y, X_test = files["X"], files["y"], files["X_test"]
    (d / "empty.csv").write_text("")
    (d / "header_only.csv").write_text("f0,f1,f2,f3,label\n")
    text = X.astype(object)
    text[3, 1] = "tall"
    ragged = (d / "train.csv").read_text().splitlines()
    ragged[5] += ",9"
    missing_value = X.astype(object)
    missing_value[2, 0] = ""
    text_test = X_test.astype(object)
    text_test[4, 2] = "tall"
    _write_csv(d / "text_test.csv", text_test)
    empty_column = X.astype(object)
    empty_column[:, 3] = "NA"
    _write_csv(d / "empty_column.csv", empty_column, y)
    ids = [f"p{i}" for i in range(len(X))]
    ids[9] = "p3"
    _write_csv(d / "repeated_id.csv", np.c_[X, ids], y, names=[*FEATURES, "id"])
    one_class = np.full(len(y), "ant")
    _write_csv(d / "text.csv", text, y)
    (d / "ragged.csv").write_text("\n".join(ragged) + "\n")
    _write_csv(d / "missing_value.csv", missing_value, y)
    _write_csv(d / "one_class.csv", X, one_class)
    _write_csv(
        d / "extra_column.csv", np.c_[X_test, X_test[:, 0]], names=[*FEATURES, "f4"]
    )
    _write_csv(d / "missing_column.csv", X_test[:, :3], names=FEATURES[:3])
    _write_csv(d / "unknown_label.csv", X_test, ["eel"] * len(X_test))
    (d / "model.pkl").write_bytes(b"not a pickle")
    import joblib

    joblib.dump(LogisticRegression().fit(X, y), d / "bare.joblib")
    train, test = str(files["train"]), str(files["test"])
    return {
        "missing target column": (
            ["--train", train, "--test", test, "--target", "y"],
            "has no column 'y'",
        ),
        "text in a numeric column of the test file": (
            ["--train", train, "--test", str(d / "text_test.csv"), "--target", "label"],
            f"column 'f2' is numeric in {train} but not in {d / 'text_test.csv'} "
            "(row 4, line 6: 'tall')",
        ),
        "a column with no value": (
            [
                "--train",
                str(d / "empty_column.csv"),
                "--test",
                test,
                "--target",
                "label",
            ],
            "has no value in any row: leave it out with --drop f3",
        ),
        "missing value, bare model file": (
            [
                "--train",
                str(d / "missing_value.csv"),
                "--test",
                test,
                "--target",
                "label",
                "--model-file",
                str(d / "bare.joblib"),
                "--trust-pickle",
            ],
            "missing value (row 2, line 4)",
        ),
        "--drop of a column neither file has": (
            ["--train", train, "--test", test, "--target", "label", "--drop", "f9"],
            "--drop f9: neither",
        ),
        "--drop of the target": (
            ["--train", train, "--test", test, "--target", "label", "--drop", "label"],
            "that is the --target column",
        ),
        "--id-column that neither file has": (
            ["--train", train, "--test", test, "--target", "label"]
            + ["--id-column", "name"],
            "--id-column name: neither",
        ),
        "repeated ID": (
            ["--train", str(d / "repeated_id.csv"), "--test", test]
            + ["--target", "label", "--id-column", "id"],
            "repeats 'p3' (row 3, line 5 and row 9, line 11)",
        ),
        "--quiet and --verbose": (
            ["--train", train, "--test", test, "--target", "label"]
            + ["--quiet", "--verbose"],
            "either --quiet or --verbose",
        ),
        "non-numeric feature, bare model file": (
            [
                "--train",
                str(d / "text.csv"),
                "--test",
                test,
                "--target",
                "label",
                "--model-file",
                str(d / "bare.joblib"),
                "--trust-pickle",
            ],
            "A LogisticRegression that is not in a pipeline needs numeric",
        ),
        "empty file": (
            ["--train", str(d / "empty.csv"), "--test", test, "--target", "label"],
            "is empty",
        ),
        "empty test file": (
            ["--train", train, "--test", str(d / "empty.csv"), "--target", "label"],
            "is empty",
        ),
        "header only": (
            [
                "--train",
                str(d / "header_only.csv"),
                "--test",
                test,
                "--target",
                "label",
            ],
            "no data rows",
        ),
        "ragged row": (
            ["--train", str(d / "ragged.csv"), "--test", test, "--target", "label"],
            "line 6: 6 fields",
        ),
        "test file with another column": (
            [
                "--train",
                train,
                "--test",
                str(d / "extra_column.csv"),
                "--target",
                "label",
            ],
            "'f4'",
        ),
        "test file without a column": (
            [
                "--train",
                train,
                "--test",
                str(d / "missing_column.csv"),
                "--target",
                "label",
            ],
            "no column 'f3'",
        ),
        "no such file": (
            ["--train", str(d / "nope.csv"), "--test", test, "--target", "label"],
            "cannot read the training file",
        ),
        "one class": (
            ["--train", str(d / "one_class.csv"), "--test", test, "--target", "label"],
            "class",
        ),
        "unknown test label": (
            [
                "--train",
                train,
                "--test",
                str(d / "unknown_label.csv"),
                "--target",
                "label",
                "--test-labels",
            ],
            "does not know",
        ),
        "k too large": (
            ["--train", train, "--test", test, "--target", "label", "--k", "61"],
            "--k 61 is more than the 60 training examples of the "
            "LogisticRegression: pass --k 60 or less",
        ),
        "hessian for an SVM": (
            [
                "--train",
                train,
                "--test",
                test,
                "--target",
                "label",
                "--model",
                "svc",
                "--solver",
                "cg",
            ],
            "hessian, solver and damping do not apply",
        ),
        "model and model file": (
            [
                "--train",
                train,
                "--test",
                test,
                "--target",
                "label",
                "--model",
                "svc",
                "--model-file",
                str(d / "model.pkl"),
            ],
            "either --model",
        ),
        "not a pickle": (
            [
                "--train",
                train,
                "--test",
                test,
                "--target",
                "label",
                "--model-file",
                str(d / "model.pkl"),
                "--trust-pickle",
            ],
            "cannot load",
        ),
    }


CASES = [
    "missing target column",
    "text in a numeric column of the test file",
    "a column with no value",
    "non-numeric feature, bare model file",
    "missing value, bare model file",
    "--drop of a column neither file has",
    "--drop of the target",
    "--id-column that neither file has",
    "repeated ID",
    "--quiet and --verbose",
    "empty file",
    "empty test file",
    "header only",
    "ragged row",
    "test file with another column",
    "test file without a column",
    "no such file",
    "one class",
    "unknown test label",
    "k too large",
    "hessian for an SVM",
    "model and model file",
    "not a pickle",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_line_exit_2_nothing_written(files, capsys, case):
    args, message = _bad_inputs(files)[case]
    out = files["dir"] / "result.csv"
    out.write_text("before\n")  # an existing output is left as it was
    assert main(["explain", *args, "--output", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("skrelatif: error: ")
    assert captured.err.count("\n") == 1, captured.err
    assert message in captured.err
    assert out.read_text() == "before\n"
    assert [p.name for p in files["dir"].iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "case", ["missing target column", "text in a numeric column of the test file"]
)
def test_bad_input_as_a_subprocess(files, case):
    args, message = _bad_inputs(files)[case]
    out = files["dir"] / "result.json"
    done = _run(*args, "--output", out, check=False)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("skrelatif: error: ") and message in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not out.exists()


def test_fewer_columns_than_the_model_names_the_files_and_the_fix(files, capsys):
    joblib = pytest.importorskip("joblib")
    model = _fitted_pipeline(files)  # fitted on 4 features
    path = files["dir"] / "model.joblib"
    joblib.dump(model, path)
    train = _write_csv(
        files["dir"] / "train3.csv", files["X"][:, :3], files["y"], FEATURES[:3]
    )
    test = _write_csv(
        files["dir"] / "test3.csv", files["X_test"][:, :3], names=FEATURES[:3]
    )
    args = ["--train", str(train), "--test", str(test), "--target", "label"]
    model_args = ["--model-file", str(path), "--trust-pickle"]
    assert main(["explain", *args, *model_args]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"skrelatif: error: --train {train} and --test {test} have 3 feature columns, "
        f"but the model in {path} expects 4: the feature columns of the files must "
        "be those the model was trained on\n"
    )


def test_k_above_the_support_vectors_of_an_svc_says_so(files, capsys):
    model = _builtin(SVC()).fit(files["X"], files["y"])
    n_support = len(model[-1].support_)
    assert n_support < len(files["X"])  # so that --k can be in between
    k = n_support + 1
    args = ["--train", str(files["train"]), "--test", str(files["test"])]
    args += ["--target", "label", "--model", "svc"]
    assert main(["explain", *args, "--k", str(k)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"skrelatif: error: --k {k} is more than the {n_support} support vectors of "
        f"the SVC, the only training rows it can score: pass --k {n_support} or less\n"
    )
    assert main(["explain", *args, "--k", str(n_support), "--quiet"]) == 0


def test_closed_standard_output_is_not_a_traceback(files):
    # `skrelatif explain ... | head -1`: the reader leaves early.
    X_test = np.tile(files["X_test"], (60, 1))  # ~400 rows: more than a pipe holds
    test = _write_csv(files["dir"] / "long_test.csv", X_test)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skrelatif",
            "explain",
            "--train",
            str(files["train"]),
            "--test",
            str(test),
            "--target",
            "label",
            "--k",
            "10",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    assert process.stdout.readline().startswith(b"test_row,")
    process.stdout.close()
    err = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=300) == 1
    assert "Traceback" not in err and "BrokenPipe" not in err


@pytest.mark.parametrize("output", ["result.txt", "no_such_dir/result.csv"])
def test_bad_output_path_is_refused_before_any_work(files, capsys, output):
    status = main(
        [
            "explain",
            "--train",
            str(files["train"]),
            "--test",
            str(files["test"]),
            "--target",
            "label",
            "--output",
            str(files["dir"] / output),
        ]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("skrelatif: error: --output") and err.count("\n") == 1


def test_warnings_are_one_line_and_quiet_silences_them(files, capsys):
    # A model trained on other data than the training file gets a warning.
    joblib = pytest.importorskip("joblib")
    model = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-8))
    model.fit(files["X"][:30], files["y"][:30])
    path = files["dir"] / "other.joblib"
    joblib.dump(model, path)
    args = [
        "explain",
        "--train",
        str(files["train"]),
        "--test",
        str(files["test"]),
        "--target",
        "label",
        "--k",
        "1",
        "--model-file",
        str(path),
        "--trust-pickle",
    ]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.startswith("skrelatif: warning: ") and "minimum" in err
    assert all(line.startswith("skrelatif: warning: ") for line in err.splitlines())
    assert main([*args, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_progress_bar_draws_and_erases():
    stream = io.StringIO()
    bar = ProgressBar(10, stream=stream, enabled=True, delay=0.0, width=10)
    bar.update(0)
    bar.update(5)
    drawn = "explaining [#####     ]  5/10 test rows"
    assert stream.getvalue().endswith("\r" + drawn)
    bar.close()
    assert stream.getvalue().endswith("\r" + " " * len(drawn) + "\r")
    quiet = io.StringIO()
    off = ProgressBar(10, stream=quiet, enabled=False, delay=0.0)
    off.update(5)
    off.close()
    assert quiet.getvalue() == ""


# -- regression: --model ridge and regressors in model files ---------------------------
@pytest.fixture
def regression(tmp_path):
    """Whole-number numeric targets (like the diabetes data): they must be
    read as float targets, not class labels."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(47, 4))
    y = np.round(40 * X @ [1.0, -2.0, 0.5, 0.0] + 150 + 10 * rng.normal(size=47))
    X_train, y_train, X_test, y_test = X[:40], y[:40], X[40:], y[40:]
    return {
        "X": X_train,
        "y": y_train,
        "X_test": X_test,
        "y_test": y_test,
        "train": _write_csv(
            tmp_path / "train.csv", X_train, y_train.astype(int), target="y"
        ),
        "test": _write_csv(tmp_path / "test.csv", X_test),
        "test_labelled": _write_csv(
            tmp_path / "test_labelled.csv", X_test, y_test.astype(int), target="y"
        ),
        "dir": tmp_path,
    }


def test_model_ridge_explains_the_predictions_like_the_python_api(regression):
    out = regression["dir"] / "result.json"
    args = ["--train", regression["train"], "--test", regression["test"]]
    _run(*args, "--target", "y", "--model", "ridge", "--k", 3, "--output", out)
    records = _read_output(out)
    # numeric targets stay numeric: floats, not labels (the file has "151")
    assert all(isinstance(r["train_label"], float) for r in records)
    assert all(isinstance(r["target"], float) for r in records)
    model = _builtin(Ridge())
    ex = InfluenceExplainer(model).fit(regression["X"], regression["y"])
    e = ex.explain(regression["X_test"], k=3)
    model = ex.estimator_
    np.testing.assert_allclose(e.target, model.predict(regression["X_test"]))
    _check_against(records, e, regression["y"], 3)


def test_model_ridge_test_labels_explain_the_squared_error(regression, capsys):
    args = ["explain", "--train", str(regression["train"]), "--target", "y"]
    args += ["--test", str(regression["test_labelled"]), "--model", "ridge"]
    args += ["--method", "if", "--k", "2", "--test-labels", "--with-test-labels"]
    assert main(args) == 0
    records = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(records[0]) == [*COLUMNS, *TEST_TARGET_COLUMNS]
    model = _builtin(Ridge())
    ex = InfluenceExplainer(model, method="if").fit(regression["X"], regression["y"])
    y_test = regression["y_test"]
    e = ex.explain(regression["X_test"], y_test, k=2)
    np.testing.assert_array_equal(e.target, y_test)
    _check_against([{c: r[c] for c in COLUMNS} for r in records], e, regression["y"], 2)
    predicted = ex.estimator_.predict(regression["X_test"])
    for record in records:
        t = int(record["test_row"])
        assert float(record["test_label"]) == y_test[t]
        np.testing.assert_allclose(float(record["error"]), predicted[t] - y_test[t])
    # explaining the predictions, with the targets and errors alongside
    assert main([*args[:-2], "--with-test-labels"]) == 0
    records = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    atol = 1e-12 * np.abs(predicted).max()
    targets = [float(r["target"]) for r in records[::4]]
    np.testing.assert_allclose(targets, predicted, rtol=1e-12, atol=atol)


def test_model_ridge_refuses_a_non_numeric_target(files, capsys):
    # the classification fixture's labels are names ("ant", "bee", ...)
    args = ["--train", files["train"], "--test", files["test"], "--target", "label"]
    out = files["dir"] / "result.csv"
    done = _run(*args, "--model", "ridge", "--output", out, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"skrelatif: error: {files['train']}, row 0, line 2: the target column "
        f"'label' is not a number: {str(files['y'][0])!r}. --model ridge is a "
        "regressor and needs a numeric target (for class labels use --model logreg, "
        "svc, knn, hgb or forest)\n"
    )
    assert not out.exists()


def test_model_file_with_a_fitted_regressor(regression, capsys):
    import joblib

    sio = pytest.importorskip("skops.io")
    pipeline = make_pipeline(StandardScaler(), Ridge(alpha=3.0))
    pipeline.fit(regression["X"], regression["y"])
    skops_path = regression["dir"] / "ridge.skops"
    sio.dump(pipeline, skops_path)
    bare = Ridge(alpha=0.5).fit(regression["X"], regression["y"])
    pickle_path = regression["dir"] / "ridge.joblib"
    joblib.dump(bare, pickle_path)
    args = ["explain", "--train", str(regression["train"]), "--target", "y"]
    args += ["--test", str(regression["test"]), "--k", "2", "--method", "newton"]
    for model, extra in (
        (pipeline, ["--model-file", str(skops_path)]),
        (bare, ["--model-file", str(pickle_path), "--trust-pickle"]),
    ):
        assert main([*args, *extra]) == 0
        records = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        ex = InfluenceExplainer(model, method="newton")
        e = ex.fit(regression["X"], regression["y"]).explain(regression["X_test"], k=2)
        np.testing.assert_allclose(e.target, model.predict(regression["X_test"]))
        _check_against(records, e, regression["y"], 2)
    # a regressor in a model file needs a numeric target too
    bad = _write_csv(
        regression["dir"] / "bad.csv", regression["X"], np.array(["a"] * 40), target="y"
    )
    bad_args = ["explain", "--train", str(bad), "--target", "y"]
    bad_args += ["--test", str(regression["test"]), "--model-file", str(skops_path)]
    assert main(bad_args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"The Ridge in {skops_path} is a regressor and needs a numeric" in err


# -- k-neighbours: --model knn and knn-regressor ---------------------------------------
def test_model_knn_explains_like_the_python_api(files):
    out = files["dir"] / "result.json"
    args = ["--train", files["train"], "--test", files["test"], "--target", "label"]
    _run(*args, "--model", "knn", "--method", "newton", "--k", 3, "--output", out)
    model = _builtin(KNeighborsClassifier())
    ex = InfluenceExplainer(model, method="newton").fit(files["X"], files["y"])
    _check_against(_read_output(out), ex.explain(files["X_test"], k=3), files["y"], 3)


def test_model_knn_regressor_explains_the_predictions(regression):
    out = regression["dir"] / "result.json"
    args = ["--train", regression["train"], "--test", regression["test"]]
    _run(*args, "--target", "y", "--model", "knn-regressor", "--k", 3, "--output", out)
    model = _builtin(KNeighborsRegressor())
    ex = InfluenceExplainer(model).fit(regression["X"], regression["y"])
    _check_against(
        _read_output(out), ex.explain(regression["X_test"], k=3), regression["y"], 3
    )


def test_a_regressor_choice_names_the_classifiers(files):
    done = _run(
        "--train", files["train"], "--test", files["test"], "--target", "label",
        "--model", "knn-regressor", check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "--model knn-regressor is a regressor" in done.stderr
    assert "use --model logreg, svc, knn, hgb or forest)" in done.stderr


# -- trees: --model hgb and forest -----------------------------------------------------
@pytest.mark.parametrize(
    "choice, final, method",
    [
        ("hgb", HistGradientBoostingClassifier(random_state=0), "boostin"),
        (
            "forest",
            RandomForestClassifier(min_samples_leaf=5, random_state=0),
            "newton",
        ),
    ],
)
def test_model_trees_explain_like_the_python_api(files, choice, final, method):
    out = files["dir"] / "result.json"
    args = ["--train", files["train"], "--test", files["test"], "--target", "label"]
    _run(*args, "--model", choice, "--method", method, "--k", 3, "--output", out)
    ex = InfluenceExplainer(_builtin(final), method=method).fit(files["X"], files["y"])
    _check_against(_read_output(out), ex.explain(files["X_test"], k=3), files["y"], 3)


def test_model_file_skops_of_a_forest_with_its_tree_type_trusted(files, capsys):
    # skops does not trust scikit-learn's compiled Tree type by default: the
    # error names it, and --trust loads the forest, explained as the Python API
    sio = pytest.importorskip("skops.io")
    forest = RandomForestClassifier(n_estimators=5, min_samples_leaf=5, random_state=0)
    model = make_pipeline(StandardScaler(), forest).fit(files["X"], files["y"])
    path = files["dir"] / "forest.skops"
    sio.dump(model, path)
    out = files["dir"] / "result.csv"
    args = ["explain", "--train", str(files["train"]), "--test", str(files["test"])]
    args += ["--target", "label", "--model-file", str(path), "--output", str(out)]
    args += ["--method", "newton", "--k", "2"]
    if "sklearn.tree._tree.Tree" in sio.get_untrusted_types(file=path):
        assert main(args) == 2  # (older skops versions trust it)
        assert "--trust sklearn.tree._tree.Tree" in capsys.readouterr().err
    assert main([*args, "--trust", "sklearn.tree._tree.Tree"]) == 0
    ex = InfluenceExplainer(model, method="newton").fit(files["X"], files["y"])
    _check_against(_read_output(out), ex.explain(files["X_test"], k=2), files["y"], 2)

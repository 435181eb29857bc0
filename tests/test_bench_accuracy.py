"""``benchmarks/bench_accuracy.py --quick``: the table of
``doc/user_guide/accuracy.rst`` ("How accurate is each method?"), small.

Every figure in the table compares the explainer with real retraining
(leave-one-out, refits on random halves, refits without the top proponents),
so these checks are against an independent computation.
"""

import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _table(stdout):
    """Header and body rows (lists of cell texts) of the Markdown table."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return rows[0], rows[2:]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    rst = tmp_path_factory.mktemp("accuracy") / "table.rst"
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_accuracy.py", "--quick", "--rst", str(rst)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
        check=True,
    )
    header, rows = _table(done.stdout)
    # the family and data cells are written on a family's first row only
    table, family = {}, None
    for row in rows:
        if row[0]:
            family = (row[0], row[1].rsplit(" (", 1)[0])
        table.setdefault(family, []).append(dict(zip(header, row)))
    return header, table, rst.read_text()


def _row(rows, method, solver=None):
    return next(
        r
        for r in rows
        if r["method"] == method
        and (solver is None or r["curvature / solver"] == solver)
    )


@pytest.mark.slow
def test_quick_table_shape(quick):
    header, table, rst = quick
    assert header == [
        "family",
        "data (n_train)",
        "method",
        "curvature / solver",
        "LOO r",
        "LOO slope",
        "LDS",
        "removal @ 1%",
        "time (s)",
    ]
    assert list(table) == [
        ("LogisticRegression", "breast cancer (2 classes)"),
        ("LogisticRegression", "wine (3 classes)"),
        ("Ridge", "diabetes"),
        ("PoissonRegressor", "generated counts"),
    ]
    for rows in table.values():
        methods = [r["method"] for r in rows]
        assert methods == [
            "if",
            "theta-relatif",
            "l-relatif",
            "newton",
            "nearest neighbour",
            "random",
        ]
        for row in rows[:4]:
            assert -1.0 <= float(row["LOO r"]) <= 1.0
            assert -1.0 <= float(row["LDS"]) <= 1.0
            float(row["removal @ 1%"]), float(row["time (s)"])
        for row in rows[4:]:  # the baselines have a removal effect only
            assert row["LDS"] == row["LOO r"] == ""
            assert math.isfinite(float(row["removal @ 1%"]))
    # the rst table the docs include has the same rows
    csv_rows = [
        line
        for line in rst.splitlines()
        if line.startswith("   ") and not line.lstrip().startswith(":")
    ]
    assert len(csv_rows) == sum(len(rows) for rows in table.values())
    assert ":header: " in rst and "LDS subsets (alpha = 0.5)" in rst


@pytest.mark.slow
def test_exact_influence_predicts_retraining(quick):
    _, table, _ = quick
    cancer = table[("LogisticRegression", "breast cancer (2 classes)")]
    # exact "if" ranks the refits on random halves (issue 20's acceptance)
    assert float(_row(cancer, "if")["LDS"]) >= 0.9
    for family in table.values():
        first, newton = _row(family, "if"), _row(family, "newton")
        assert float(first["LOO r"]) >= 0.95
        # the group Newton step is what "newton" is built for
        assert float(newton["LDS"]) >= float(first["LDS"]) - 0.005
        # removing a point's top proponents raises its loss more than random
        assert float(first["removal @ 1%"]) > float(
            _row(family, "random")["removal @ 1%"]
        )
    # squared loss: the Newton step is the exact refit, one example or half
    ridge = _row(table[("Ridge", "diabetes")], "newton")
    assert ridge["LDS"] == "1.000" and ridge["LOO slope"] == "1.000"

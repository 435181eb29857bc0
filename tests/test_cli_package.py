"""The command line as a package: its entry point, and a quick ``--help``."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_console_script_entry_point_resolves_to_main():
    pyproject = (ROOT / "pyproject.toml").read_text()
    target = re.search(r'^skrelatif = "([\w.]+):(\w+)"$', pyproject, re.M)
    assert target is not None
    module = importlib.import_module(target.group(1))
    assert Path(module.__file__).name == "__init__.py"  # a package, not _cli.py
    assert callable(getattr(module, target.group(2)))


def test_each_module_of_the_cli_has_one_job():
    package = ROOT / "skrelatif" / "_cli"
    modules = {p.name: len(p.read_text().splitlines()) for p in package.glob("*.py")}
    assert {"_parser.py", "_csv.py", "_models.py", "_output.py"} <= set(modules)
    assert max(modules.values()) < 300, modules


def test_help_imports_neither_numpy_nor_scikit_learn():
    # What ``skrelatif --help`` loads: the package and the parser only.
    code = (
        "import sys, skrelatif._cli\n"
        "skrelatif._cli.build_parser().format_help()\n"
        "print(sorted(m for m in ('numpy', 'scipy', 'sklearn', 'skrelatif._explainer')"
        " if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_help_is_quick():
    # `python -X importtime` lists every import on stderr: "self | cumulative |
    # name", in microseconds, nested imports indented below their importer.
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "skrelatif", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert "explain" in done.stdout
    rows = [line.split("|") for line in done.stderr.splitlines() if "|" in line][1:]
    names = {name.strip() for _, _, name in rows}
    assert not names & {"numpy", "scipy", "sklearn", "skrelatif._explainer"}
    top_level = [int(cumulative) for _, cumulative, name in rows if name[1] != " "]
    assert sum(top_level) < 500_000  # microseconds: well under 0.5 s


def test_parser_choices_are_the_explainer_s():
    from skrelatif._adapters import METHODS
    from skrelatif._cli import _parser
    from skrelatif._curvature import CURVATURES
    from skrelatif._solvers import SOLVERS

    assert _parser.METHODS == tuple(METHODS)
    assert _parser.HESSIANS == ("auto", *CURVATURES)
    assert _parser.SOLVER_CHOICES == ("auto", *SOLVERS)


def test_public_names_are_still_importable():
    import skrelatif

    for name in skrelatif.__all__:
        assert getattr(skrelatif, name) is not None
    assert "InfluenceExplainer" in dir(skrelatif)


@pytest.mark.parametrize(
    "option, message",
    [
        (["--k", "0"], "argument --k: expected a positive integer, got 0"),
        (["--k", "x"], "argument --k: expected a positive integer, got 'x'"),
        (["--damping", "-1"], "argument --damping: expected a finite number >= 0"),
        (["--damping", "y"], "argument --damping: expected a number >= 0, got 'y'"),
        (["--damping", "inf"], "argument --damping: expected a finite number >= 0"),
    ],
)
def test_bad_numbers_are_usage_errors(capsys, option, message):
    from skrelatif._cli import build_parser

    args = ["explain", "--train", "a.csv", "--test", "b.csv", "--target", "y"]
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*args, *option])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err

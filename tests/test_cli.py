"""The command line and the README's promises."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from skrelatif._cli import main
from skrelatif._demo import run_demo

ROOT = Path(__file__).resolve().parents[1]


def test_demo_relatif_beats_if_on_digits(capsys):
    summary = run_demo(n_eval=100)
    printed = capsys.readouterr().out
    assert "proponents with the predicted label" in printed
    for method in ("theta-relatif", "l-relatif"):
        assert summary[method]["same_label"] > summary["if"]["same_label"]
        assert summary[method]["typicality"] < summary["if"]["typicality"]


@pytest.mark.slow
def test_python_dash_m_runs_the_demo():
    done = subprocess.run(
        [sys.executable, "-m", "skrelatif", "demo", "--k", "3", "--n-show", "2"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=True,
    )
    assert "Labels of the top 3 proponents of the first 2 test digits" in done.stdout


def test_main_returns_zero(capsys):
    assert main(["demo", "--n-show", "1"]) == 0
    assert "Done in" in capsys.readouterr().out


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"```bash\n# [^\n]*\n([^\n]+)\n```", readme)
    assert len(commands) >= 2 and "python -m skrelatif" in commands[0]
    assert "pytest" in commands[1]
    for command in commands[:2]:
        assert command in ci

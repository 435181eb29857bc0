"""The command line and the README's promises."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from skrelatif._cli import main
from skrelatif._demo import run_demo

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
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
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=True,
    )
    assert "Labels of the top 3 proponents of the first 2 test digits" in done.stdout


@pytest.mark.slow
def test_main_returns_zero_and_plot_writes_a_png(capsys, tmp_path, monkeypatch):
    # One demo run (the slow part) serves both checks; without matplotlib the
    # demo still runs and --plot is tested for its error below.
    drawn = []
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        plot = []
    else:
        plot = ["--plot", str(tmp_path / "grid.png")]
        # The grid is drawn by ExplanationGridDisplay, as in the gallery.
        from skrelatif import ExplanationGridDisplay

        original = ExplanationGridDisplay.plot

        def spy(self, **kwargs):
            drawn.append(self)
            return original(self, **kwargs)

        monkeypatch.setattr(ExplanationGridDisplay, "plot", spy)
    assert main(["demo", "--n-show", "2", "--k", "3", *plot]) == 0
    out = capsys.readouterr().out
    assert "Done in" in out
    if plot:
        from matplotlib.image import imread

        assert f"Saved the test digits and their top 3 proponents to {plot[1]}" in out
        image = imread(plot[1])
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 400
        (display,) = drawn
        names = ["IF", "theta-RelatIF", "l-RelatIF", "nearest neighbour"]
        assert display.method_names == names
        assert display.axes_.shape == (2, 1 + 4 * 3)
        assert not (ROOT / "skrelatif" / "_demo_plot.py").exists()


def test_plot_without_matplotlib_is_a_one_line_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert main(["demo", "--plot", str(tmp_path / "grid.png")]) == 2
    err = capsys.readouterr().err
    assert err == (
        'skrelatif: error: --plot needs matplotlib: pip install "skrelatif[plot]"\n'
    )
    assert not (tmp_path / "grid.png").exists()


@pytest.mark.parametrize("name", ["grid.nope", "missing/grid.png"])
def test_plot_path_is_checked_before_the_demo_runs(capsys, tmp_path, name):
    pytest.importorskip("matplotlib")
    assert main(["demo", "--plot", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skrelatif: error: --plot") and err.count("\n") == 1


def test_help_lists_both_commands():
    done = subprocess.run(
        [sys.executable, "-m", "skrelatif", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    assert "demo" in done.stdout and "explain" in done.stdout


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"```bash\n# [^\n]*\n([^\n]+)\n```", readme)
    assert len(commands) >= 2 and "python -m skrelatif" in commands[0]
    assert "pytest" in commands[1]
    for command in commands[:2]:
        assert command in ci
    # ... followed by how long each takes.
    after = readme.split(commands[1], 1)[1].split("```", 2)[1].split("\n\n")[1]
    assert re.search(r"demo .* \d+ seconds", after, re.S)
    assert re.search(r"test suite .* \d+(?:\.\d+)? minutes", after, re.S)


def test_docs_build_commands_are_what_ci_runs():
    install = (ROOT / "doc" / "install.rst").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    pip = 'pip install ".[docs]"'
    sphinx = "python -m sphinx -W -b html doc doc/_build/html"
    assert pip in install and sphinx in install
    assert f".venv/bin/{pip}" in ci and f".venv/bin/{sphinx}" in ci
    # ... and before the last pytest run, whose summary CI reads.
    assert ci.index(sphinx) < ci.rindex("-m pytest")

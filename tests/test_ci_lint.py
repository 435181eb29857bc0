"""CI lints with ruff: the same pinned version and commands as doc/install.rst."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_lints_with_the_ruff_that_the_docs_name():
    ci = (ROOT / ".ci" / "run").read_text()
    install = (ROOT / "doc" / "install.rst").read_text()
    pin = '"ruff==0.17.6"'
    assert f".venv/bin/pip install {pin}" in ci and f"pip install {pin}" in install
    for command in ("ruff check", "ruff format --check"):
        line = f"{command} skrelatif tests examples benchmarks doc"
        assert f".venv/bin/{line}" in ci and line in install
        assert ci.index(line) < ci.rindex("-m pytest")

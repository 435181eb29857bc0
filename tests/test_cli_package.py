"""The command line as a package: its entry point, and a quick ``--help``."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

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

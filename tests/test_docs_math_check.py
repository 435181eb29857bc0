"""``doc/check_math_rendered.py``, which CI runs on the built docs in Chromium:
its verdict on hand-made DOMs (the browser part runs in CI)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location(
    "check_math_rendered", ROOT / "doc" / "check_math_rendered.py"
)
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)

RENDERED = (
    '<p>loss <span class="math notranslate nohighlight"><mjx-container '
    'class="MathJax"><mjx-math>i</mjx-math></mjx-container></span></p>'
    '<div class="math notranslate nohighlight"><mjx-container display="true">'
    "<mjx-math>F</mjx-math></mjx-container></div>"
)


def test_a_rendered_page_passes():
    assert check.problems(RENDERED) == []


def test_raw_tex_and_a_cdn_script_fail():
    page = (
        '<script src="https://cdn.example/mathjax/tex-chtml.js"></script>'
        + RENDERED
        + r'<span class="math notranslate nohighlight">\(g_i\)</span>'
    )
    found = check.problems(page)
    assert any("1 of 3 math elements have no MathJax output" in p for p in found)
    assert any("raw TeX left in 1" in p for p in found)
    assert any("scripts from the network" in p for p in found)


def test_a_page_without_math_fails():
    assert check.problems("<p>no math</p>") != []


def test_ci_installs_chromium_and_runs_the_check_after_the_docs_build():
    ci = (ROOT / ".ci" / "run").read_text()
    build = ci.index("-m sphinx -W -b html doc doc/_build/html")
    assert "apt-get install -y chromium" in ci
    assert build < ci.index("doc/check_math_rendered.py") < ci.rindex("-m pytest")

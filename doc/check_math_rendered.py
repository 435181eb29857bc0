"""Check that the built documentation renders its math with no network.

Opens built pages in headless Chromium, lets MathJax run, and checks the
resulting DOM: every ``<span class="math">`` / ``<div class="math">`` that
Sphinx wrote holds MathJax's output (``mjx-container``) and no raw TeX
(``\\(`` or ``\\[``) is left, and the page loads no script from the network
(MathJax comes from ``_static/mathjax``, bundled by the ``sphinx-mathjax-offline``
extension). Run after the build, as ``.ci/run`` does::

    python doc/check_math_rendered.py [PAGE.html ...]

Without arguments it checks ``doc/_build/html/user_guide/influence.html``.
Exit status 0 when every page renders, 1 otherwise (with the reason), 2
without Chromium.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PAGES = [HERE / "_build" / "html" / "user_guide" / "influence.html"]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Run the page's scripts (MathJax) to completion before dumping the DOM.
    "--virtual-time-budget=20000",
)


class _MathNodes(HTMLParser):
    """Sphinx's math elements: whether each holds MathJax output, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[dict] = []  # {"rendered": bool, "text": str}
        self.remote_scripts: list[str] = []
        self._stack: list[tuple[str, dict | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        src = attributes.get("src") or ""
        if tag == "script" and src.startswith(("http:", "https:", "//")):
            self.remote_scripts.append(src)
        node = None
        if tag in ("span", "div") and "math" in (attributes.get("class") or "").split():
            node = {"rendered": False, "text": ""}
            self.nodes.append(node)
        elif tag == "mjx-container":
            for _, open_node in self._stack:
                if open_node is not None:
                    open_node["rendered"] = True
        self._stack.append((tag, node))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                del self._stack[i:]
                break

    def handle_data(self, data: str) -> None:
        for _, open_node in self._stack:
            if open_node is not None:
                open_node["text"] += data


def rendered_dom(page: Path, browser: str) -> str:
    """The DOM of ``page`` after its scripts ran, from headless Chromium."""
    done = subprocess.run(
        [browser, *FLAGS, "--dump-dom", page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    return done.stdout


def problems(dom: str) -> list[str]:
    """What is wrong with the math of a rendered page (empty: nothing)."""
    parser = _MathNodes()
    parser.feed(dom)
    found = []
    if not parser.nodes:
        found.append("no math elements: not a page with math, or not built by Sphinx")
    unrendered = [n for n in parser.nodes if not n["rendered"]]
    if unrendered:
        found.append(
            f"{len(unrendered)} of {len(parser.nodes)} math elements have no "
            f"MathJax output (mjx-container), e.g. {unrendered[0]['text'][:60]!r}"
        )
    raw = [n for n in parser.nodes if "\\(" in n["text"] or "\\[" in n["text"]]
    if raw:
        found.append(f"raw TeX left in {len(raw)} math elements")
    if parser.remote_scripts:
        found.append("scripts from the network: " + ", ".join(parser.remote_scripts))
    return found


def main(argv: list[str]) -> int:
    """Check each page of ``argv`` (default: the user guide's influence page)."""
    browser = next(filter(None, map(shutil.which, BROWSERS)), None)
    if browser is None:
        print(
            "check_math_rendered: no Chromium found (apt-get install chromium)",
            file=sys.stderr,
        )
        return 2
    status = 0
    for page in [Path(p) for p in argv] or DEFAULT_PAGES:
        if not page.is_file():
            print(f"{page}: no such page; build the docs first", file=sys.stderr)
            status = 1
            continue
        found = problems(rendered_dom(page, browser))
        for problem in found:
            print(f"{page}: {problem}", file=sys.stderr)
        if found:
            status = 1
        else:
            print(f"{page}: math rendered")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

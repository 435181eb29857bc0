"""Check that ``skrelatif explain --output report.html`` renders with no network.

Writes a small raw CSV pair (an ID column, a text column with HTML special
characters, missing values), runs the command to write a report, then:

1. reads the file: no ``<script>``, ``<link>``, ``<iframe>``, no ``src`` or
   ``href`` other than a ``data:`` URI or an ``#anchor``, no ``url(`` or
   ``@import`` in CSS, no ``http://`` or ``https://`` anywhere;
2. opens it in headless Chromium with every host name unresolvable and a
   NetLog, dumps the DOM and checks it: one section per test row, each with a
   table and an SVG bar chart, the index and self-influence tables, the text
   ``<b>`` shown as text (escaped), not as markup;
3. reads the NetLog: no request started by the page (Chromium's own
   background requests, whose initiator is "not an origin", are not the
   page's);
4. saves a screenshot (``--screenshot FILE.png``, to look at).

Run as ``.ci/run`` does::

    python doc/check_report_rendered.py [--screenshot report.png]

Exit status 0 when the report passes, 1 otherwise (with the reasons), 2
without Chromium.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    # Any host name fails to resolve: a request could not reach the network.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--virtual-time-budget=5000",
)
N_TRAIN, N_TEST, K = 40, 3, 3
#: Attributes that load a resource (or navigate) when not a data: URI.
_LOADING = {"src", "href", "srcset", "data", "action", "poster", "background"}


def write_data(folder: Path) -> tuple[Path, Path]:
    """A training and a test CSV: ID, two numeric columns with empty cells, a
    text column whose values include ``<b>Q&A</b>``, and a label."""
    cities = ["Lyon", "Oslo", "<b>Q&A</b>"]
    paths = []
    for name, n, start in (("train.csv", N_TRAIN, 0), ("test.csv", N_TEST, 500)):
        path = folder / name
        with open(path, "w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["id", "age", "fare", "city", "label"])
            for i in range(n):
                age = 20 + (7 * i + start) % 45
                fare = "" if i % 6 == 2 else f"{10 + (13 * i) % 37}.5"
                city = "" if i % 8 == 5 else cities[(i + start) % 3]
                label = "yes" if age + 10 * (city == "Lyon") > 42 else "no"
                writer.writerow([f"r{start + i}", age, fare, city, label])
        paths.append(path)
    return paths[0], paths[1]


class _Page(HTMLParser):
    """What a report page holds: tags, loading attributes, sections, text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.loading: list[str] = []
        self.sections: list[dict[str, int]] = []
        self.bold = 0
        self.style = ""
        self.text: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for name, value in attrs:
            value = (value or "").strip()
            if name in _LOADING and not value.startswith(("data:", "#")):
                self.loading.append(f"<{tag} {name}={value!r}>")
        if tag == "section":
            self.sections.append({"id": dict(attrs).get("id") or "", "table": 0})
        elif self.sections and tag in ("table", "svg", "rect"):
            self.sections[-1][tag] = self.sections[-1].get(tag, 0) + 1
        self.bold += tag == "b"
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data
        self.text.append(data)


def static_problems(html: str) -> list[str]:
    """What in the report's source could reach the network (empty: nothing)."""
    page = _Page()
    page.feed(html)
    found = []
    for tag in ("script", "link", "iframe", "object", "embed", "base"):
        if page.tags.get(tag):
            found.append(f"{page.tags[tag]} <{tag}> element(s)")
    if page.loading:
        found.append("resources that are not data: URIs: " + ", ".join(page.loading))
    if "url(" in page.style or "@import" in page.style:
        found.append("CSS that loads a resource (url( or @import)")
    if "http://" in html or "https://" in html:
        found.append("an http:// or https:// address in the page")
    return found


def dom_problems(dom: str, n_test: int) -> list[str]:
    """What is missing from the rendered DOM (empty: nothing)."""
    page = _Page()
    page.feed(dom)
    found = []
    ids = [s["id"] for s in page.sections]
    tests = [s for s in page.sections if s["id"].startswith("test-")]
    if "index" not in ids or "self-influence" not in ids:
        found.append(f"no index or self-influence section (sections: {ids})")
    if len(tests) != n_test:
        found.append(f"{len(tests)} test sections, expected {n_test}")
    for section in page.sections:
        if section.get("table", 0) != 1:
            found.append(f"section {section['id']!r} has no table")
    for section in [*tests, *(s for s in page.sections if s["id"] == "self-influence")]:
        if section.get("svg", 0) != 1 or section.get("rect", 0) < 2:
            found.append(f"section {section['id']!r} has no bar chart")
    if page.bold:
        found.append("<b> elements: a cell's text was not escaped")
    if "<b>Q&A</b>" not in "".join(page.text):
        found.append("the text '<b>Q&A</b>' is not shown")
    return found


def page_requests(netlog: dict) -> list[str]:
    """URLs requested by the page (not by the browser itself) in a NetLog."""
    types = {v: k for k, v in netlog["constants"]["logEventTypes"].items()}
    urls = []
    for event in netlog["events"]:
        params = event.get("params") or {}
        if types.get(event["type"]) != "URL_REQUEST_START_JOB" or "url" not in params:
            continue
        if params.get("initiator") == "not an origin":  # the browser's own
            continue
        if not params["url"].startswith(("file:", "data:")):
            urls.append(params["url"])
    return urls


def main(argv: list[str]) -> int:
    """Write a report, check it, and save a screenshot if asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", metavar="FILE.png")
    args = parser.parse_args(argv)
    browser = next(filter(None, map(shutil.which, BROWSERS)), None)
    if browser is None:
        print("check_report_rendered: no Chromium (apt-get install chromium)")
        return 2
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        train, test = write_data(folder)
        report = folder / "report.html"
        command = [sys.executable, "-m", "skrelatif", "explain", "--train", train]
        command += ["--test", test, "--target", "label", "--id-column", "id"]
        command += ["--k", str(K), "--with-test-labels", "--quiet", "--output", report]
        subprocess.run(list(map(str, command)), check=True, timeout=300)
        found = static_problems(report.read_text(encoding="utf-8"))
        netlog = folder / "netlog.json"
        flags = [*FLAGS, f"--user-data-dir={folder / 'profile'}"]
        done = subprocess.run(
            [browser, *flags, f"--log-net-log={netlog}", "--dump-dom", report.as_uri()],
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )
        found += dom_problems(done.stdout, N_TEST)
        requests = page_requests(json.loads(netlog.read_text()))
        if requests:
            found.append("requests made by the page: " + ", ".join(requests))
        if args.screenshot:
            shot = Path(args.screenshot).resolve()
            subprocess.run(
                [browser, *flags, "--window-size=1280,2000"]
                + [f"--screenshot={shot}", report.as_uri()],
                capture_output=True,
                timeout=180,
                check=True,
            )
            print(f"check_report_rendered: screenshot in {shot}")
    for problem in found:
        print(f"check_report_rendered: {problem}", file=sys.stderr)
    if not found:
        print(
            f"check_report_rendered: the report of {N_TEST} test rows renders "
            "(tables, SVG charts, escaped text) with no request by the page"
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``skrelatif explain --output report.html`` and its CI check.

The report is parsed with :mod:`html.parser` and its tables are checked
against an explainer fitted by hand on :func:`pandas.read_csv`'s reading of
the files; the checker ``doc/check_report_rendered.py`` is tested on
hand-made pages and NetLogs (and run in Chromium, when installed, as CI does).
"""

import csv
import importlib.util
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skrelatif import InfluenceExplainer
from skrelatif._cli import main

pd = pytest.importorskip("pandas")
ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location(
    "check_report_rendered", ROOT / "doc" / "check_report_rendered.py"
)
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)
NASTY = '<script>alert("x")</script> & co'
K = 2


class _Report(HTMLParser):
    """Sections, each with its heading, tables (rows of cell texts), SVG
    rectangles; and every attribute that names a resource."""

    def __init__(self):
        super().__init__()
        self.sections, self.urls, self.tags = [], [], set()
        self._cell = None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attrs = dict(attrs)
        for name in ("src", "href"):
            if name in attrs:
                self.urls.append(attrs[name])
        if tag == "section":
            self.sections.append(
                {"id": attrs["id"], "h2": "", "rows": [], "rects": 0, "svg": 0}
            )
        elif not self.sections:
            return
        elif tag == "tr":
            self.sections[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "h2":
            self._cell = ""
        elif tag in ("rect", "svg"):
            self.sections[-1]["rects" if tag == "rect" else "svg"] += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.sections[-1]["rows"][-1].append(self._cell)
            self._cell = None
        elif tag == "h2" and self._cell is not None:
            self.sections[-1]["h2"] = self._cell
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _write(path, frame):
    frame.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    rng = np.random.RandomState(3)
    n = 50
    frame = pd.DataFrame(
        {
            "id": [f"#{i}<{i}>" for i in range(n)],
            "size": np.round(rng.normal(10, 3, n), 2),
            "shop": rng.choice(["north", NASTY, "south"], n),
        }
    )
    frame.loc[[3, 17], "size"] = np.nan
    frame.loc[[8], "shop"] = np.nan
    bonus = (frame["shop"] == NASTY) * 3.0
    frame["kind"] = np.where(frame["size"].fillna(10) + bonus > 11, "big", "small")
    frame["price"] = 3 * frame["size"].fillna(10) + bonus + rng.normal(0, 1, n)
    train, test = frame.iloc[:44], frame.iloc[44:].drop(columns=["kind", "price"])
    return {
        "train": _write(d / "train.csv", train),
        "test": _write(d / "test.csv", test),
        "dir": d,
    }


def _by_hand(final):
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    text = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    return make_pipeline(
        ColumnTransformer([("numeric", numeric, ["size"]), ("text", text, ["shop"])]),
        final,
    )


def _report(files, capsys, *args):
    out = files["dir"] / "report.html"
    argv = ["explain", "--train", str(files["train"]), "--test", str(files["test"])]
    argv += ["--id-column", "id", "--k", str(K), "--output", str(out), *args]
    assert main(argv) == 0
    n_test = len(pd.read_csv(files["test"]))
    assert capsys.readouterr().err == (
        f"skrelatif: wrote the report of {n_test} test rows to {out}\n"
    )
    source = out.read_text(encoding="utf-8")
    parser = _Report()
    parser.feed(source)
    return source, parser


def _close(text, expected):
    """A score printed with 4 significant digits."""
    np.testing.assert_allclose(float(text), expected, rtol=6e-4, atol=1e-12)


def test_report_tables_charts_and_escaping(files, capsys):
    source, page = _report(files, capsys, "--target", "kind", "--drop", "price")
    train, test = pd.read_csv(files["train"]), pd.read_csv(files["test"])
    features = ["size", "shop"]
    ex = InfluenceExplainer(_by_hand(LogisticRegression(tol=1e-8, max_iter=1000)))
    ex.fit(train[features], train["kind"])
    e = ex.explain(test[features], k=K)
    # self-contained: nothing loaded, only in-page links
    assert not {"script", "link", "img", "iframe"} & page.tags
    assert all(url.startswith("#") for url in page.urls)
    assert "http://" not in source and "https://" not in source
    # escaped: the text is shown, never parsed as markup
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in source
    sections = {s["id"]: s for s in page.sections}
    assert list(sections) == ["index", "self-influence"] + [
        f"test-{t}" for t in range(len(test))
    ]
    index = sections["index"]["rows"][1:]
    assert [row[0] for row in index] == [f"id {i}" for i in test["id"]]
    for t in range(len(test)):
        section = sections[f"test-{t}"]
        assert section["h2"] == f"Test id {test['id'][t]}: predicted: {e.target[t]}"
        assert section["svg"] == 1 and section["rects"] == 2 * K
        header, first, *rows = section["rows"]
        assert header[:5] == ["", "rank", "training row", "kind", "score"]
        assert first[2] == f"id {test['id'][t]}"
        assert first[5:] == [f"{test['size'][t]:g}", test["shop"][t]]
        expected = [
            (kind, i, s)
            for kind, index_, scores in (
                ("proponent", e.proponents, e.proponent_scores),
                ("opponent", e.opponents, e.opponent_scores),
            )
            for i, s in zip(index_[t], scores[t])
        ]
        assert len(rows) == 2 * K
        for row, (kind, i, score) in zip(rows, expected):
            assert row[0] == kind and row[2] == f"id {train['id'][i]}"
            assert row[3] == train["kind"][i]
            _close(row[4], score)
            size = "\u2013" if np.isnan(train["size"][i]) else f"{train['size'][i]:g}"
            shop = "\u2013" if pd.isna(train["shop"][i]) else train["shop"][i]
            assert row[5:] == [size, shop]
    # the most influential training rows: self-influence, largest first
    influential = sections["self-influence"]
    top = np.argsort(-ex.self_influence_, kind="stable")[:10]
    assert influential["svg"] == 1 and influential["rects"] == 10
    rows = influential["rows"][1:]
    assert [row[1] for row in rows] == [f"id {train['id'][i]}" for i in top]
    for row, i in zip(rows, top):
        _close(row[3], ex.self_influence_[i])
        assert int(row[4]) == np.sum(e.proponents == i)
        assert int(row[5]) == np.sum(e.opponents == i)


def test_report_of_a_regressor_with_test_targets(files, capsys, tmp_path):
    # the test file with targets, for --with-test-labels
    frame = pd.read_csv(files["train"])
    test = frame.iloc[:4].drop(columns=["kind"])
    files = {**files, "test": _write(tmp_path / "test.csv", test), "dir": tmp_path}
    _, page = _report(
        files,
        capsys,
        "--target",
        "price",
        "--model",
        "ridge",
        "--drop",
        "kind",
        "--with-test-labels",
    )
    ex = InfluenceExplainer(_by_hand(Ridge())).fit(
        frame[["size", "shop"]], frame["price"]
    )
    predicted = ex.estimator_.predict(test[["size", "shop"]])
    for t, section in enumerate(s for s in page.sections if s["id"].startswith("test")):
        heading = section["h2"]
        assert heading.startswith(f"Test id {test['id'][t]}: prediction ")
        value = float(heading.split("prediction ")[1].split(" ")[0])
        _close(value, predicted[t])
        error = float(heading.split("error ")[1].rstrip(")"))
        _close(error, predicted[t] - test["price"][t])


def test_report_path_must_be_writable_before_any_work(files, capsys):
    argv = ["explain", "--train", str(files["train"]), "--test", str(files["test"])]
    argv += ["--target", "kind", "--output", str(files["dir"] / "nope" / "r.html")]
    assert main(argv) == 2
    assert "no directory" in capsys.readouterr().err


# -- the CI check --------------------------------------------------------------------
GOOD = (
    '<section id="index"><table><tr><td>a</td></tr></table></section>'
    '<section id="self-influence"><svg><rect/><rect/></svg><table></table></section>'
    '<section id="test-0"><svg><rect/><rect/></svg><table><tr><td>&lt;b&gt;Q&amp;A'
    "&lt;/b&gt;</td></tr></table></section>"
)


def test_checker_passes_a_good_page_and_names_what_is_wrong():
    assert check.static_problems(GOOD) == []
    assert check.dom_problems(GOOD, 1) == []
    bad = (
        '<link rel="stylesheet" href="https://cdn.example/x.css">'
        '<style>body { background: url(x.png) }</style><img src="//example.org/a.png">'
        + GOOD.replace("&lt;b&gt;Q&amp;A&lt;/b&gt;", "<b>Q&A</b>")
    )
    found = check.static_problems(bad)
    assert len(found) == 4  # a <link>, two resources, CSS url(, an https:// address
    assert "//example.org/a.png" in found[1] and "url(" in found[2]
    problems = check.dom_problems(bad.replace('<section id="test-0">', "<section>"), 1)
    assert "0 test sections, expected 1" in problems
    assert "<b> elements: a cell's text was not escaped" in problems


def test_checker_counts_the_page_s_requests_not_the_browser_s():
    types = {"URL_REQUEST_START_JOB": 7, "OTHER": 8}
    netlog = {
        "constants": {"logEventTypes": types},
        "events": [
            {
                "type": 7,
                "params": {
                    "url": "https://update.example",
                    "initiator": "not an origin",
                },
            },
            {
                "type": 7,
                "params": {"url": "file:///tmp/report.html", "initiator": "null"},
            },
            {
                "type": 7,
                "params": {"url": "https://cdn.example/a.css", "initiator": "null"},
            },
            {"type": 8, "params": {"url": "https://other.example"}},
        ],
    }
    assert check.page_requests(netlog) == ["https://cdn.example/a.css"]


def test_ci_runs_the_report_check_after_the_math_check():
    ci = (ROOT / ".ci" / "run").read_text()
    math = ci.index("doc/check_math_rendered.py")
    assert math < ci.index("doc/check_report_rendered.py") < ci.rindex("-m pytest")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Chromium")
def test_the_report_renders_in_chromium(tmp_path):
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "doc" / "check_report_rendered.py")]
        + ["--screenshot", str(shot)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "with no request by the page" in done.stdout
    assert shot.stat().st_size > 10_000

"""The HTML report of ``skrelatif explain --output report.html``.

One self-contained page: inline CSS, bar charts as inline SVG
(:mod:`skrelatif._cli._svg`), no script, font, stylesheet or image from
anywhere (a Content-Security-Policy forbids any), every cell escaped. It
shows, per test row, what is explained, its top proponents and opponents with
their feature values and scores, and a bar chart; and the training rows with
the largest self-influence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np

from ._csv import Table
from ._svg import NEGATIVE, POSITIVE, bar_chart

#: Feature columns shown in the tables (the first ones; the rest are counted).
MAX_FEATURES = 12
#: Training rows listed by self-influence.
N_INFLUENTIAL = 10
#: The methods' names, as the documentation writes them.
METHOD_NAMES = {
    "if": "IF (influence function)",
    "theta-relatif": "\u03b8-RelatIF",
    "l-relatif": "\u2113-RelatIF",
    "newton": "Newton (second order)",
    "boostin": "BoostIn",
}
_STYLE = f"""
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em;
  padding: 0 1em; color: #222; }}
h1 {{ font-size: 1.5em; }} h2 {{ font-size: 1.2em; margin-top: 2em;
  border-bottom: 1px solid #ccc; }}
.facts {{ color: #444; }}
.scroll {{ overflow-x: auto; }}
table {{ border-collapse: collapse; margin: .6em 0; font-size: .9em; }}
th, td {{ border: 1px solid #ddd; padding: .2em .5em; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.test td {{ background: #f3f3f3; font-weight: 600; }}
tr.proponent td.kind {{ color: {POSITIVE}; }}
tr.opponent td.kind {{ color: {NEGATIVE}; }}
svg.bars text {{ font: 12px system-ui, sans-serif; fill: #222; }}
svg.bars text.value {{ fill: #555; }}
"""
_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _number(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return str(value.item() if isinstance(value, np.generic) else value)


@dataclass
class Report:
    """What the report shows (see :func:`render`).

    ``train_names`` and ``test_names`` name each row (its ID or ``row 3``);
    ``facts`` are (name, value) pairs printed under the title;
    ``test_labels``/``predictions`` are given with ``--with-test-labels``.
    """

    explanation: Any
    self_influence: np.ndarray
    train: Table
    test: Table
    features: list[str]
    target_column: str
    train_labels: np.ndarray
    train_names: list[str]
    test_names: list[str]
    facts: list[tuple[str, str]]
    regressor: bool
    test_labels_explained: bool
    test_labels: Sequence[Any] | None = None
    predictions: Sequence[Any] | None = None


def _cells(table: Table, row: int, features: list[str]) -> str:
    cells = []
    for name in features[:MAX_FEATURES]:
        text = table.columns[name][row].strip() if name in table.columns else ""
        cells.append(f"<td>{_e(text) if text else '&ndash;'}</td>")
    return "".join(cells)


def _header(report: Report, first: list[str]) -> str:
    names = [*first, *report.features[:MAX_FEATURES]]
    return "<tr>" + "".join(f"<th>{_e(n)}</th>" for n in names) + "</tr>"


def _what(report: Report, t: int) -> str:
    """What is explained for test row ``t``, in words."""
    target = _number(report.explanation.target[t])
    if report.regressor:
        text = (
            f"squared error at the target {target}"
            if report.test_labels_explained
            else f"prediction {target}"
        )
    else:
        text = f"{'label' if report.test_labels_explained else 'predicted'}: {target}"
    if report.test_labels is not None and report.predictions is not None:
        label, predicted = report.test_labels[t], report.predictions[t]
        if report.regressor:
            error = _number(float(predicted) - float(label))
            text += (
                f" (prediction {_number(predicted)}, error {error})"
                if report.test_labels_explained
                else f" (true: {_number(label)}, error {error})"
            )
        elif report.test_labels_explained:
            text += f" (the model predicts {_number(predicted)})"
        else:
            text += f" (true: {_number(label)})"
    return text


def _test_section(report: Report, t: int) -> str:
    e = report.explanation
    rows = [
        f'<tr class="test"><td>test row</td><td></td><td>{_e(report.test_names[t])}'
        f"</td><td>{_e(_number(e.target[t]))}</td><td></td>"
        f"{_cells(report.test, t, report.features)}</tr>"
    ]
    labels, values = [], []
    for kind, index, scores in (
        ("proponent", e.proponents, e.proponent_scores),
        ("opponent", e.opponents, e.opponent_scores),
    ):
        for rank, (i, score) in enumerate(zip(index[t], scores[t]), start=1):
            label = _number(report.train_labels[i])
            rows.append(
                f'<tr class="{kind}"><td class="kind">{kind}</td>'
                f'<td class="num">{rank}</td><td>{_e(report.train_names[i])}</td>'
                f'<td>{_e(label)}</td><td class="num">{_e(_number(score))}</td>'
                f"{_cells(report.train, i, report.features)}</tr>"
            )
            labels.append(f"{kind[0].upper()}{rank} {report.train_names[i]} ({label})")
            values.append(score)
    header = _header(
        report, ["", "rank", "training row", report.target_column, "score"]
    )
    name = report.test_names[t]
    return (
        f'<section id="test-{t}"><h2>Test {_e(name)}: {_e(_what(report, t))}</h2>'
        + bar_chart(labels, values, title=f"scores for test {name}")
        + f'<div class="scroll"><table>{header}{"".join(rows)}</table></div></section>'
    )


def _index(report: Report) -> str:
    e = report.explanation
    rows = "".join(
        f'<tr><td><a href="#test-{t}">{_e(report.test_names[t])}</a></td>'
        f"<td>{_e(_what(report, t))}</td>"
        f"<td>{_e(report.train_names[e.proponents[t, 0]])}</td>"
        f'<td class="num">{_e(_number(e.proponent_scores[t, 0]))}</td>'
        f"<td>{_e(report.train_names[e.opponents[t, 0]])}</td>"
        f'<td class="num">{_e(_number(e.opponent_scores[t, 0]))}</td></tr>'
        for t in range(len(e.target))
    )
    head = ["test row", "explained", "top proponent", "score", "top opponent", "score"]
    header = "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
    return (
        '<section id="index"><h2>Test rows</h2><div class="scroll">'
        f"<table>{header}{rows}</table></div></section>"
    )


def _influential(report: Report) -> str:
    e, influence = report.explanation, report.self_influence
    top = np.argsort(-influence, kind="stable")[:N_INFLUENTIAL]
    n_train = len(influence)
    as_proponent = np.bincount(e.proponents.ravel(), minlength=n_train)
    as_opponent = np.bincount(e.opponents.ravel(), minlength=n_train)
    rows = "".join(
        f'<tr><td class="num">{rank}</td><td>{_e(report.train_names[i])}</td>'
        f"<td>{_e(_number(report.train_labels[i]))}</td>"
        f'<td class="num">{_e(_number(influence[i]))}</td>'
        f'<td class="num">{as_proponent[i]}</td><td class="num">{as_opponent[i]}</td>'
        f"{_cells(report.train, i, report.features)}</tr>"
        for rank, i in enumerate(top, start=1)
    )
    first = ["rank", "training row", report.target_column, "self-influence"]
    header = _header(report, [*first, "proponent of", "opponent of"])
    labels = [
        f"{report.train_names[i]} ({_number(report.train_labels[i])})" for i in top
    ]
    return (
        '<section id="self-influence"><h2>The most influential training rows</h2>'
        f"<p>The {len(top)} of {n_train} training rows with the largest "
        "self-influence: how much a row's own loss would rise if it were removed "
        "from the training set, as the explainer's self_influence_ estimates "
        "it (for an SVM: K(x, x) for a support vector, 0 for the other rows). "
        "Large for outliers and for mislabelled rows, worth checking first. "
        "The last two columns count the test rows above for which it is a top "
        "proponent or opponent.</p>"
        + bar_chart(labels, influence[top], title="self-influence")
        + f'<div class="scroll"><table>{header}{rows}</table></div></section>'
    )


def render(report: Report) -> str:
    """The report as one HTML page (a string), with no external resource.

    Parameters
    ----------
    report : Report
        What the page shows.

    Returns
    -------
    page : str
        The page: an index of the test rows, the most self-influential
        training rows, then one section per test row (a bar chart, a table).

    Examples
    --------
    >>> from pathlib import Path
    >>> from skrelatif import Explanation
    >>> train = Table(Path("train.csv"), ["x"], [["1"], ["<2>"]], [2, 3])
    >>> test = Table(Path("test.csv"), ["x"], [["3"]], [2])
    >>> e = Explanation(
    ...     proponents=np.array([[0]]), proponent_scores=np.array([[0.5]]),
    ...     opponents=np.array([[1]]), opponent_scores=np.array([[-0.2]]),
    ...     target=np.array(["a"]), method="if",
    ... )
    >>> page = render(Report(
    ...     e, np.array([0.1, 0.3]), train, test, ["x"], "y", np.array(["a", "b"]),
    ...     ["row 0", "row 1"], ["row 0"], [("k", "1")], False, False,
    ... ))
    >>> page.count("<table>"), page.count("<svg"), "&lt;2&gt;" in page
    (3, 2, True)
    """
    facts = "".join(f"<li>{_e(n)}: {_e(v)}</li>" for n, v in report.facts)
    hidden = len(report.features) - MAX_FEATURES
    note = (
        f" The tables show the first {MAX_FEATURES} feature columns of "
        f"{len(report.features)}."
        if hidden > 0
        else ""
    )
    sign = (
        "pushes the prediction up (removing it and refitting would lower it)"
        if report.regressor and not report.test_labels_explained
        else "supports what is explained (removing it would raise the test loss)"
    )
    sections = "".join(_test_section(report, t) for t in range(len(report.test_names)))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>skrelatif: {_e(report.test.path.name)} explained</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>Explanations of {_e(report.test.path.name)} by the rows of "
        f"{_e(report.train.path.name)}</h1>"
        f'<ul class="facts">{facts}</ul>'
        "<p>For each test row: its top proponents (blue: positive score, the "
        f"training row {sign}) and opponents (orange: negative score), strongest "
        f"first, with their feature values.{note}</p>"
        + _index(report)
        + _influential(report)
        + sections
        + "</body></html>\n"
    )

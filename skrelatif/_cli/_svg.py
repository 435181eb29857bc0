"""Horizontal bar charts as inline SVG, for the HTML report.

Drawn by hand (rectangles and text), so that the report needs no plotting
library and no network: every text is escaped, sizes are in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

#: Bar colours: support (proponents) and opposition (opponents).
POSITIVE, NEGATIVE = "#1f77b4", "#d95f02"
_ROW, _LABEL, _VALUE, _CHART = 22, 230, 70, 360


def _short(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str) -> str:
    """An ``<svg>`` element: one bar per value, labelled, positive values to
    the right of the zero line in :data:`POSITIVE`, negative ones to the left
    in :data:`NEGATIVE`, each with its value printed beside it.

    Parameters
    ----------
    labels : sequence of str
        The label of each bar, left of the chart.
    values : sequence of float
        The bar lengths.
    title : str
        The chart's accessible name (``<title>``).

    Returns
    -------
    svg : str
        The element, to put inline in an HTML page.

    Examples
    --------
    >>> svg = bar_chart(["row 3", "row <7>"], [0.5, -0.25], title="scores")
    >>> svg.count("<rect"), "row &lt;7&gt;" in svg
    (2, True)
    """
    values = [float(v) for v in values]
    largest = max((abs(v) for v in values), default=0.0) or 1.0
    has_negative = any(v < 0 for v in values)
    has_positive = any(v > 0 for v in values)
    # The zero line: centred when there are bars on both sides.
    if has_negative and has_positive:
        zero, half = _LABEL + _VALUE + _CHART / 2, _CHART / 2
    elif has_negative:
        zero, half = _LABEL + _VALUE + _CHART, _CHART
    else:
        zero, half = _LABEL + _VALUE, _CHART
    width = _LABEL + 2 * _VALUE + _CHART
    height = _ROW * len(values) + 8
    parts = [
        f'<svg role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" class="bars">',
        f"<title>{escape(title)}</title>",
    ]
    for row, (label, value) in enumerate(zip(labels, values)):
        y = 4 + row * _ROW
        length = abs(value) / largest * half
        x = zero if value >= 0 else zero - length
        colour = POSITIVE if value >= 0 else NEGATIVE
        middle = y + _ROW / 2 + 4
        parts.append(
            f'<text x="{_LABEL - 6}" y="{middle:.1f}" text-anchor="end">'
            f"{escape(_short(str(label)))}</text>"
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{y + 3}" width="{max(length, 0.5):.1f}" '
            f'height="{_ROW - 6}" fill="{colour}"/>'
        )
        anchor, at = ("start", x + length + 4) if value >= 0 else ("end", x - 4)
        parts.append(
            f'<text x="{at:.1f}" y="{middle:.1f}" text-anchor="{anchor}" '
            f'class="value">{escape(f"{value:.4g}")}</text>'
        )
    parts.append(
        f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="2" y2="{height - 2}" '
        'stroke="#444" stroke-width="1"/>'
    )
    parts.append("</svg>")
    return "".join(parts)

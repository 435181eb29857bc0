"""The explanations of tabular (or any) data: the scores of the proponents and
opponents of test points as bars, each labelled with its training row
(:class:`ExplanationBarDisplay`).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from .._explanation import Explanation, _python, method_name
from ._common import (
    OPPONENT_COLOR,
    PROPONENT_COLOR,
    _are_classes,
    _test_caption,
    check_matplotlib_support,
)


def _value_text(value: Any, width: int = 30) -> str:
    """A feature value in a label: 3 significant digits, or a string cut to
    ``width`` characters (texts can be long)."""
    if isinstance(value, Real) and not isinstance(value, bool):
        return f"{float(value):.3g}"
    text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _rows(X: Any, index: np.ndarray) -> Any:
    """Rows ``index`` (positions) of an array, a sparse matrix or a DataFrame."""
    if hasattr(X, "iloc"):
        return X.iloc[index]
    rows = X[index]
    return rows.toarray() if hasattr(rows, "toarray") else np.asarray(rows)


class ExplanationBarDisplay:
    """Scores of the proponents and opponents of test points, as bars.

    One Axes per test point: at the top the test point (the label explained,
    and its feature values when given), then a horizontal bar per training
    row, proponents (positive scores, strongest first) then opponents (most
    negative last), each labelled with the row (its label in the training
    DataFrame, or its position), its training label and its feature values,
    so that the rows read as a table next to their scores.

    It is recommended to build the display with :meth:`from_explanation` (or
    :meth:`Explanation.plot <skrelatif.Explanation.plot>`); all parameters are
    stored as attributes.

    Parameters
    ----------
    scores : ndarray of shape (n_test, n_bars)
        The scores, top bar first.
    row_texts : ndarray of str, shape (n_test, n_bars)
        The label of each bar.
    proponent : ndarray of bool, shape (n_test, n_bars)
        Which bars are proponents (the others are opponents).
    test_texts : list of str, default=None
        The label of each test point, on a row of its own above the bars.
    xlabel : str, default="score"
        The label of the score axis.

    Attributes
    ----------
    figure_ : matplotlib Figure
        The figure drawn on (set by :meth:`plot`).
    axes_ : ndarray of matplotlib Axes, shape (n_test,)
        One Axes per test point.
    bars_ : list of matplotlib BarContainer
        The bars of each test point, top bar first.
    legend_ : matplotlib Legend
        Which colour is which kind.

    See Also
    --------
    ExplanationGridDisplay : The proponents of image data, as images.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_wine
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skrelatif import ExplanationBarDisplay, InfluenceExplainer
    >>> X, y = load_wine(return_X_y=True, as_frame=True)
    >>> model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    >>> e = InfluenceExplainer(model).fit(X, y).explain(X.iloc[:2], k=2)
    >>> display = ExplanationBarDisplay.from_explanation(e, X, max_features=2)
    >>> display.axes_.shape
    (2,)
    """

    def __init__(
        self,
        scores: np.ndarray,
        row_texts: np.ndarray,
        proponent: np.ndarray,
        *,
        test_texts: list[str] | None = None,
        xlabel: str = "score",
    ) -> None:
        self.scores = scores
        self.row_texts = row_texts
        self.proponent = proponent
        self.test_texts = test_texts
        self.xlabel = xlabel
        shapes = {np.shape(scores), np.shape(row_texts), np.shape(proponent)}
        if len(shapes) != 1 or len(np.shape(scores)) != 2:
            raise ValueError(
                "scores, row_texts and proponent must have the same shape "
                f"(n_test, n_bars); got {sorted(shapes)}."
            )
        if test_texts is not None and len(test_texts) != np.shape(scores)[0]:
            raise ValueError(
                f"Give one test text per test point ({np.shape(scores)[0]}); got "
                f"{len(test_texts)}."
            )

    def plot(
        self,
        *,
        ax: Any = None,
        proponent_color: str = PROPONENT_COLOR,
        opponent_color: str = OPPONENT_COLOR,
    ) -> ExplanationBarDisplay:
        """Draw the bars.

        Parameters
        ----------
        ax : matplotlib Axes or array of Axes, default=None
            ``None``: a new figure; else one Axes per test point.
        proponent_color : str, default="#009E73"
            Colour of the proponents' bars (bluish green).
        opponent_color : str, default="#D55E00"
            Colour of the opponents' bars (vermillion).

        Returns
        -------
        display : ExplanationBarDisplay
            With ``figure_``, ``axes_``, ``bars_`` and ``legend_``.
        """
        check_matplotlib_support("ExplanationBarDisplay.plot")
        from matplotlib.patches import Patch

        scores = np.asarray(self.scores, dtype=float)
        n_test, n_bars = scores.shape
        if ax is None:
            import matplotlib.pyplot as plt

            texts = [str(t) for t in np.ravel(self.row_texts)]
            texts += [str(t) for t in self.test_texts or []]
            lines = max(t.count("\n") + 1 for t in texts)
            chars = max(len(line) for t in texts for line in t.split("\n"))
            rows = n_bars + (self.test_texts is not None)
            height = n_test * (0.2 * lines * rows + 0.6) + 0.2
            # the labels (about 0.07 inch a character) and 3 inches of bars
            width = min(max(6.0, 0.07 * chars + 3.0), 16.0)
            figure, axes = plt.subplots(
                n_test, 1, figsize=(width, height), layout="constrained", squeeze=False
            )
            axes = axes[:, 0]
        else:
            axes = np.ravel(np.asarray(ax, dtype=object))
            if axes.size != n_test:
                raise ValueError(
                    f"ax must hold one Axes per test point ({n_test}); got {axes.size}."
                )
            figure = axes[0].figure
        first = int(self.test_texts is not None)  # the test point's row
        positions = np.arange(first, first + n_bars)
        self.bars_ = []
        for t, a in enumerate(axes):
            colors = np.where(self.proponent[t], proponent_color, opponent_color)
            self.bars_.append(a.barh(positions, scores[t], color=colors))
            ticks = [str(text) for text in self.row_texts[t]]
            if first:
                ticks = [str(self.test_texts[t]), *ticks]
            a.set_yticks(np.arange(first + n_bars), ticks)
            if first:
                a.get_yticklabels()[0].set_fontweight("bold")
                a.axhline(0.5, color="0.6", linewidth=0.8)
            a.set_ylim(first + n_bars - 0.5, -0.5)  # top row first
            a.axvline(0.0, color="0.3", linewidth=0.8)
            a.set_xlabel(self.xlabel)
        handles = [
            Patch(color=proponent_color, label="proponent"),
            Patch(color=opponent_color, label="opponent"),
        ]
        # proponents go right from the top, opponents left at the bottom:
        # the lower right is free
        self.legend_ = axes[0].legend(handles=handles, loc="lower right")
        self.figure_ = figure
        self.axes_ = axes
        return self

    @classmethod
    def from_explanation(
        cls,
        explanation: Explanation,
        X_train: Any,
        *,
        X: Any = None,
        y_true: Any = None,
        k: int | None = None,
        feature_names: Sequence[str] | None = None,
        max_features: int = 3,
        ax: Any = None,
        **plot_kwargs: Any,
    ) -> ExplanationBarDisplay:
        """Draw the scores of an explanation's proponents and opponents.

        Parameters
        ----------
        explanation : Explanation
            What to draw (index it first, ``e[:3]``, for fewer test points).
        X_train : {array-like, sparse matrix, DataFrame} of shape (n_train, n_features)
            The training data given to ``fit``; its rows' feature values
            label the bars.
        X : array-like of shape (n_test, n_features), default=None
            The explained points: their feature values go on the top row.
        y_true : array-like of shape (n_test,), default=None
            Their true labels, on the top row ("true: ...").
        k : int, default=None
            Proponents and opponents drawn per test point (``None``: all).
        feature_names : list of str, default=None
            The names of the features (``None``: the DataFrame's columns, or
            ``x0, x1, ...``).
        max_features : int, default=3
            How many feature values each label shows (the first ones, then
            "...").
        ax : matplotlib Axes or array of Axes, default=None
            See :meth:`plot`.
        **plot_kwargs
            Passed to :meth:`plot`.

        Returns
        -------
        display : ExplanationBarDisplay
            The display, drawn.
        """
        check_matplotlib_support(f"{cls.__name__}.from_explanation")
        if not isinstance(explanation, Explanation):
            raise TypeError(
                f"Expected a skrelatif.Explanation; got {type(explanation).__name__}."
            )
        e = explanation
        available = e.proponents.shape[1]
        k = available if k is None else k
        if (
            isinstance(k, bool)
            or not isinstance(k, Integral)
            or not 1 <= k <= available
        ):
            raise ValueError(
                f"k must be an integer between 1 and {available}; got {k}."
            )
        n_train = (
            np.shape(X_train)[0] if not hasattr(X_train, "shape") else X_train.shape[0]
        )
        expected = _n_train(e)
        if expected is not None and n_train != expected:
            raise ValueError(
                f"X_train has {n_train} rows but the explainer was fitted on "
                f"{expected}: pass the X given to fit."
            )
        if X is not None and np.shape(X)[0] != len(e):
            raise ValueError(
                f"X has {np.shape(X)[0]} rows but the explanation explains {len(e)} "
                "test points: pass the X given to explain."
            )
        if e.train_row_labels is not None and hasattr(X_train, "index"):
            if not X_train.index.equals(e.train_row_labels):
                raise ValueError(
                    "X_train's index is not that of the X given to fit: pass the "
                    "same DataFrame (positions and labels must match)."
                )
        if feature_names is None:
            if hasattr(X_train, "columns"):
                feature_names = [str(c) for c in X_train.columns]
            elif len(np.shape(X_train)) == 1:  # e.g. texts, for a pipeline
                feature_names = [str(getattr(X_train, "name", None) or "x")]
            else:
                feature_names = [f"x{j}" for j in range(np.shape(X_train)[1])]
        # top bar first: proponents strongest first, then opponents, the most
        # negative last
        index = np.hstack([e.proponents[:, :k], e.opponents[:, :k][:, ::-1]])
        scores = np.hstack(
            [e.proponent_scores[:, :k], e.opponent_scores[:, :k][:, ::-1]]
        )
        proponent = np.zeros(index.shape, dtype=bool)
        proponent[:, :k] = True
        texts = np.empty(index.shape, dtype=object)
        values = _feature_rows(X_train, index.ravel(), max_features)
        for (t, j), row in zip(np.ndindex(index.shape), values):
            i = index[t, j]
            name = e._row_name(i)
            if e.train_target is not None:
                name += f" (label {_value_text(_python(e.train_target[i]))})"
            texts[t, j] = name + "\n" + _features_text(row, feature_names, max_features)
        test_texts = []
        test_values = (
            None if X is None else _feature_rows(X, np.arange(len(e)), max_features)
        )
        classes = _are_classes(np.asarray(e.target))
        for t in range(len(e)):
            caption = _test_caption(
                e.target[t],
                classes,
                given=e.target_given,
                true=None if y_true is None else np.asarray(y_true)[t],
            ).replace("\n", ", ")
            text = f"test {t} ({caption})"
            if test_values is not None:
                text += "\n" + _features_text(
                    test_values[t], feature_names, max_features
                )
            test_texts.append(text)
        display = cls(
            scores,
            texts,
            proponent,
            test_texts=test_texts,
            xlabel=f"{method_name(e.method)} score",
        )
        return display.plot(ax=ax, **plot_kwargs)


def _n_train(e: Explanation) -> int | None:
    if e.train_row_labels is not None:
        return len(e.train_row_labels)
    if e.train_target is not None:
        return len(e.train_target)
    return None


def _feature_rows(X: Any, index: np.ndarray, max_features: int) -> list[list[Any]]:
    """The first ``max_features + 1`` feature values of rows ``index``."""
    if hasattr(X, "iloc"):
        frame = X.iloc[index, : max_features + 1] if X.ndim == 2 else X.iloc[index]
        if X.ndim == 1:
            return [[_python(v)] for v in frame.to_numpy()]
        return [[_python(v) for v in row] for row in frame.itertuples(index=False)]
    rows = _rows(X, index)
    rows = np.asarray(rows)
    if rows.ndim == 1:
        rows = rows[:, None]
    return [[_python(v) for v in row[: max_features + 1]] for row in rows]


def _features_text(row: list[Any], names: Sequence[str], max_features: int) -> str:
    shown = [
        f"{name}={_value_text(value)}" for name, value in zip(names, row[:max_features])
    ]
    more = len(names) > max_features
    return ", ".join(shown) + (", ..." if more else "")

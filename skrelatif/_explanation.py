"""The result of an explanation: :class:`Explanation`."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from numbers import Integral
from typing import Any

import numpy as np

#: The columns of :meth:`Explanation.to_records` and :meth:`Explanation.to_frame`.
COLUMNS = (
    "test_index",
    "target",
    "kind",
    "rank",
    "train_index",
    "train_target",
    "score",
)

#: How the documentation, the reprs and the plots name each ``method``.
METHOD_NAMES = {
    "if": "IF",
    "theta-relatif": "theta-RelatIF",
    "l-relatif": "l-RelatIF",
    "newton": "Newton",
    "boostin": "BoostIn",
    "nearest-neighbor": "nearest neighbour",
}

# What the repr shows at most: test points, and proponents/opponents of each.
_REPR_ROWS = 5
_REPR_K = 3


def method_name(method: str) -> str:
    """The name of ``method`` in the documentation and the plots.

    Examples
    --------
    >>> from skrelatif._explanation import method_name
    >>> method_name("l-relatif"), method_name("theta-relatif")
    ('l-RelatIF', 'theta-RelatIF')
    """
    return METHOD_NAMES.get(method, method)


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _score_text(score: float) -> str:
    return f"{score:+.3g}"


@dataclass(repr=False)
class Explanation:
    """Top-k training examples for each explained test point.

    Index it like a list of test points (``e[0]``, ``e[-1]``, ``e[1:3]``, an
    array of positions or a boolean mask): the result is an
    :class:`Explanation` of those test points. Its repr shows the first test
    points as a small table, with the training rows' labels when known.

    Attributes
    ----------
    proponents : ndarray of shape (n_test, k)
        Training indices (positions, ``0 .. n_train - 1``) with the largest
        scores (they support ``target``), strongest first; ties go to the
        smaller index.
    proponent_scores : ndarray of shape (n_test, k)
    opponents : ndarray of shape (n_test, k)
        Training indices with the most negative scores, most negative first.
        Proponents and opponents are the top and bottom ``k`` whatever their
        sign: when fewer than ``k`` scores are positive (or negative), the rest
        are the next ones in order; check the sign of the scores.
    opponent_scores : ndarray of shape (n_test, k)
    target : ndarray of shape (n_test,)
        The labels explained (the model's predictions unless given).
    method : str
        The scoring method.
    train_target : ndarray of shape (n_train,) or None
        The training labels, to read off ``train_target[proponents]``.
    train_row_labels : pandas Index of length n_train, or None
        The row labels (index) of the training ``X`` when it was a pandas
        DataFrame or Series (for a pipeline, its raw input); None otherwise.
        See :attr:`proponent_labels`.
    hessian, solver : str or None
        The curvature and the solver that made the scores, as resolved by
        the explainer (``hessian_``, ``solver_``); None when the explainer
        does not say (e.g. the nearest-neighbour baseline).
    damping : float or None
        The damping used (the explainer's ``damping_``), or None.
    target_given : bool
        Whether ``target`` was given to ``explain`` (False: it is the model's
        predictions).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skrelatif import InfluenceExplainer
    >>> X, y = load_iris(return_X_y=True)
    >>> model = LogisticRegression(max_iter=1000, tol=1e-8).fit(X, y)
    >>> e = InfluenceExplainer(model).fit(X, y).explain(X[:2], k=3)
    >>> e.proponents.shape
    (2, 3)
    >>> bool((e.train_target[e.proponents] == e.target[:, None]).all())
    True
    >>> e[-1].proponents.shape
    (1, 3)

    With a DataFrame, the training rows' labels come along:

    >>> from sklearn.model_selection import train_test_split
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=0)
    >>> model = LogisticRegression(max_iter=1000, tol=1e-8).fit(X_tr, y_tr)
    >>> e = InfluenceExplainer(model).fit(X_tr, y_tr).explain(X_te[:2], k=3)
    >>> X_tr.loc[e.proponent_labels[0]].shape
    (3, 4)
    """

    proponents: np.ndarray
    proponent_scores: np.ndarray
    opponents: np.ndarray
    opponent_scores: np.ndarray
    target: np.ndarray
    method: str
    train_target: np.ndarray | None = field(default=None)
    train_row_labels: Any = field(default=None)
    hessian: str | None = field(default=None)
    solver: str | None = field(default=None)
    damping: float | None = field(default=None)
    target_given: bool = field(default=False)

    # -- row labels ----------------------------------------------------------------
    def _labels(self, index: np.ndarray) -> np.ndarray | None:
        if self.train_row_labels is None:
            return None
        return np.asarray(self.train_row_labels)[index]

    @property
    def proponent_labels(self) -> np.ndarray | None:
        """The training row labels of :attr:`proponents`, shape (n_test, k).

        ``X_train.loc[e.proponent_labels[t]]`` are the proponents of test
        point ``t`` when ``X_train`` (a pandas DataFrame) was given to
        ``fit``; None when the training ``X`` had no row labels (a NumPy
        array or a sparse matrix: use ``X_train[e.proponents[t]]``).
        """
        return self._labels(self.proponents)

    @property
    def opponent_labels(self) -> np.ndarray | None:
        """The training row labels of :attr:`opponents`, shape (n_test, k).

        None when the training ``X`` had no row labels (see
        :attr:`proponent_labels`).
        """
        return self._labels(self.opponents)

    # -- a sequence of test points -------------------------------------------------
    def __len__(self) -> int:
        return len(self.target)

    def __getitem__(self, key: Any) -> Explanation:
        n_test = len(self)
        if isinstance(key, Integral) and not isinstance(key, bool | np.bool_):
            if not -n_test <= key < n_test:
                raise IndexError(
                    f"Test point {key} is out of range: this explanation has "
                    f"{n_test} test points."
                )
            rows: Any = [int(key) % n_test]
        elif isinstance(key, slice):
            rows = key
        else:
            rows = np.asarray(key)
            if rows.ndim != 1 or rows.dtype.kind not in "biu":
                raise TypeError(
                    "Index an Explanation with an integer, a slice, an array of "
                    f"integers or a boolean mask of its test points; got {key!r}."
                )
            if rows.dtype.kind == "b" and rows.shape[0] != n_test:
                raise IndexError(
                    f"A boolean mask must have one entry per test point ({n_test}); "
                    f"got {rows.shape[0]}."
                )
            if (
                rows.dtype.kind != "b"
                and rows.size
                and (rows.min() < -n_test or rows.max() >= n_test)
            ):
                raise IndexError(
                    f"Test points {rows.tolist()} are out of range: this explanation "
                    f"has {n_test} test points."
                )
        return replace(
            self,
            proponents=self.proponents[rows],
            proponent_scores=self.proponent_scores[rows],
            opponents=self.opponents[rows],
            opponent_scores=self.opponent_scores[rows],
            target=np.asarray(self.target)[rows],
        )

    # -- display -------------------------------------------------------------------
    def _summary(self) -> str:
        n_test, k = self.proponents.shape
        fields = [f"method={self.method!r}", f"n_test={n_test}", f"k={k}"]
        for name in ("hessian", "solver", "damping"):
            value = getattr(self, name)
            if value is not None:
                fields.append(f"{name}={_python(value)!r}")
        return f"Explanation({', '.join(fields)})"

    def _row_name(self, index: int) -> str:
        if self.train_row_labels is None:
            return str(int(index))
        return str(np.asarray(self.train_row_labels)[index])

    def _table(self) -> tuple[list[str], list[list[str]], str]:
        """Header, cells and a footnote of the repr's table (first test points,
        first proponents and opponents, each with its score)."""
        n_test, k = self.proponents.shape
        shown = min(k, _REPR_K)
        what = "row label" if self.train_row_labels is not None else "train index"
        header = [
            "test",
            "target" if self.target_given else "predicted",
            f"proponents: {what} (score)",
            f"opponents: {what} (score)",
        ]
        rows = []
        for t in range(min(n_test, _REPR_ROWS)):
            target = _python(np.asarray(self.target)[t])
            if isinstance(target, float):  # a regressor's: 4 significant digits
                target = f"{target:.4g}"
            cells = [str(t), str(target)]
            for index, scores in (
                (self.proponents, self.proponent_scores),
                (self.opponents, self.opponent_scores),
            ):
                items = [
                    f"{self._row_name(index[t, j])} ({_score_text(scores[t, j])})"
                    for j in range(shown)
                ]
                cells.append(", ".join(items) + (", ..." if k > shown else ""))
            rows.append(cells)
        more = n_test - len(rows)
        footnote = (
            f"... {more} more test point{'s' if more > 1 else ''}" if more else ""
        )
        return header, rows, footnote

    def __repr__(self) -> str:
        header, rows, footnote = self._table()
        widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
        lines = [self._summary()]
        for r in [header, *rows]:
            cells = [r[0].rjust(widths[0]), r[1].rjust(widths[1])]
            cells += [cell.ljust(width) for cell, width in zip(r[2:], widths[2:])]
            lines.append("  ".join(cells).rstrip())
        if footnote:
            lines.append(footnote)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        header, rows, footnote = self._table()
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows
        )
        parts = [
            f"<p><code>{esc(self._summary())}</code></p>",
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>",
        ]
        if footnote:
            parts.append(f"<p>{esc(footnote)}</p>")
        return "<div>" + "".join(parts) + "</div>"

    # -- combining and exporting ---------------------------------------------------
    @classmethod
    def concatenate(cls, parts: Sequence[Explanation]) -> Explanation:
        """One explanation of the test points of ``parts``, in order.

        The parts must come from the same explainer (same ``method``, ``k``
        and training set), e.g. :meth:`~skrelatif.InfluenceExplainer.explain`
        called on consecutive batches of test points.

        Parameters
        ----------
        parts : sequence of Explanation
            The explanations to join, in order.

        Returns
        -------
        explanation : Explanation
            The test points of every part, in order.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.linear_model import LogisticRegression
        >>> from skrelatif import Explanation, InfluenceExplainer
        >>> X, y = load_iris(return_X_y=True)
        >>> model = LogisticRegression(max_iter=1000, tol=1e-8).fit(X, y)
        >>> ex = InfluenceExplainer(model).fit(X, y)
        >>> e = Explanation.concatenate([ex.explain(X[:2]), ex.explain(X[2:5])])
        >>> len(e), e.proponents.shape
        (5, (5, 5))
        """
        parts = list(parts)
        if not parts:
            raise ValueError("Explanation.concatenate needs at least one part.")
        if len({(p.method, p.proponents.shape[1]) for p in parts}) > 1:
            raise ValueError(
                "Explanation.concatenate needs parts with the same method and k; got "
                f"{sorted({(p.method, p.proponents.shape[1]) for p in parts})}."
            )
        if len({p.target_given for p in parts}) > 1:
            raise ValueError(
                "Explanation.concatenate needs parts that all explain the model's "
                "predictions or all explain given labels, not a mix."
            )
        return replace(
            parts[0],
            proponents=np.vstack([p.proponents for p in parts]),
            proponent_scores=np.vstack([p.proponent_scores for p in parts]),
            opponents=np.vstack([p.opponents for p in parts]),
            opponent_scores=np.vstack([p.opponent_scores for p in parts]),
            target=np.concatenate([p.target for p in parts]),
        )

    def to_records(self) -> list[dict]:
        """One dict per (test point, kind, rank), proponents before opponents.

        Keys are :data:`COLUMNS` (``train_target`` is None when unknown);
        values are Python scalars, ready for :mod:`csv` or :mod:`json`. Needs
        no optional dependency (see :meth:`to_frame` for a DataFrame, which
        also has the training rows' labels).

        Returns
        -------
        records : list of dict
            ``2 * n_test * k`` records, by test point, proponents first, by rank.
        """
        records = []
        n_test, k = self.proponents.shape
        for t in range(n_test):
            target = _python(self.target[t])
            for kind, index, scores in (
                ("proponent", self.proponents, self.proponent_scores),
                ("opponent", self.opponents, self.opponent_scores),
            ):
                for rank in range(k):
                    i = int(index[t, rank])
                    train_target = (
                        None
                        if self.train_target is None
                        else _python(self.train_target[i])
                    )
                    values = (t, target, kind, rank + 1, i, train_target)
                    records.append(
                        dict(zip(COLUMNS, (*values, float(scores[t, rank]))))
                    )
        return records

    def to_frame(self) -> Any:
        """One row per (test point, kind, rank) as a :class:`pandas.DataFrame`.

        Columns: ``test_index``, ``target``, ``kind`` ("proponent" or
        "opponent"), ``rank`` (1 = strongest), ``train_index`` (the training
        example's position), ``score`` and, when known, ``train_label`` (its
        row label in the training DataFrame, see :attr:`proponent_labels`)
        and ``train_target`` (its label or target).

        Returns
        -------
        frame : pandas.DataFrame
            ``2 * n_test * k`` rows, by test point, proponents first, by rank.
        """
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - exercised without pandas
            raise ImportError(
                "Explanation.to_frame requires pandas: pip install 'skrelatif[pandas]'"
            ) from exc
        frames = []
        for kind, index, score in (
            ("proponent", self.proponents, self.proponent_scores),
            ("opponent", self.opponents, self.opponent_scores),
        ):
            n_test, k = index.shape
            frame = {
                "test_index": np.repeat(np.arange(n_test), k),
                "target": np.repeat(self.target, k),
                "kind": kind,
                "rank": np.tile(np.arange(1, k + 1), n_test),
                "train_index": index.ravel(),
                "score": score.ravel(),
            }
            if self.train_row_labels is not None:
                frame["train_label"] = self._labels(index.ravel())
            if self.train_target is not None:
                frame["train_target"] = self.train_target[index.ravel()]
            frames.append(pd.DataFrame(frame))
        return (
            pd.concat(frames, ignore_index=True)
            .sort_values(["test_index", "kind", "rank"], ascending=[True, False, True])
            .reset_index(drop=True)
        )

    # -- plotting ------------------------------------------------------------------
    def plot(
        self,
        X_train: Any,
        X: Any = None,
        *,
        y_true: Any = None,
        kind: str = "auto",
        image_shape: tuple[int, ...] | None = None,
        k: int | None = None,
        ax: Any = None,
        **plot_kwargs: Any,
    ) -> Any:
        """Draw the explanation: images of the proponents, or bars of the scores.

        An explanation holds positions into the training set, not the
        training data: pass the ``X`` given to ``fit`` (for a pipeline, its
        raw input) to draw the rows. Image data (rows that are square images
        of at least 8 x 8 pixels, such as the digits, or any data with an
        explicit ``image_shape``) is drawn by
        :class:`~skrelatif.ExplanationGridDisplay`: each test image next to its
        proponents. Anything else by :class:`~skrelatif.ExplanationBarDisplay`:
        the scores of the proponents and opponents of each test point as
        bars, each labelled with the training row and its feature values.

        Parameters
        ----------
        X_train : {array-like, sparse matrix, DataFrame} of shape (n_train, n_features)
            The training data given to the explainer's ``fit``.
        X : array-like of shape (n_test, n_features), default=None
            The explained points; needed for images (they are drawn next to
            their proponents), optional for bars.
        y_true : array-like of shape (n_test,), default=None
            The true labels of the explained points, written next to the
            prediction ("true: ...").
        kind : {"auto", "images", "bars"}, default="auto"
            ``"auto"``: images when ``image_shape`` is given or the rows of
            ``X_train`` (not a DataFrame) are square images of at least 8 x
            8 pixels, else bars.
        image_shape : tuple of int, default=None
            The shape of one image, when the rows are flat images.
        k : int, default=None
            How many proponents (and opponents) to draw; all by default.
        ax : matplotlib Axes or array of Axes, default=None
            Where to draw (``None``: a new figure); see the displays' ``plot``.
        **plot_kwargs
            Passed to the display's ``plot``.

        Returns
        -------
        display : ExplanationGridDisplay or ExplanationBarDisplay
            The display, drawn.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from sklearn.datasets import load_wine
        >>> from sklearn.linear_model import LogisticRegression
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.preprocessing import StandardScaler
        >>> from skrelatif import InfluenceExplainer
        >>> X, y = load_wine(return_X_y=True, as_frame=True)
        >>> model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
        >>> e = InfluenceExplainer(model).fit(X, y).explain(X.iloc[:1], k=3)
        >>> display = e.plot(X)
        >>> type(display).__name__, len(display.bars_[0])
        ('ExplanationBarDisplay', 6)
        """
        from ._plot import ExplanationBarDisplay, ExplanationGridDisplay, _is_images

        if kind not in ("auto", "images", "bars"):
            raise ValueError(f"kind must be 'auto', 'images' or 'bars'; got {kind!r}.")
        if kind == "auto":
            images = image_shape is not None or _is_images(X_train)
            kind = "images" if images else "bars"
        if kind == "bars":
            return ExplanationBarDisplay.from_explanation(
                self, X_train, X=X, y_true=y_true, k=k, ax=ax, **plot_kwargs
            )
        if X is None:
            raise ValueError(
                "Drawing images needs the explained points: call plot(X_train, X) "
                "with the X given to explain, or pass kind='bars'."
            )
        return ExplanationGridDisplay.from_explanation(
            self,
            X,
            X_train,
            y_true=y_true,
            k=k,
            image_shape=image_shape,
            ax=ax,
            **plot_kwargs,
        )

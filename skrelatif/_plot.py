"""Plots, following scikit-learn's Display pattern (``from_...`` then ``plot``).

Everything is computed when a display is built (its ``from_*`` class methods
or its constructor) and :meth:`plot` only draws, with a keyword-only ``ax``, as
scikit-learn's displays do. Matplotlib is an optional dependency (the ``plot``
extra); it is imported only when a plot is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import isqrt
from numbers import Integral, Real
from typing import Any

import numpy as np

# Where scikit-learn's own displays import it from (1.6 to 1.9 at least);
# ``sklearn.utils`` itself no longer exports it (1.9 does not).
from sklearn.utils._optional_dependencies import check_matplotlib_support

from ._explanation import Explanation, _python, method_name


def _named(items: Any, default_name, what: str) -> tuple[list[str], list[Any]]:
    """(names, values) from a mapping, a sequence or a single item."""
    if isinstance(items, Mapping):
        return [str(n) for n in items], list(items.values())
    if isinstance(items, Sequence) and not isinstance(items, str):
        items = list(items)
    else:
        items = [items]
    if not items:
        raise ValueError(f"Give at least one {what}.")
    return [default_name(item) for item in items], items


def _as_images(X: Any, image_shape: tuple[int, ...] | None, what: str) -> np.ndarray:
    """Rows of ``X`` as images: (n, h, w) or (n, h, w, channels)."""
    X = np.asarray(X)
    if image_shape is not None:
        image_shape = tuple(int(s) for s in image_shape)
        if int(np.prod(image_shape)) * X.shape[0] != X.size:
            raise ValueError(
                f"{what} with {X.size // max(X.shape[0], 1)} values per row cannot be "
                f"shown as images of shape {image_shape}."
            )
        return X.reshape((X.shape[0], *image_shape))
    if X.ndim in (3, 4):
        return X
    if X.ndim != 2:
        raise ValueError(f"{what} must be 2-d (one image per row) or 3-d/4-d images.")
    side = isqrt(X.shape[1])
    if side * side != X.shape[1]:
        raise ValueError(
            f"{what} has {X.shape[1]} features per row, which is not a square image; "
            "pass image_shape=(height, width)."
        )
    return X.reshape(X.shape[0], side, side)


def _is_images(X: Any) -> bool:
    """Whether the rows of ``X`` look like images: 3-d or 4-d, or flat rows
    that are square images of at least 8 x 8 pixels (not a DataFrame, whose
    named columns are a table's)."""
    if hasattr(X, "columns"):
        return False
    shape = np.shape(X) if not hasattr(X, "shape") else X.shape
    if len(shape) in (3, 4):
        return True
    if len(shape) != 2:
        return False
    side = isqrt(shape[1])
    return side >= 8 and side * side == shape[1]


def _rows(X: Any, index: np.ndarray) -> Any:
    """Rows ``index`` (positions) of an array, a sparse matrix or a DataFrame."""
    if hasattr(X, "iloc"):
        return X.iloc[index]
    rows = X[index]
    return rows.toarray() if hasattr(rows, "toarray") else np.asarray(rows)


#: Colours of proponent labels (Okabe & Ito's palette, told apart with the
#: common colour-vision deficiencies): the explained label, or another one.
MATCH_COLOR = "#0072B2"  # blue
MISMATCH_COLOR = "#E69F00"  # orange

# Grid layout, in units of one proponent image: the test column, and the gap
# before each method's block of k columns.
_TEST_WIDTH = 1.5  # room for "predicted: 7" under the test image
_GAP = 0.35


def _grid_widths(n_methods: int, k: int) -> list[float]:
    return [_TEST_WIDTH] + [_GAP, *[1.0] * k] * n_methods


def _grid_figsize(
    n_test: int, n_methods: int, k: int, *, lines: int = 1, legend: bool = False
) -> tuple[float, float]:
    """The figure size (inches) that gives each image about 0.6 inch, with
    ``lines`` lines of text under the test images and room for the legend."""
    width = max(0.6 * sum(_grid_widths(n_methods, k)) + 0.2, 3.2 if legend else 0)
    height = (0.9 + 0.18 * (lines - 1)) * n_test + 0.6 + 0.3 * legend
    return width, height


def _are_classes(labels: np.ndarray) -> bool:
    """Whether ``labels`` are class labels, to compare, rather than regression
    values: anything but floats, or floats that are all whole numbers."""
    if labels.dtype.kind != "f":
        return True
    return bool(np.isfinite(labels).all() and (labels == np.round(labels)).all())


def _label_text(value: Any, classes: bool) -> str:
    return str(value) if classes else f"{float(value):.3g}"


def _test_caption(
    target: Any, classes: bool, *, given: bool = False, true: Any = None
) -> str:
    """What a test point is labelled with: the label explained, said to be the
    prediction (or given), then the true label when known."""
    text = f"{'explained' if given else 'predicted'}: {_label_text(target, classes)}"
    if true is not None:
        text += f"\ntrue: {_label_text(true, classes)}"
    return text


def _header(axes: Sequence[Any], text: str) -> Any:
    """A title centred over ``axes`` (one row of a grid), placed at draw time
    so that it follows the layout.

    It stays out of the layout engine, which would otherwise widen the first
    column by the header's overhang; a blank title on each Axes reserves the
    height instead.
    """
    from matplotlib import rcParams
    from matplotlib.transforms import Bbox

    first, last = axes[0], axes[-1]
    for ax in axes:
        ax.set_title(" ")

    def span(renderer: Any) -> Bbox:
        return Bbox.union(
            [first.get_window_extent(renderer), last.get_window_extent(renderer)]
        )

    header = first.annotate(
        text,
        xy=(0.5, 1.0),
        xycoords=span,
        xytext=(0, rcParams["axes.titlepad"]),
        textcoords="offset points",
        ha="center",
        va="bottom",
        fontsize=rcParams["axes.titlesize"],
    )
    header.set_in_layout(False)
    return header


class ExplanationGridDisplay:
    """Test images next to their strongest proponents, one block per method.

    One row per test point: the test image, then for each method its ``k``
    strongest proponents, strongest first, under a header centred over the
    block, with a gap between blocks (the layout of Figs. 7-11 of Barshan et
    al., 2020). Each test image is labelled with the label explained
    ("predicted: 3", or "explained: 3" when the labels were given to
    ``explain``) and, when given, its true label ("true: 5"). Each proponent
    is labelled with its training label: in ``match_color`` (blue) when it is
    the explained label, else in ``mismatch_color`` (orange) and framed; a
    legend under the grid says so.

    Labels are compared only when they are class labels. The explanation of a
    regressor has float targets (the predictions explained) and float
    training targets: they are written as numbers (3 significant digits),
    without colours. Whether labels are class labels is guessed from their
    values (anything but floats with a fractional part) unless
    ``compare_labels`` says it; :meth:`from_explainers` sets it to False for
    the explainers of a regressor, whose targets may all be whole numbers.

    It is recommended to build the display with :meth:`from_explainers` or
    :meth:`from_explanation`; all parameters are stored as attributes.

    Parameters
    ----------
    test_images : ndarray of shape (n_test, height, width[, c])
        The explained test points.
    proponent_images : ndarray of shape (n_methods, n_test, k, height, width[, c])
        Their proponents by each method, strongest first.
    test_labels : ndarray of shape (n_test,), default=None
        The explained labels (or predicted values).
    proponent_labels : ndarray of shape (n_methods, n_test, k), default=None
        The training labels (or targets) of the proponents.
    method_names : list of str, default=None
        One name per method (the block headers).
    compare_labels : bool, default=None
        Whether the labels are class labels, compared with the explained
        label and coloured; ``None``: guessed from their values.
    y_true : ndarray of shape (n_test,), default=None
        The true labels (or targets) of the test points, written under
        ``test_labels``.
    target_given : bool, default=False
        Whether ``test_labels`` were given to ``explain`` ("explained: ...")
        rather than predicted by the model ("predicted: ...").

    Attributes
    ----------
    mismatches_ : ndarray of bool, shape (n_methods, n_test, k)
        Proponents whose label differs from the explained label (all False
        without labels, or for regression targets).
    figure_ : matplotlib Figure
        The figure drawn on (set by :meth:`plot`).
    axes_ : ndarray of matplotlib Axes, shape (n_test, 1 + n_methods * k)
        The test column, then each method's ``k`` columns.
    images_ : ndarray of matplotlib AxesImage, same shape as ``axes_``
        The images drawn.
    headers_ : list of matplotlib Text
        The column headers: ``"test"``, then one per method.
    legend_ : matplotlib Legend or None
        The colour legend (None when the labels are not compared).

    See Also
    --------
    LeaveOneOutDisplay : Scores against actual leave-one-out retraining.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skrelatif import (
    ...     ExplanationGridDisplay, InfluenceExplainer, NearestNeighborExplainer)
    >>> X, y = load_digits(return_X_y=True)
    >>> X, y = X[:300] / 16, y[:300]
    >>> model = LogisticRegression(max_iter=1000).fit(X, y)
    >>> explainers = {
    ...     "l-RelatIF": InfluenceExplainer(model).fit(X, y),
    ...     "nearest": NearestNeighborExplainer(model).fit(X, y),
    ... }
    >>> display = ExplanationGridDisplay.from_explainers(explainers, X[:3], X, k=2)
    >>> display.axes_.shape
    (3, 5)
    """

    def __init__(
        self,
        test_images: np.ndarray,
        proponent_images: np.ndarray,
        *,
        test_labels: np.ndarray | None = None,
        proponent_labels: np.ndarray | None = None,
        method_names: list[str] | None = None,
        compare_labels: bool | None = None,
        y_true: np.ndarray | None = None,
        target_given: bool = False,
    ) -> None:
        self.test_images = test_images
        self.proponent_images = proponent_images
        self.test_labels = test_labels
        self.proponent_labels = proponent_labels
        self.method_names = method_names
        self.compare_labels = compare_labels
        self.y_true = y_true
        self.target_given = target_given
        tests = np.asarray(test_images)
        shape = np.shape(proponent_images)
        if len(shape) != tests.ndim + 2 or shape[1] != tests.shape[0]:
            raise ValueError(
                "proponent_images must have shape (n_methods, n_test, k, *image_shape) "
                f"for test_images of shape {tests.shape}; got {shape}."
            )
        n_methods, n_test, k = shape[:3]
        if method_names is not None and len(method_names) != n_methods:
            raise ValueError(f"Give {n_methods} method_names; got {len(method_names)}.")
        if y_true is not None and len(y_true) != n_test:
            raise ValueError(f"Give {n_test} y_true values; got {len(y_true)}.")
        self.mismatches_ = np.zeros((n_methods, n_test, k), dtype=bool)
        if self._classes():
            target = np.asarray(test_labels)
            self.mismatches_ = np.asarray(proponent_labels) != target[None, :, None]

    def _classes(self) -> bool:
        """Whether the labels are given and are class labels (to compare)."""
        if self.test_labels is None or self.proponent_labels is None:
            return False
        if self.compare_labels is not None:
            return bool(self.compare_labels)
        return _are_classes(np.asarray(self.test_labels)) and _are_classes(
            np.asarray(self.proponent_labels)
        )

    def plot(
        self,
        *,
        ax: Any = None,
        cmap: str = "gray_r",
        match_color: str = MATCH_COLOR,
        mismatch_color: str = MISMATCH_COLOR,
        imshow_kwargs: dict | None = None,
    ) -> ExplanationGridDisplay:
        """Draw the grid.

        Parameters
        ----------
        ax : matplotlib Axes or array of Axes, default=None
            ``None``: a new figure. A single Axes: its area is divided into
            the grid (the Axes itself is hidden). An array of
            ``n_test * (1 + n_methods * k)`` Axes: used in row-major order
            (with the gaps between methods that they have).
        cmap : str, default="gray_r"
            Colormap of single-channel images.
        match_color : str, default="#0072B2"
            Label colour of proponents that carry the explained label (blue).
        mismatch_color : str, default="#E69F00"
            Frame and label colour of proponents whose label differs from the
            explained label (orange).
        imshow_kwargs : dict, default=None
            Passed to :meth:`matplotlib.axes.Axes.imshow`.

        Returns
        -------
        display : ExplanationGridDisplay
            With ``figure_``, ``axes_``, ``images_``, ``headers_`` and
            ``legend_``.
        """
        check_matplotlib_support("ExplanationGridDisplay.plot")
        tests = np.asarray(self.test_images)
        props = np.asarray(self.proponent_images)
        n_methods, n_test, k = props.shape[:3]
        names = self.method_names or [f"method {m}" for m in range(n_methods)]
        labels_given = self.proponent_labels is not None
        classes = self._classes()
        lines = 1 + (self.y_true is not None)
        axes = self._grid_axes(
            ax, n_test, n_methods, k, lines=lines, legend=classes and labels_given
        )
        kwargs = {"cmap": cmap, "interpolation": "nearest", **(imshow_kwargs or {})}
        labels = self.proponent_labels

        images = np.empty(axes.shape, dtype=object)
        for t in range(n_test):
            images[t, 0] = axes[t, 0].imshow(tests[t], **kwargs)
            if self.test_labels is not None:
                text = _test_caption(
                    self.test_labels[t],
                    classes or self._label_kind_classes(),
                    given=self.target_given,
                    true=None if self.y_true is None else self.y_true[t],
                )
                axes[t, 0].set_xlabel(text)
            for m in range(n_methods):
                for j in range(k):
                    a = axes[t, 1 + m * k + j]
                    images[t, 1 + m * k + j] = a.imshow(props[m, t, j], **kwargs)
                    if labels is not None:
                        a.set_xlabel(_label_text(labels[m][t][j], classes))
                    if not classes:
                        continue
                    if self.mismatches_[m, t, j]:
                        a.xaxis.label.set_color(mismatch_color)
                        for spine in a.spines.values():
                            spine.set_edgecolor(mismatch_color)
                            spine.set_linewidth(2.5)
                    else:
                        a.xaxis.label.set_color(match_color)
        for a in axes.ravel():
            a.set_xticks([])
            a.set_yticks([])
        self.headers_ = [_header(axes[0, :1], "test")] + [
            _header(axes[0, 1 + m * k : 1 + (m + 1) * k], name)
            for m, name in enumerate(names)
        ]
        self.figure_ = axes[0, 0].figure
        self.axes_ = axes
        self.images_ = images
        self.legend_ = None
        if classes and labels is not None:
            self.legend_ = self._legend(ax, match_color, mismatch_color)
        return self

    def _label_kind_classes(self) -> bool:
        """Whether the test labels alone are class labels (written as is)."""
        if self.compare_labels is not None:
            return bool(self.compare_labels)
        return _are_classes(np.asarray(self.test_labels))

    def _legend(self, ax: Any, match_color: str, mismatch_color: str) -> Any:
        """What the colours mean, under the grid."""
        from matplotlib.layout_engine import ConstrainedLayoutEngine
        from matplotlib.patches import Patch

        handles = [
            Patch(color=match_color, label="explained label"),
            Patch(
                facecolor="none",
                edgecolor=mismatch_color,
                linewidth=2.5,
                label="other label",
            ),
        ]
        options = dict(handles=handles, ncols=2, frameon=False)
        figure = self.figure_
        if isinstance(figure.get_layout_engine(), ConstrainedLayoutEngine):
            try:
                return figure.legend(loc="outside lower center", **options)
            except ValueError:  # pragma: no cover - matplotlib < 3.7
                pass
        if ax is not None and not isinstance(ax, np.ndarray | list | tuple):
            # under the Axes whose area holds the grid, below the labels of
            # its last row
            return ax.legend(
                loc="upper center",
                bbox_to_anchor=(0.5, 0.0),
                borderaxespad=2.5,
                **options,
            )
        return figure.legend(loc="lower center", **options)

    @staticmethod
    def _grid_axes(
        ax: Any, n_rows: int, n_methods: int, k: int, **size: Any
    ) -> np.ndarray:
        """(n_rows, 1 + n_methods * k) Axes: from ``ax``, or in a new figure."""
        n_cols = 1 + n_methods * k
        if isinstance(ax, np.ndarray | list | tuple):
            axes = np.asarray(ax, dtype=object)
            if axes.size != n_rows * n_cols:
                raise ValueError(
                    f"ax must hold {n_rows} x {n_cols} = {n_rows * n_cols} Axes for "
                    f"this grid; got {axes.size}."
                )
            return axes.reshape(n_rows, n_cols)
        widths = _grid_widths(n_methods, k)
        if ax is None:
            import matplotlib.pyplot as plt

            figure = plt.figure(
                figsize=_grid_figsize(n_rows, n_methods, k, **size),
                layout="constrained",
            )
            grid = figure.add_gridspec(n_rows, len(widths), width_ratios=widths)
        else:
            from matplotlib.gridspec import GridSpecFromSubplotSpec

            grid = GridSpecFromSubplotSpec(
                n_rows,
                len(widths),
                subplot_spec=ax.get_subplotspec(),
                width_ratios=widths,
                wspace=0.1,
                hspace=0.4,
            )
            ax.set_axis_off()
            figure = ax.figure
        # Grid columns: the test image, then per method a gap and k images.
        columns = [0] + [
            1 + m * (k + 1) + 1 + j for m in range(n_methods) for j in range(k)
        ]
        return np.array(
            [[figure.add_subplot(grid[r, c]) for c in columns] for r in range(n_rows)],
            dtype=object,
        )

    @classmethod
    def from_explanation(
        cls,
        explanation: Explanation | Mapping[str, Explanation] | Sequence[Explanation],
        X: Any,
        X_train: Any,
        *,
        y_true: Any = None,
        k: int | None = None,
        image_shape: tuple[int, ...] | None = None,
        compare_labels: bool | None = None,
        ax: Any = None,
        **plot_kwargs: Any,
    ) -> ExplanationGridDisplay:
        """Draw the proponents of one or more :class:`~skrelatif.Explanation`.

        Parameters
        ----------
        explanation : Explanation, or dict of name -> Explanation, or list
            One block of columns per explanation (named by the dict keys, else
            by the method's name in these docs: "IF", "theta-RelatIF",
            "l-RelatIF", "Newton", "nearest neighbour"). All explain the same
            rows of ``X``.
        X : array-like of shape (n_test, n_pixels) or (n_test, h, w[, c])
            The explained test points, as images.
        X_train : array-like of shape (n_train, n_pixels) or (n_train, h, w[, c])
            The training images that the explanations index.
        y_true : array-like of shape (n_test,), default=None
            The true labels of the test points ("true: ..." under each).
        k : int, default=None
            Proponents shown per method (``None``: all the explanation holds).
        image_shape : tuple of int, default=None
            Shape of one image when rows are flat and not square.
        compare_labels : bool, default=None
            Whether the labels are class labels (coloured by whether they are
            the explained label); ``None``: guessed from their values. Pass
            False for a regressor whose targets are whole numbers.
        ax : matplotlib Axes or array of Axes, default=None
            See :meth:`plot`.
        **plot_kwargs
            Passed to :meth:`plot`.

        Returns
        -------
        display : ExplanationGridDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_explanation")
        names, explanations = _named(
            explanation, lambda e: method_name(getattr(e, "method", "?")), "explanation"
        )
        for e in explanations:
            if not isinstance(e, Explanation):
                raise TypeError(
                    f"Expected skrelatif.Explanation objects; got {type(e).__name__}."
                )
        tests = _as_images(X, image_shape, "X")
        train = _as_images(X_train, image_shape, "X_train")
        n_test = tests.shape[0]
        available = min(e.proponents.shape[1] for e in explanations)
        k = available if k is None else int(k)
        if not 1 <= k <= available:
            raise ValueError(f"k must be between 1 and {available}; got {k}.")
        for e in explanations:
            if len(e) != n_test:
                raise ValueError(
                    f"X has {n_test} rows but an explanation explains {len(e)}."
                )
        proponents = np.stack([e.proponents[:, :k] for e in explanations])
        first = explanations[0]
        labels = None
        if all(e.train_target is not None for e in explanations):
            labels = np.stack(
                [e.train_target[p] for e, p in zip(explanations, proponents)]
            )
        display = cls(
            tests,
            train[proponents],
            test_labels=first.target,
            proponent_labels=labels,
            method_names=names,
            compare_labels=compare_labels,
            y_true=None if y_true is None else np.asarray(y_true),
            target_given=first.target_given,
        )
        return display.plot(ax=ax, **plot_kwargs)

    @classmethod
    def from_explainers(
        cls,
        explainers: Any,
        X: Any,
        X_train: Any,
        *,
        y: Any = None,
        y_true: Any = None,
        k: int = 3,
        image_shape: tuple[int, ...] | None = None,
        ax: Any = None,
        **plot_kwargs: Any,
    ) -> ExplanationGridDisplay:
        """Explain ``X`` with each fitted explainer and draw the proponents.

        Parameters
        ----------
        explainers : explainer, or dict of name -> explainer, or list
            Fitted :class:`~skrelatif.InfluenceExplainer` or
            :class:`~skrelatif.NearestNeighborExplainer` objects (anything with
            ``explain(X, y, k)``), named by the dict keys, else by their
            method's name in these docs ("IF", "l-RelatIF", ..., "nearest
            neighbour" for the baseline).
        X : array-like of shape (n_test, n_pixels)
            The points to explain: the explainers' input, shown as images.
        X_train : array-like of shape (n_train, n_pixels)
            The explainers' training data, shown as images.
        y : array-like of shape (n_test,), default=None
            The labels (or a regressor's targets) to explain; the model's
            predictions when None.
        y_true : array-like of shape (n_test,), default=None
            The true labels of the test points ("true: ..." under each).
        k : int, default=3
            Proponents per method.
        image_shape : tuple of int, default=None
            Shape of one image when rows are not square images.
        ax : matplotlib Axes or array of Axes, default=None
            See :meth:`plot`.
        **plot_kwargs
            Passed to :meth:`plot`.

        Returns
        -------
        display : ExplanationGridDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_explainers")
        names, objects = _named(
            explainers,
            lambda e: method_name(getattr(e, "method", "nearest-neighbor")),
            "explainer",
        )
        explanations = {
            name: explainer.explain(X, y=y, k=k)
            for name, explainer in zip(names, objects)
        }
        # The explainers of a regressor have no classes_: its targets are
        # values, never compared, even when they are all whole numbers.
        regressor = not all(hasattr(e, "classes_") for e in objects)
        return cls.from_explanation(
            explanations,
            X,
            X_train,
            y_true=y_true,
            image_shape=image_shape,
            compare_labels=False if regressor else None,
            ax=ax,
            **plot_kwargs,
        )


#: Colours of the bars (Okabe & Ito's palette): proponents and opponents.
PROPONENT_COLOR = "#009E73"  # bluish green
OPPONENT_COLOR = "#D55E00"  # vermillion


def _value_text(value: Any, width: int = 30) -> str:
    """A feature value in a label: 3 significant digits, or a string cut to
    ``width`` characters (texts can be long)."""
    if isinstance(value, Real) and not isinstance(value, bool):
        return f"{float(value):.3g}"
    text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


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


_QUANTITIES = {
    "if": "test loss change",
    "newton": "test loss change",
    "theta-relatif": "Δ test loss / ||Δθ||",
    "l-relatif": "Δ test loss / RSS(Δ train losses)",
}
#: The methods whose scores predict the very quantity they are compared with
#: (so ``y = x`` is perfect agreement); the RelatIF scores are that quantity
#: only up to a constant and to first order.
_SAME_QUANTITY = ("if", "newton")
#: What a regressor explained without targets compares (leave_one_out tracks
#: minus its prediction, so the "test loss change" is the prediction's drop).
_PREDICTION_QUANTITIES = {
    method: quantity.replace("test loss change", "drop of the prediction").replace(
        "Δ test loss", "drop of the prediction"
    )
    for method, quantity in _QUANTITIES.items()
}


class LeaveOneOutDisplay:
    """Predicted against actual leave-one-out changes (Fig. 6 of Barshan et al.).

    A scatter plot with one point per (test point, removed training example);
    the legend gives the Pearson correlation. Where both axes are the same
    quantity (``"if"`` and ``"newton"`` scores against the actual test loss
    change) the line ``y = x`` shows perfect agreement; a RelatIF score is
    that quantity only up to a constant, so its display draws the
    least-squares line instead, with its slope in the legend. Call
    :meth:`plot` again on the same ``ax`` to overlay another method or
    Hessian.

    It is recommended to build the display with :meth:`from_explainer` or
    :meth:`from_predictions`; all parameters are stored as attributes. The
    agreement is computed when the display is built; :meth:`plot` only draws.

    Parameters
    ----------
    predicted : array-like
        Predicted changes (scores).
    actual : array-like of the same size
        Actual changes from :func:`skrelatif.validation.leave_one_out`.
    name : str, default=None
        Legend name.
    method : {"if", "theta-relatif", "l-relatif", "newton"}, default="if"
        Which quantity is compared (sets the axis labels and the line).
    quantity : str, default=None
        The axis labels' name of the compared quantity; ``None``: that of
        ``method`` (``"test loss change"`` for ``"if"`` and ``"newton"``).
        :meth:`from_explainer` names it ``"drop of the prediction"`` for a
        regressor explained without targets.

    Attributes
    ----------
    agreement_ : Bunch
        :func:`skrelatif.validation.agreement` of ``predicted`` and ``actual``
        over the pairs where both are finite (an undefined ratio, a removal
        that changes nothing, is left out).
    leave_one_out_ : Bunch
        The leave-one-out result (only when built with :meth:`from_explainer`).
    ax_ : matplotlib Axes
        The Axes drawn on (set by :meth:`plot`).
    figure_ : matplotlib Figure
        Its figure.
    scatter_ : matplotlib PathCollection
        The points.
    line_ : matplotlib Line2D or None
        The ``y = x`` line or the least-squares line, if drawn.

    See Also
    --------
    skrelatif.validation.leave_one_out : The retraining behind ``actual``.
    ExplanationGridDisplay : Test images next to their proponents.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skrelatif import LeaveOneOutDisplay
    >>> display = LeaveOneOutDisplay.from_predictions(
    ...     [0.1, 0.2, -0.1, 0.0], [0.11, 0.19, -0.12, 0.01], name="IF")
    >>> display.ax_.get_legend().get_texts()[0].get_text()
    'IF (r = 0.994)'
    """

    def __init__(
        self,
        predicted: Any,
        actual: Any,
        *,
        name: str | None = None,
        method: str = "if",
        quantity: str | None = None,
    ) -> None:
        from .validation import agreement

        self.predicted = predicted
        self.actual = actual
        self.name = name
        self.method = method
        self.quantity = quantity
        if method not in _QUANTITIES:
            raise ValueError(
                f"method must be one of {sorted(_QUANTITIES)}; got {method!r}."
            )
        predicted = np.asarray(predicted, dtype=float).ravel()
        actual = np.asarray(actual, dtype=float).ravel()
        if predicted.shape != actual.shape:
            raise ValueError(
                f"predicted and actual must have the same size; got {predicted.size} "
                f"and {actual.size}."
            )
        finite = np.isfinite(predicted) & np.isfinite(actual)
        self._points = predicted[finite], actual[finite]
        self.agreement_ = agreement(*self._points)

    def plot(
        self,
        *,
        ax: Any = None,
        name: str | None = None,
        diagonal: bool | None = None,
        **scatter_kwargs: Any,
    ) -> LeaveOneOutDisplay:
        """Draw the scatter plot.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            ``None``: a new figure.
        name : str, default=None
            Legend name; overrides the one given at construction.
        diagonal : bool, default=None
            ``None``: the ``y = x`` line (perfect agreement) where both axes
            are the same quantity (``"if"``, ``"newton"``), else the
            least-squares line. True: the ``y = x`` line; False: no line.
        **scatter_kwargs
            Passed to :meth:`matplotlib.axes.Axes.scatter`.

        Returns
        -------
        display : LeaveOneOutDisplay
            With ``ax_``, ``figure_``, ``scatter_`` and ``line_``.
        """
        check_matplotlib_support("LeaveOneOutDisplay.plot")
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(5, 5), layout="constrained")
        predicted, actual = self._points
        name = name if name is not None else self.name
        stats = f"r = {self.agreement_.pearson:.3f}"
        label = f"{name} ({stats})" if name else stats
        self.scatter_ = ax.scatter(
            predicted, actual, label=label, **{"s": 12, "alpha": 0.7, **scatter_kwargs}
        )
        same = self.method in _SAME_QUANTITY
        self.line_ = None
        if diagonal or (diagonal is None and same):
            low = min(predicted.min(), actual.min())
            high = max(predicted.max(), actual.max())
            (self.line_,) = ax.plot(
                [low, high], [low, high], linestyle="--", color="0.5", linewidth=1
            )
        elif diagonal is None and np.isfinite(self.agreement_.slope):
            a = self.agreement_
            x = np.array([predicted.min(), predicted.max()])
            (self.line_,) = ax.plot(
                x,
                a.slope * x + a.intercept,
                linestyle="--",
                linewidth=1,
                color=self.scatter_.get_facecolor()[0][:3],
                label=f"least-squares fit (slope {a.slope:.2f})",
            )
        quantity = self.quantity or _QUANTITIES[self.method]
        # Kept short, on one line: they must fit a default-size figure and
        # the panels of a two-panel one (tests/test_plotting.py renders both).
        # Ticks such as "-0.015" crowd a panel's axis (and "-0.0004" push
        # the label out of a default figure): below 0.1 (and from 1000) the
        # axis takes a common factor, "x1e-2", and the ticks stay short.
        from matplotlib.ticker import ScalarFormatter

        for axis in ("x", "y"):
            formatter = getattr(ax, f"{axis}axis").get_major_formatter()
            if isinstance(formatter, ScalarFormatter):
                ax.ticklabel_format(axis=axis, style="sci", scilimits=(-2, 3))
        if same:
            ax.set_xlabel(f"Predicted {quantity}")
        else:
            ax.set_xlabel(f"{method_name(self.method)} score")
        ax.set_ylabel(f"Actual {quantity}")
        ax.legend(loc="upper left")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_predictions(
        cls,
        predicted: Any,
        actual: Any,
        *,
        name: str | None = None,
        method: str = "if",
        quantity: str | None = None,
        ax: Any = None,
        diagonal: bool | None = None,
        **scatter_kwargs: Any,
    ) -> LeaveOneOutDisplay:
        """Plot given predicted and actual changes.

        Parameters
        ----------
        predicted : array-like
            Predicted changes (e.g. ``explainer.transform(X_test)[:, indices]``).
        actual : array-like of the same shape
            Actual changes (e.g. ``leave_one_out(...).test_loss_change``).
        name : str, default=None
            Legend name.
        method : {"if", "theta-relatif", "l-relatif", "newton"}, default="if"
            Which quantity is compared (sets the axis labels).
        quantity : str, default=None
            The axis labels' name of the quantity (``None``: that of ``method``).
        ax : matplotlib Axes, default=None
            Where to draw (``None``: a new figure).
        diagonal : bool, default=None
            See :meth:`plot`: ``None`` draws ``y = x`` where both axes are
            the same quantity, else the least-squares line.
        **scatter_kwargs
            Passed to :meth:`matplotlib.axes.Axes.scatter`.

        Returns
        -------
        display : LeaveOneOutDisplay
            The display, drawn.
        """
        check_matplotlib_support(f"{cls.__name__}.from_predictions")
        display = cls(predicted, actual, name=name, method=method, quantity=quantity)
        return display.plot(ax=ax, diagonal=diagonal, **scatter_kwargs)

    @classmethod
    def from_explainer(
        cls,
        explainer: Any,
        X_test: Any,
        y_test: Any,
        indices: Any,
        *,
        n_jobs: int | None = None,
        name: str | None = None,
        ax: Any = None,
        diagonal: bool | None = None,
        **scatter_kwargs: Any,
    ) -> LeaveOneOutDisplay:
        """Retrain without each of ``indices`` and plot scores against the truth.

        The explainer's scores for ``X_test`` are compared with the actual
        counterpart of its method (see
        :func:`skrelatif.validation.leave_one_out`): the test loss change for
        ``"if"`` and ``"newton"``, divided by ``||Δθ||`` for
        ``"theta-relatif"`` and by the root sum of squared training-loss
        changes for ``"l-relatif"``. For a regressor explained without
        targets (``y_test=None``) the tracked quantity is minus the
        prediction: the "test loss change" is the drop of the prediction when
        the example is removed, and the axes say so.

        Parameters
        ----------
        explainer : InfluenceExplainer
            Fitted.
        X_test : array-like of shape (n_test, n_features)
            The test points.
        y_test : array-like of shape (n_test,) or None
            Labels or a regressor's targets (``None``: the model's
            predictions).
        indices : array-like of int
            Training indices removed one at a time.
        n_jobs : int, default=None
            Jobs for the retraining.
        name : str, default=None
            Legend name (default: the method and the Hessian used, with
            ``hessian="auto"`` resolved).
        ax : matplotlib Axes, default=None
            Where to draw (``None``: a new figure).
        diagonal : bool, default=None
            See :meth:`plot`: ``None`` draws ``y = x`` where both axes are
            the same quantity, else the least-squares line.
        **scatter_kwargs
            Passed to :meth:`matplotlib.axes.Axes.scatter`.

        Returns
        -------
        display : LeaveOneOutDisplay
            With ``leave_one_out_``.
        """
        from .validation import actual_change, leave_one_out

        check_matplotlib_support(f"{cls.__name__}.from_explainer")
        indices = np.asarray(indices)
        result = leave_one_out(explainer, X_test, y_test, indices, n_jobs=n_jobs)
        predicted = explainer.transform(X_test, y_test)[:, indices]
        method = explainer.method
        if name is None:
            # the Hessian used: hessian="auto" resolved to the family's own
            name = f"{method_name(method)}, hessian={explainer.hessian_}"
        regressor = not hasattr(explainer, "classes_")
        quantities = _PREDICTION_QUANTITIES if regressor and y_test is None else None
        display = cls(
            predicted,
            actual_change(result, method),
            name=name,
            method=method,
            quantity=None if quantities is None else quantities[method],
        )
        display.leave_one_out_ = result
        return display.plot(ax=ax, diagonal=diagonal, **scatter_kwargs)

"""The explanations of image data: test images next to their strongest
proponents, one block of columns per method (:class:`ExplanationGridDisplay`),
with the grid's layout (figure size, column widths, block headers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._explanation import Explanation, method_name
from ._common import (
    MATCH_COLOR,
    MISMATCH_COLOR,
    _are_classes,
    _as_images,
    _label_text,
    _test_caption,
    check_matplotlib_support,
)


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

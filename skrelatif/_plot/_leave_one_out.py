"""Scores against actual leave-one-out retraining, as a scatter plot
(:class:`LeaveOneOutDisplay`), with the names of the quantities compared.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._explanation import method_name
from ._common import check_matplotlib_support

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
        from ..validation import agreement

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
        from ..validation import actual_change, leave_one_out

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

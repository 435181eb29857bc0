"""Predicted against actual outputs of models refit on subsets, for one test
point (:class:`LinearDatamodelingDisplay`): what the linear datamodeling score
(LDS) correlates.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
from scipy import stats

from .._explanation import method_name
from ._common import check_matplotlib_support

#: What ``linear_datamodeling_score`` tracks: the test loss, or minus a
#: regressor's prediction when it is explained without targets.
_LOSS = "test loss"
_MINUS_PREDICTION = "minus the prediction"
#: Axis labels (x, y) of each tracked output; another one is named as given.
_LABELS = {
    _LOSS: ("Predicted change of the test loss", "Test loss after the refit"),
    _MINUS_PREDICTION: (
        "Predicted drop of the prediction",
        "Minus the prediction after the refit",
    ),
}


class LinearDatamodelingDisplay:
    """Predicted against actual outputs of refits, for one test point (LDS).

    The linear datamodeling score (Park et al. 2023, TRAK; see
    :func:`skrelatif.validation.linear_datamodeling_score`) retrains the
    model on many random subsets of its training data and correlates, across
    subsets, the explainer's prediction for each subset (its predicted change
    of the output when the subset's complement is removed) with the output
    of the model actually refit on it. This display draws that scatter for
    one test point, one point per subset, with the Spearman correlation
    (the point's LDS) in the legend.

    Only ranks matter to the LDS, so the axes need not share a scale: the x
    axis is a *change* predicted by the scores (for RelatIF methods a sum of
    scores, not a change in loss units), the y axis the refit model's output
    itself.

    It is recommended to build the display with :meth:`from_explainer` or
    :meth:`from_result`; all parameters are stored as attributes. The
    correlation is computed when the display is built; :meth:`plot` only
    draws.

    Parameters
    ----------
    predicted : array-like of shape (n_subsets,)
        The explainer's predicted change of the output, per subset.
    actual : array-like of shape (n_subsets,)
        The output of the model refit on each subset.
    name : str, default=None
        Legend name.
    quantity : str, default="test loss"
        The tracked output (the axis labels); :meth:`from_explainer` names
        it ``"minus the prediction"`` for a regressor explained without
        targets.

    Attributes
    ----------
    spearman_ : float
        Spearman correlation of ``predicted`` and ``actual`` (NaN when
        either is constant): this test point's LDS.
    lds_ : Bunch
        The :func:`~skrelatif.validation.linear_datamodeling_score` result
        (only when built with :meth:`from_explainer` or :meth:`from_result`).
    test_index : int or None
        The test point drawn (only when built with :meth:`from_explainer`
        or :meth:`from_result`).
    ax_ : matplotlib Axes
        The Axes drawn on (set by :meth:`plot`).
    figure_ : matplotlib Figure
        Its figure.
    scatter_ : matplotlib PathCollection
        The points, one per subset.

    See Also
    --------
    skrelatif.validation.linear_datamodeling_score : The refits behind ``actual``.
    RemovalCurveDisplay : Test-loss change against the fraction removed.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skrelatif import LinearDatamodelingDisplay
    >>> display = LinearDatamodelingDisplay(
    ...     [0.1, 0.3, 0.2, 0.5], [1.0, 1.4, 1.1, 1.3], name="IF"
    ... ).plot()
    >>> display.ax_.get_legend().get_texts()[0].get_text()
    'IF (Spearman ρ = 0.800)'
    """

    def __init__(
        self,
        predicted: Any,
        actual: Any,
        *,
        name: str | None = None,
        quantity: str = _LOSS,
    ) -> None:
        self.predicted = predicted
        self.actual = actual
        self.name = name
        self.quantity = quantity
        predicted = np.asarray(predicted, dtype=float)
        actual = np.asarray(actual, dtype=float)
        if predicted.ndim != 1 or predicted.shape != actual.shape:
            raise ValueError(
                "predicted and actual must be 1-d arrays of the same length (one "
                f"value per subset); got shapes {predicted.shape} and "
                f"{actual.shape}. For a result of linear_datamodeling_score use "
                "LinearDatamodelingDisplay.from_result(result, test_index=...)."
            )
        if predicted.size < 2:
            raise ValueError("predicted and actual need at least 2 subsets.")
        if not (np.isfinite(predicted).all() and np.isfinite(actual).all()):
            raise ValueError("predicted and actual must be finite (no NaN or inf).")
        self._points = predicted, actual
        constant = np.ptp(predicted) == 0 or np.ptp(actual) == 0
        self.spearman_ = (
            np.nan if constant else float(stats.spearmanr(predicted, actual).statistic)
        )

    def plot(
        self, *, ax: Any = None, name: str | None = None, **scatter_kwargs: Any
    ) -> LinearDatamodelingDisplay:
        """Draw the scatter plot.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            ``None``: a new figure.
        name : str, default=None
            Legend name; overrides the one given at construction.
        **scatter_kwargs
            Passed to :meth:`matplotlib.axes.Axes.scatter`.

        Returns
        -------
        display : LinearDatamodelingDisplay
            With ``ax_``, ``figure_`` and ``scatter_``.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(5, 5), layout="constrained")
        predicted, actual = self._points
        name = name if name is not None else self.name
        stat = f"Spearman ρ = {self.spearman_:.3f}"
        label = f"{name} ({stat})" if name else stat
        self.scatter_ = ax.scatter(
            predicted, actual, label=label, **{"s": 14, "alpha": 0.8, **scatter_kwargs}
        )
        from matplotlib.ticker import ScalarFormatter

        for axis in ("x", "y"):  # short ticks: a common factor below 0.01
            formatter = getattr(ax, f"{axis}axis").get_major_formatter()
            if isinstance(formatter, ScalarFormatter):
                ax.ticklabel_format(axis=axis, style="sci", scilimits=(-2, 3))
        xlabel, ylabel = _LABELS.get(
            self.quantity,
            (
                f"Predicted change of {self.quantity}",
                f"{self.quantity} after the refit",
            ),
        )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(loc="upper left")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_result(
        cls,
        result: Any,
        *,
        test_index: int = 0,
        name: str | None = None,
        quantity: str = _LOSS,
        ax: Any = None,
        **scatter_kwargs: Any,
    ) -> LinearDatamodelingDisplay:
        """Plot one test point of a linear datamodeling score result.

        Parameters
        ----------
        result : Bunch
            A :func:`~skrelatif.validation.linear_datamodeling_score` result
            (``predicted`` and ``actual`` of shape (n_subsets, n_test)).
        test_index : int, default=0
            Which test point (a column of ``predicted`` and ``actual``).
        name : str, default=None
            Legend name.
        quantity : str, default="test loss"
            The tracked output (``"minus the prediction"`` for a regressor
            explained without targets).
        ax : matplotlib Axes, default=None
            Where to draw (``None``: a new figure).
        **scatter_kwargs
            Passed to :meth:`matplotlib.axes.Axes.scatter`.

        Returns
        -------
        display : LinearDatamodelingDisplay
            The display, drawn, with ``lds_`` and ``test_index``.
        """
        check_matplotlib_support(f"{cls.__name__}.from_result")
        if not (hasattr(result, "predicted") and hasattr(result, "actual")):
            raise TypeError(
                "result must be a result of skrelatif.validation."
                "linear_datamodeling_score (a Bunch with predicted and actual); "
                f"got {type(result).__name__}."
            )
        predicted = np.asarray(result.predicted, dtype=float)
        actual = np.asarray(result.actual, dtype=float)
        if predicted.ndim != 2 or predicted.shape != actual.shape:
            raise ValueError(
                "result.predicted and result.actual must have the same shape "
                f"(n_subsets, n_test); got {predicted.shape} and {actual.shape}."
            )
        n_test = predicted.shape[1]
        if (
            not isinstance(test_index, Integral)
            or isinstance(test_index, bool)
            or not 0 <= test_index < n_test
        ):
            raise ValueError(
                f"test_index must be an int in [0, {n_test}) (the result has "
                f"{n_test} test points); got {test_index!r}."
            )
        display = cls(
            predicted[:, test_index],
            actual[:, test_index],
            name=name,
            quantity=quantity,
        )
        display.lds_ = result
        display.test_index = int(test_index)
        return display.plot(ax=ax, **scatter_kwargs)

    @classmethod
    def from_explainer(
        cls,
        explainer: Any,
        X_test: Any,
        y_test: Any = None,
        *,
        test_index: int = 0,
        subsets: Any = None,
        n_subsets: int = 100,
        alpha: float = 0.5,
        random_state: Any = None,
        n_jobs: int | None = None,
        name: str | None = None,
        ax: Any = None,
        **scatter_kwargs: Any,
    ) -> LinearDatamodelingDisplay:
        """Refit on subsets, predict their outputs and plot one test point.

        Runs :func:`~skrelatif.validation.linear_datamodeling_score` on all
        of ``X_test`` (its ``score`` is the mean over them, in ``lds_``) and
        draws the test point ``test_index``.

        Parameters
        ----------
        explainer : InfluenceExplainer
            Fitted.
        X_test : {array-like, sparse matrix} of shape (n_test, n_features)
            Test points whose outputs are tracked.
        y_test : array-like of shape (n_test,) or None, default=None
            Their labels or targets (``None``: the model's predictions, for a
            regressor its prediction itself).
        test_index : int, default=0
            Which test point to draw.
        subsets : array-like of bool of shape (n_subsets, n_train), default=None
            The refit subsets (True = kept), used as given; ``None`` draws
            ``n_subsets`` subsets of ``alpha`` of the training set.
        n_subsets : int, default=100
            Subsets drawn when ``subsets`` is None.
        alpha : float in (0, 1), default=0.5
            Fraction of the training set each drawn subset keeps.
        random_state : int, RandomState instance or None, default=None
            Seeds the drawing of the subsets.
        n_jobs : int, default=None
            Jobs for the refits.
        name : str, default=None
            Legend name (default: the method's).
        ax : matplotlib Axes, default=None
            Where to draw (``None``: a new figure).
        **scatter_kwargs
            Passed to :meth:`matplotlib.axes.Axes.scatter`.

        Returns
        -------
        display : LinearDatamodelingDisplay
            The display, drawn, with ``lds_`` and ``test_index``.
        """
        from ..validation import linear_datamodeling_score

        check_matplotlib_support(f"{cls.__name__}.from_explainer")
        n_test = np.shape(X_test)[0] if hasattr(X_test, "shape") else len(X_test)
        if (
            not isinstance(test_index, Integral)
            or isinstance(test_index, bool)
            or not 0 <= test_index < n_test
        ):
            raise ValueError(
                f"test_index must be an int in [0, {n_test}) (X_test has {n_test} "
                f"rows); got {test_index!r}."
            )
        result = linear_datamodeling_score(
            explainer,
            X_test,
            y_test,
            subsets=subsets,
            n_subsets=n_subsets,
            alpha=alpha,
            random_state=random_state,
            n_jobs=n_jobs,
        )
        if name is None:
            name = method_name(explainer.method)
        regressor = not hasattr(explainer, "classes_")
        quantity = _MINUS_PREDICTION if regressor and y_test is None else _LOSS
        return cls.from_result(
            result,
            test_index=test_index,
            name=name,
            quantity=quantity,
            ax=ax,
            **scatter_kwargs,
        )

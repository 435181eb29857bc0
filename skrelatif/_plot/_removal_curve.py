"""Test-output change against the fraction of the training set removed
(:class:`RemovalCurveDisplay`): the removal experiment of Brophy et al. (2023)
drawn as one line per method, beside the random baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from ._common import check_matplotlib_support

#: The axis label of the tracked output's change (``removal_curve``'s ``change``).
_LOSS_CHANGE = "test loss change"
#: What a regressor explained without targets tracks: minus its prediction.
_PREDICTION_DROP = "drop of the prediction"


def _mean_curve(change: Any, n_fractions: int, what: str) -> np.ndarray:
    """Mean over test points of a ``removal_curve`` change, (n_fractions,)."""
    change = np.asarray(change, dtype=float)
    if change.ndim == 1:
        change = change[None]
    if change.ndim != 2 or change.shape[1] != n_fractions:
        raise ValueError(
            f"{what} must have shape (n_test, n_fractions) or (n_fractions,) with "
            f"n_fractions={n_fractions} (one value per fraction); got shape "
            f"{np.shape(change)}."
        )
    if not np.isfinite(change).all():
        raise ValueError(f"{what} must be finite (no NaN or inf).")
    return change.mean(axis=0)


def _check_result(result: Any, name: str) -> None:
    missing = [
        key
        for key in ("fractions", "change", "random_change")
        if not hasattr(result, key)
    ]
    if missing:
        raise TypeError(
            f"results[{name!r}] must be a result of "
            "skrelatif.validation.removal_curve (a Bunch with fractions, change "
            f"and random_change); it has no {', '.join(missing)}."
        )


class RemovalCurveDisplay:
    """Test-loss change against the fraction of the training set removed.

    The removal experiment of Brophy et al. (2023), as computed by
    :func:`skrelatif.validation.removal_curve`: for each fraction, the top
    proponents of each test point are removed and the model refit; the
    display draws the change of the test loss, averaged over the test points,
    against the fraction removed, one solid line per method, and the same
    refits without as many random examples as a dashed line. A method whose
    proponents matter lies above the random baseline.

    It is recommended to build the display with :meth:`from_explainers` or
    :meth:`from_results`; all parameters are stored as attributes. Everything
    is computed when the display is built; :meth:`plot` only draws.

    Parameters
    ----------
    fractions : array-like of shape (n_fractions,)
        Fractions of the training set removed (the x axis).
    curves : dict of str to array-like of shape (n_fractions,) or (n_test, n_fractions)
        Change of the tracked output per fraction, one line per entry (its
        key is the legend name); a 2-d array (``removal_curve``'s ``change``)
        is averaged over the test points.
    random_curve : array-like of shape (n_fractions,) or (n_test, n_fractions)
        The random baseline's change per fraction, averaged in the same way
        (default ``None``: not drawn).
    quantity : str, default="test loss change"
        What changes (the y axis label); :meth:`from_explainers` and
        :meth:`from_results` name it ``"drop of the prediction"`` for a
        regressor explained without targets.

    Attributes
    ----------
    results_ : dict of str to Bunch
        The :func:`~skrelatif.validation.removal_curve` results, one per
        method (only when built with :meth:`from_explainers` or
        :meth:`from_results`).
    ax_ : matplotlib Axes
        The Axes drawn on (set by :meth:`plot`).
    figure_ : matplotlib Figure
        Its figure.
    lines_ : dict of str to matplotlib Line2D
        One line per method.
    random_line_ : matplotlib Line2D or None
        The dashed random baseline, if drawn.

    See Also
    --------
    skrelatif.validation.removal_curve : The refits behind the curves.
    LinearDatamodelingDisplay : Predicted against actual outputs of refits.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skrelatif import RemovalCurveDisplay
    >>> display = RemovalCurveDisplay(
    ...     [0.01, 0.05], {"IF": [0.2, 0.9]}, random_curve=[0.0, 0.05]
    ... ).plot()
    >>> display.lines_["IF"].get_ydata().tolist()
    [0.2, 0.9]
    >>> display.random_line_.get_linestyle()
    '--'
    """

    def __init__(
        self,
        fractions: Any,
        curves: Mapping[str, Any],
        random_curve: Any = None,
        *,
        quantity: str = _LOSS_CHANGE,
    ) -> None:
        self.fractions = fractions
        self.curves = curves
        self.random_curve = random_curve
        self.quantity = quantity
        fractions = np.asarray(fractions, dtype=float).ravel()
        if fractions.size == 0 or not np.isfinite(fractions).all():
            raise ValueError(
                "fractions must hold at least one finite fraction of the training "
                f"set; got {self.fractions!r}."
            )
        if not isinstance(curves, Mapping) or not curves:
            raise TypeError(
                "curves must be a non-empty dict of a legend name to the mean "
                "change per fraction, e.g. {'IF': change.mean(axis=0)}; got "
                f"{type(curves).__name__}."
            )
        n = fractions.size
        self._x = fractions
        self._curves = {
            str(key): _mean_curve(value, n, f"curves[{key!r}]")
            for key, value in curves.items()
        }
        self._random = (
            None
            if random_curve is None
            else _mean_curve(random_curve, n, "random_curve")
        )

    def plot(self, *, ax: Any = None, **line_kwargs: Any) -> RemovalCurveDisplay:
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            ``None``: a new figure.
        **line_kwargs
            Passed to :meth:`matplotlib.axes.Axes.plot` for every method's
            line (not the random baseline).

        Returns
        -------
        display : RemovalCurveDisplay
            With ``ax_``, ``figure_``, ``lines_`` and ``random_line_``.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
        percent = 100 * self._x
        self.lines_ = {}
        for name, curve in self._curves.items():
            (self.lines_[name],) = ax.plot(
                percent, curve, label=name, **{"marker": "o", **line_kwargs}
            )
        self.random_line_ = None
        if self._random is not None:
            (self.random_line_,) = ax.plot(
                percent,
                self._random,
                linestyle="--",
                marker="o",
                color="0.45",
                label="random",
            )
        ax.axhline(0.0, color="0.8", linewidth=0.8, zorder=0)
        if percent.size > 1 and percent.max() / percent.min() >= 10:
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")  # ticks at the fractions, written plainly
            ax.set_xticks(percent, labels=[f"{p:g}" for p in percent])
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("Training examples removed (%)")
        ax.set_ylabel(f"Mean {self.quantity}")
        ax.legend(loc="best")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_results(
        cls,
        results: Mapping[str, Any],
        *,
        quantity: str = _LOSS_CHANGE,
        ax: Any = None,
        **line_kwargs: Any,
    ) -> RemovalCurveDisplay:
        """Plot given :func:`~skrelatif.validation.removal_curve` results.

        Parameters
        ----------
        results : dict of str to Bunch
            One :func:`~skrelatif.validation.removal_curve` result per
            method (its key is the legend name), all with the same
            ``fractions``. The random baseline drawn is the first result's
            (results computed with the same ``random_state`` on the same
            training set share it).
        quantity : str, default="test loss change"
            What changes (the y axis label); ``"drop of the prediction"``
            for a regressor explained without targets.
        ax : matplotlib Axes, default=None
            Where to draw (``None``: a new figure).
        **line_kwargs
            Passed to :meth:`matplotlib.axes.Axes.plot` for every method.

        Returns
        -------
        display : RemovalCurveDisplay
            The display, drawn, with ``results_``.
        """
        check_matplotlib_support(f"{cls.__name__}.from_results")
        if not isinstance(results, Mapping) or not results:
            raise TypeError(
                "results must be a non-empty dict of a legend name to a "
                "removal_curve result, e.g. {'IF': removal_curve(explainer, X, y)}; "
                f"got {type(results).__name__}."
            )
        for name, result in results.items():
            _check_result(result, name)
        first = next(iter(results.values()))
        fractions = np.asarray(first.fractions, dtype=float)
        for name, result in results.items():
            other = np.asarray(result.fractions, dtype=float)
            if other.shape != fractions.shape or not np.array_equal(other, fractions):
                raise ValueError(
                    f"results[{name!r}] has fractions {other.tolist()}, the first "
                    f"result {fractions.tolist()}; compute every curve with the "
                    "same fractions."
                )
        display = cls(
            fractions,
            {name: result.change for name, result in results.items()},
            first.random_change,
            quantity=quantity,
        )
        display.results_ = dict(results)
        return display.plot(ax=ax, **line_kwargs)

    @classmethod
    def from_explainers(
        cls,
        explainers: Mapping[str, Any],
        X_test: Any,
        y_test: Any = None,
        *,
        fractions: Any = (0.001, 0.005, 0.01, 0.02, 0.05),
        random_state: Any = None,
        n_jobs: int | None = None,
        ax: Any = None,
        **line_kwargs: Any,
    ) -> RemovalCurveDisplay:
        """Remove each explainer's top proponents, refit, and plot the curves.

        Runs :func:`~skrelatif.validation.removal_curve` once per explainer,
        with the same ``random_state`` (so all share one random baseline).
        A :class:`~skrelatif.NearestNeighborExplainer` is a baseline: its
        nearest neighbours are removed and the model refit as for the first
        :class:`~skrelatif.InfluenceExplainer` of ``explainers`` (it must be
        fitted on the same model and training data).

        Parameters
        ----------
        explainers : dict of str to explainer
            Fitted :class:`~skrelatif.InfluenceExplainer` (at least one) or
            :class:`~skrelatif.NearestNeighborExplainer` of one model and
            training set; the keys are the legend names.
        X_test : {array-like, sparse matrix} of shape (n_test, n_features)
            Test points whose outputs are tracked.
        y_test : array-like of shape (n_test,) or None, default=None
            Their labels or targets (``None``: the model's predictions, for a
            regressor its prediction itself).
        fractions : array-like of float, default=(0.001, 0.005, 0.01, 0.02, 0.05)
            Fractions of the training set to remove, in (0, 1].
        random_state : int, RandomState instance or None, default=None
            Seeds the random baseline (the same for every explainer).
        n_jobs : int, default=None
            Jobs for the refits.
        ax : matplotlib Axes, default=None
            Where to draw (``None``: a new figure).
        **line_kwargs
            Passed to :meth:`matplotlib.axes.Axes.plot` for every method.

        Returns
        -------
        display : RemovalCurveDisplay
            The display, drawn, with ``results_``.
        """
        from .._explainer import InfluenceExplainer
        from .._neighbors import NearestNeighborExplainer
        from ..validation import _check_fractions, removal_curve

        check_matplotlib_support(f"{cls.__name__}.from_explainers")
        if not isinstance(explainers, Mapping) or not explainers:
            raise TypeError(
                "explainers must be a non-empty dict of a legend name to a fitted "
                "explainer, e.g. {'IF': InfluenceExplainer(model, method='if')"
                f".fit(X, y)}}; got {type(explainers).__name__}."
            )
        bad = [
            name
            for name, explainer in explainers.items()
            if not isinstance(explainer, (InfluenceExplainer, NearestNeighborExplainer))
        ]
        if bad:
            raise TypeError(
                f"explainers {bad} are not InfluenceExplainer or "
                "NearestNeighborExplainer instances."
            )
        refit = next(
            (e for e in explainers.values() if isinstance(e, InfluenceExplainer)), None
        )
        if refit is None:
            raise ValueError(
                "explainers must include an InfluenceExplainer: it supplies the "
                "model refit after each removal (a NearestNeighborExplainer only "
                "ranks the training examples)."
            )
        # one feature out per training example, as get_feature_names_out says
        n_train = refit._n_features_out
        fractions, sizes = _check_fractions(fractions, n_train)
        if not isinstance(random_state, Integral):
            # one seed for every curve, so that all share the random baseline
            random_state = int(check_random_state(random_state).randint(2**31 - 1))
        results = {}
        for name, explainer in explainers.items():
            proponents = None
            if isinstance(explainer, NearestNeighborExplainer):
                n_neighbor_train = explainer._n_features_out
                if n_neighbor_train != n_train:
                    raise ValueError(
                        f"explainers[{name!r}] was fitted on {n_neighbor_train} "
                        f"training examples, the InfluenceExplainer on {n_train}; "
                        "fit both on the same model and training data."
                    )
                k = int(sizes.max())
                proponents = explainer.explain(X_test, y_test, k=k).proponents
                explainer = refit
            results[name] = removal_curve(
                explainer,
                X_test,
                y_test,
                fractions=fractions,
                n_jobs=n_jobs,
                random_state=random_state,
                proponents=proponents,
            )
        regressor = not hasattr(refit, "classes_")
        quantity = _PREDICTION_DROP if regressor and y_test is None else _LOSS_CHANGE
        return cls.from_results(results, quantity=quantity, ax=ax, **line_kwargs)

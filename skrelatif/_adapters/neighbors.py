"""Adapter for k-nearest neighbours: :class:`~sklearn.neighbors.KNeighborsClassifier`
and :class:`~sklearn.neighbors.KNeighborsRegressor` (weights ``"uniform"``,
``"distance"`` or a callable; every metric the model has, ``"precomputed"``
included).

The model is a sum over training examples
------------------------------------------
For a query ``x`` with nearest training examples ``N_k(x)`` (the model's own
``kneighbors``, so its metric, algorithm and tie order) and weights
``w_j(x)`` (1 for ``"uniform"``; ``1/d_j`` for ``"distance"``, or, when some
neighbours are at distance 0, 1 for those and 0 for the others, as
scikit-learn does; ``weights(d)`` for a callable), the raw output is ::

    f(x) = sum_{j in N_k(x)} w_j(x) / W(x) * y_j,     W(x) = sum_{j in N_k(x)} w_j(x)

with ``y_j`` the target (regressor: ``predict``) or the one-hot row of the
class (classifier: the columns of ``predict_proba``, one per class, also for
two classes). ``decompose(X)[t, j] = w_j(x_t) / W(x_t) y_j`` for ``j`` in
``N_k(x_t)`` and 0 for every other example: shape (n_test, n_train) for a
regressor, (n_test, n_train, n_classes) for a classifier, and
``baseline_ = 0``.

Exact removal
-------------
Removing training example ``i`` and refitting changes the output at ``x``
only if ``i`` is one of its ``k`` neighbours; then the ``(k+1)``-th
neighbour steps in and the weights are recomputed on the new set (the
zero-distance rule included). So one ``kneighbors`` query with ``k + 1``
neighbours gives, for each of the ``k`` positions ``p``, the output without
that neighbour, ``f_{-p}(x)``, and ``Δ_i f(x) = f_{-p}(x) - f(x)``. Removing a
group ``G`` together queries ``k + |G|`` neighbours and keeps the first ``k``
that are not in ``G``. Ties in distance are ordered as the fitted model's
``kneighbors`` orders them; a refit on fewer rows can break an exact tie at
the ``k``-th distance differently (it never matters for distinct distances).
A removal that leaves a class with no training example keeps that class's
column (probability 0).

Losses
------
Regressors: ``l = (y - f)^2`` (the explained prediction without given
targets, as for every regressor: spec section 5). Classifiers: the log-loss
of the explained label ``c``, ``l = -log(max(p_c, eps))`` with ``eps`` the
float64 machine epsilon (2.2e-16), the clipping of
:func:`sklearn.metrics.log_loss`: a label that no neighbour has costs
``-log(eps) = 36.04`` instead of infinity, and no score is NaN or infinite.

Training points: the convention
-------------------------------
The output at a training point ``x_i`` is what the model predicts there:
``predict(X_train)`` queries ``kneighbors(X_train)``, in which ``x_i`` is its
own nearest neighbour (distance 0; with ``"distance"`` weights it then takes
all the weight, unless it has duplicates). ``loo_loss_`` / ``loo_outputs``
are the outputs at ``x_i`` of the model refit without row ``i``: its ``k``
nearest other examples (what ``kneighbors()`` without ``X`` returns).

Scores
------
With ``g_t = dl_t/df`` at the current output (regressors explained without
``y``: ``g_t = -1``, so that a positive score means ``i`` pushes the
prediction up; classifiers: ``-1 / max(p_c, eps)`` on the explained class)::

    "newton"        score[t, i] = l_t(f(x_t) + Δ_i f(x_t)) - l_t(f(x_t))   (exact)
    "if"            score[t, i] = g_t . Δ_i f(x_t)   (the loss linearised)
    "theta-relatif" score[t, i] = "if" / ||Δ_i F||
    "l-relatif"     score[t, i] = "if" / sqrt(|g_i . Δ_i f(x_i)|)

The removal is exact in every method; ``"if"`` linearises the loss only.
Positive = removing ``i`` raises the test loss (a proponent). A k-neighbours
model has no parameters, so RelatIF takes as parameters its outputs at the
training points, ``F = (f(x_j))_j``: ``||Δ_i F||`` is the Frobenius norm of
the change of every training point's output when ``i`` is removed (over the
points that have ``i`` among their ``k`` neighbours), and ``g_i . Δ_i f(x_i)``
is ``i``'s ``"if"`` score for itself (``self_influence_``, with its own
label). An example whose norm is 0 (removing it changes nothing, e.g. when
its replacement has its label) scores 0. ``"if"`` and ``"newton"`` coincide
for a regressor's prediction (the output is the explained quantity).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from ._base import SumAdapter

#: Probabilities are clipped at this value in the log-loss (as
#: ``sklearn.metrics.log_loss`` clips them).
EPS = float(np.finfo(np.float64).eps)
#: Training rows on which the model is checked against the X, y given to fit.
_N_CHECKED = 64


def neighbour_weights(distances: np.ndarray, weights: Any) -> np.ndarray:
    """The weights ``w_j`` of neighbours at ``distances`` (rows: queries), as
    scikit-learn weighs them (``"distance"``: ``1/d``, or 1 at distance 0 and
    0 elsewhere in a row with a zero distance).

    Examples
    --------
    >>> import numpy as np
    >>> neighbour_weights(np.array([[1.0, 2.0], [0.0, 3.0]]), "distance")
    array([[1. , 0.5],
           [1. , 0. ]])
    """
    distances = np.asarray(distances, dtype=np.float64)
    if weights in (None, "uniform"):
        return np.ones_like(distances)
    if weights == "distance":
        zero = distances == 0
        with np.errstate(divide="ignore"):
            result = 1.0 / distances
        rows = zero.any(axis=-1)
        result[rows] = zero[rows]
        return result
    return np.asarray(weights(distances), dtype=np.float64)


def _average(distances: np.ndarray, index: np.ndarray, Y: np.ndarray, weights: Any):
    """``sum_j w_j y_j / sum_j w_j`` over the last axis of ``distances`` /
    ``index`` (any leading shape), ``Y`` (n_train, K) the targets."""
    w = neighbour_weights(distances, weights)
    total = w.sum(axis=-1, keepdims=True)
    share = w / np.where(total > 0, total, 1.0)
    return np.einsum("...j,...jk->...k", share, Y[index])


def _drop_one(k: int) -> np.ndarray:
    """(k, k) positions of a (k+1)-neighbour list without position ``p < k``."""
    positions = np.arange(k + 1)
    return np.stack([np.delete(positions, p) for p in range(k)])


class NeighborsAdapter(SumAdapter):
    """k-nearest-neighbour models as sums over their training examples, with
    exact removal (see the module docstring for the formulas).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neighbors import KNeighborsRegressor
    >>> from skrelatif._adapters.neighbors import NeighborsAdapter
    >>> X = np.array([[0.0], [1.0], [2.0], [4.0]])
    >>> y = np.array([0.0, 1.0, 2.0, 4.0])
    >>> model = KNeighborsRegressor(n_neighbors=2).fit(X, y)
    >>> adapter = NeighborsAdapter(model).bind(X, y, None)
    >>> adapter.decompose(np.array([[1.4]]))  # (1 + 2) / 2 = predict
    array([[0. , 0.5, 1. , 0. ]])

    Without example 2, the third neighbour (x = 0) steps in: 0.5 instead of 1.5.

    >>> adapter.removal_outputs(np.array([[1.4]]), [np.array([2])])[0, 0]
    array([0.5])
    """

    estimator_types = (KNeighborsClassifier, KNeighborsRegressor)
    methods = ("if", "theta-relatif", "l-relatif", "newton")
    decomposes = "predict (regressors), predict_proba (classifiers)"
    tight_retraining = False
    curvature_note = (
        "a k-neighbours model has no parameters and no curvature: its scores are "
        "exact removals (the (k+1)-th neighbour steps in), with nothing to choose "
        "or approximate"
    )
    objective = "none (f(x) = sum over the k nearest of w_j(x) y_j / sum w_j(x))"
    loss = "(y - f)^2; classifiers: -log p_y, p clipped at machine epsilon"
    notes = (
        "weights 'uniform', 'distance' or callable; every metric incl. "
        "precomputed; removal exact: the (k+1)-th neighbour steps in"
    )

    def __init__(self, estimator: Any) -> None:
        super().__init__(estimator)
        # Every query runs on a private copy: a search tree counts its calls,
        # so querying the user's model would change it.
        self.model_ = copy.deepcopy(estimator)

    def check_estimator(self) -> None:
        est = self.estimator
        if getattr(est, "outputs_2d_", False) or np.ndim(getattr(est, "_y", ())) > 1:
            raise ValueError(
                f"{type(est).__name__} was fitted on a 2-d target (several "
                "outputs); explain one output at a time: fit one model per "
                "target column."
            )

    # -- the model -------------------------------------------------------------------
    @property
    def k(self) -> int:
        return int(self.estimator.n_neighbors)

    @property
    def n_outputs(self) -> int:  # type: ignore[override]
        return 1 if self.is_regressor else len(self.estimator.classes_)

    def predict_target(self, X: Any) -> np.ndarray:
        return self.encode_target(self.model_.predict(X), what="the predictions")

    def outputs(self, X: Any) -> np.ndarray:
        """``predict`` as (n, 1) (regressors) or ``predict_proba`` (classifiers)."""
        if self.is_regressor:
            return np.asarray(self.model_.predict(X), dtype=np.float64)[:, None]
        return np.asarray(self.model_.predict_proba(X), dtype=np.float64)

    def output_losses(self, F: np.ndarray, y_encoded: np.ndarray) -> np.ndarray:
        if self.is_regressor:
            return (np.asarray(y_encoded, dtype=np.float64) - F[:, 0]) ** 2
        p = F[np.arange(len(F)), y_encoded]
        return -np.log(np.maximum(p, EPS))

    def losses(self, X: Any, y_encoded: np.ndarray) -> np.ndarray:
        return self.output_losses(self.outputs(X), y_encoded)

    def _output_gradient(self, F: np.ndarray, y_encoded: np.ndarray | None):
        """``g = dl/df`` (n, K) at outputs ``F``; ``y_encoded=None``: -1 (the
        prediction of a regressor, sign flipped)."""
        if y_encoded is None:
            return -np.ones_like(F)
        if self.is_regressor:
            return 2.0 * (F - np.asarray(y_encoded, dtype=np.float64)[:, None])
        g = np.zeros_like(F)
        rows = np.arange(len(F))
        g[rows, y_encoded] = -1.0 / np.maximum(F[rows, y_encoded], EPS)
        return g

    def _loss_changes(self, F, delta, y_encoded):
        """Exact change of the loss when the outputs ``F`` (n, K) move by
        ``delta`` (n, m, K): (n, m); ``y_encoded=None``: minus the change of
        the prediction."""
        if y_encoded is None:
            return -delta[:, :, 0]
        if self.is_regressor:
            residual = np.asarray(y_encoded, dtype=np.float64) - F[:, 0]
            d = delta[:, :, 0]
            return d * (d - 2.0 * residual[:, None])  # (r - d)^2 - r^2
        rows = np.arange(len(F))
        p = F[rows, y_encoded]
        after = p[:, None] + delta[rows, :, y_encoded]
        return np.log(np.maximum(p, EPS))[:, None] - np.log(np.maximum(after, EPS))

    # -- the training data -------------------------------------------------------------
    def sample_weights(self, y_encoded, sample_weight):
        if sample_weight is not None:
            raise ValueError(
                f"{type(self.estimator).__name__} has no sample weights; call fit "
                "without sample_weight."
            )
        return np.ones(len(y_encoded))

    def check_training_data(self, X, y_encoded) -> None:
        est = self.estimator
        name = type(est).__name__
        n_fit = int(est.n_samples_fit_)
        if X.shape[0] != n_fit:
            raise ValueError(
                f"{name} was fitted on {n_fit} samples, but X has {X.shape[0]} "
                "rows. Pass exactly the X, y the model was trained on, in order."
            )
        rows = np.linspace(0, n_fit - 1, min(_N_CHECKED, n_fit)).astype(int)
        distances, _ = self.model_.kneighbors(X[rows], n_neighbors=min(2, n_fit))
        # each training row is at distance 0 of a row of the model's data (up
        # to rounding: sqrt(eps) |x| for euclidean distances), and the outputs
        # computed from y are the model's
        computed = self._outputs_from(X[rows], self._target_rows(y_encoded))
        scale = max(1.0, float(distances.max()), float(abs(X[rows]).max()))
        zero = distances[:, 0] <= 1e-6 * scale
        if not np.all(zero) or not np.allclose(
            computed, self.outputs(X[rows]), rtol=1e-10, atol=1e-12
        ):
            raise ValueError(
                f"The {name} does not match the X, y given to fit: its "
                "neighbours index the training data, so pass exactly the X, y "
                "the model was trained on, in the same order."
            )

    def _target_rows(self, y_encoded: np.ndarray) -> np.ndarray:
        """``Y`` (n_train, K): the targets, or the one-hot rows of the classes."""
        if self.is_regressor:
            return np.asarray(y_encoded, dtype=np.float64)[:, None]
        return np.eye(self.n_outputs)[y_encoded]

    def _outputs_from(self, X, Y) -> np.ndarray:
        distances, index = self.model_.kneighbors(X)
        return _average(distances, index, Y, self.estimator.weights)

    def _candidates(self, X, y_encoded, sample_weight):
        """Every training example can be a neighbour; the bound copy keeps
        ``Y_`` (targets or one-hot classes), ``baseline_`` (0) and
        ``train_removals_`` (:meth:`_removals` of the training points)."""
        self.Y_ = self._target_rows(y_encoded)
        self.baseline_ = 0.0 if self.is_regressor else np.zeros(self.n_outputs)
        # the training points' neighbours and removals (RelatIF, loo_outputs)
        self.train_removals_ = self._removals(X) if X.shape[0] > self.k else None
        return np.arange(X.shape[0])

    # -- decomposition -----------------------------------------------------------------
    def decompose(self, X: Any) -> np.ndarray:
        """``w_j(x_t) / W(x_t) y_j`` (module docstring): (n_test, n_train) for
        a regressor, (n_test, n_train, n_classes) for a classifier."""
        Y = self._bound("Y_")
        distances, index = self.model_.kneighbors(X)
        w = neighbour_weights(distances, self.estimator.weights)
        total = w.sum(axis=1, keepdims=True)
        share = w / np.where(total > 0, total, 1.0)
        out = np.zeros((X.shape[0], self.n_train_, Y.shape[1]))
        rows = np.arange(X.shape[0])[:, None]
        out[rows, index] = share[:, :, None] * Y[index]
        return out[:, :, 0] if self.is_regressor else out

    # -- exact removal -----------------------------------------------------------------
    def _check_removable(self, size: int) -> None:
        if self.n_train_ - size < self.k:
            raise ValueError(
                f"Removing {size} of the {self.n_train_} training examples leaves "
                f"fewer than n_neighbors={self.k}: the model cannot be refit "
                "without them."
            )

    def _removals(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For queries X: the k neighbours (n, k), the outputs (n, K) and the
        change of the outputs without each of them, ``Δ`` (n, k, K)."""
        self._check_removable(1)
        k, Y = self.k, self._bound("Y_")
        distances, index = self.model_.kneighbors(X, n_neighbors=k + 1)
        F = _average(distances[:, :k], index[:, :k], Y, self.estimator.weights)
        drop = _drop_one(k)
        removed = _average(
            distances[:, drop], index[:, drop], Y, self.estimator.weights
        )
        return index[:, :k], F, removed - F[:, None, :]

    def removal_outputs(self, X: Any, groups: list) -> np.ndarray:
        """Outputs of X (n_test, n_groups, K) after removing each group."""
        groups = [np.unique(np.asarray(g, dtype=np.intp)) for g in groups]
        largest = max((len(g) for g in groups), default=0)
        self._check_removable(largest)
        k, Y = self.k, self._bound("Y_")
        m = min(k + largest, self.n_train_)
        distances, index = self.model_.kneighbors(X, n_neighbors=m)
        out = np.empty((X.shape[0], len(groups), Y.shape[1]))
        for g, group in enumerate(groups):
            kept = ~np.isin(index, group)
            kept &= np.cumsum(kept, axis=1) <= k  # the first k not removed
            out[:, g] = _average(
                distances[kept].reshape(-1, k),
                index[kept].reshape(-1, k),
                Y,
                self.estimator.weights,
            )
        return out

    def _training_removals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`_removals` on the training data (computed when bound)."""
        self._check_removable(1)
        return self._bound("train_removals_")

    def loo_outputs(self) -> np.ndarray:
        """The output at each training point of the model refit without it (n, K)."""
        index, F, delta = self._training_removals()
        own = index == np.arange(self.n_train_)[:, None]  # i among its k neighbours
        loo = F.copy()
        rows, positions = np.nonzero(own)
        loo[rows] += delta[rows, positions]
        return loo

    def self_products(self, rows: np.ndarray) -> np.ndarray:
        """``g_i . Δ_i f(x_i)``: each example's ``"if"`` score for itself."""
        index, F, delta = self._training_removals()
        g = self._output_gradient(F, self.y_)
        own = (index == np.arange(self.n_train_)[:, None])[:, :, None]
        products = np.einsum("ik,ipk->i", g, np.where(own, delta, 0.0))
        return products[rows]

    def self_influence(self) -> np.ndarray:
        return self.self_products(np.arange(self.n_train_))

    def _output_norms(self) -> np.ndarray:
        """``||Δ_i F||`` over the training points (see the module docstring)."""
        index, _, delta = self._training_removals()
        squared = np.bincount(
            index.ravel(),
            weights=np.sum(delta**2, axis=2).ravel(),
            minlength=self.n_train_,
        )
        return np.sqrt(squared)

    def train_scale(self, method: str) -> np.ndarray:
        if method in ("if", "newton"):
            return np.ones(self.n_train_)
        if method == "theta-relatif":
            norm = self._output_norms()
        else:
            norm = np.sqrt(np.abs(self.self_influence()))
        return np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0)

    # -- test side ---------------------------------------------------------------------
    def test_state(self, X, y_encoded, method: str = "if"):
        """The k neighbours of each test point (n, k) and the score of each
        before ``train_scale`` (n, k)."""
        index, F, delta = self._removals(X)
        if method == "newton":
            values = self._loss_changes(F, delta, y_encoded)
        else:
            values = np.einsum("tk,tpk->tp", self._output_gradient(F, y_encoded), delta)
        return index, values, self.n_train_

    def payload(self, rows, method: str = "if"):
        if isinstance(rows, slice):
            return (np.arange(rows.start or 0, rows.stop),)
        return (np.asarray(rows),)

    def cross_function(self, method: str):
        return self.cross

    @staticmethod
    def cross(test_state, rows):
        """The values of the test points' neighbours that are in ``rows``
        (sorted training indices), 0 elsewhere: (n_test, len(rows))."""
        index, values, _ = test_state
        out = np.zeros((index.shape[0], len(rows)))
        position = np.clip(np.searchsorted(rows, index), 0, max(len(rows) - 1, 0))
        hit = rows[position] == index if len(rows) else np.zeros(index.shape, bool)
        t, p = np.nonzero(hit)
        out[t, position[t, p]] = values[t, p]
        return out

    def test_row_bytes(self) -> int:
        return 8 * 4 * (self.k + 1) ** 2 * self.n_outputs

    def dot_bytes_per_pair(self) -> int:
        return 8

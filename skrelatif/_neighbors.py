"""The nearest-neighbour baseline, :class:`NearestNeighborExplainer`."""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
from scipy import sparse
from scipy.spatial.distance import cdist
from sklearn.base import _fit_context, is_regressor
from sklearn.metrics import euclidean_distances
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from ._adapters._base import encode_labels
from ._base import _BaseExplainer, _final_step
from ._explanation import Explanation
from ._scoring import best_k
from ._utils import chunk_slices, parallel_map


def _distances(X: Any, Y: Any) -> np.ndarray:
    """Euclidean distances, each computed on its own (exact 0 for equal rows)."""
    if sparse.issparse(X) or sparse.issparse(Y):
        return euclidean_distances(X, Y)
    return cdist(X, Y)


def _neighbours_chunk(X: Any, Y: Any, k: int):
    distances = _distances(X, Y)
    index = np.arange(Y.shape[0])
    near_index, near = best_k(-distances, index, k)
    far_index, far = best_k(distances, index, k)
    return near_index, near, far_index, -far


class NearestNeighborExplainer(_BaseExplainer):
    """Explain predictions with the nearest training examples (a baseline).

    The score of training example ``i`` for test point ``t`` is minus their
    Euclidean distance in the model's input space, i.e. after the earlier
    steps of a pipeline (a scaler, say): the *proponents* of ``t`` are its
    nearest training examples, whatever their label, and its *opponents* the
    farthest. This is the "Nearest-N" baseline of Barshan et al. (2020,
    Table 4 and Fig. 11). The interface is that of
    :class:`~skrelatif.InfluenceExplainer`, so the two are interchangeable in
    comparisons.

    Parameters
    ----------
    model : estimator
        A classifier (with ``predict`` and ``classes_`` once fitted), or a
        :class:`~sklearn.pipeline.Pipeline` ending in one, or a
        :class:`~sklearn.frozen.FrozenEstimator` of either. A fitted model is
        used as is and never modified or refitted; an unfitted one is cloned
        and fitted in :meth:`fit`. The model supplies the input space (through
        a pipeline's transforms) and the explained labels (its predictions).
    n_jobs : int, default=None
        Number of joblib jobs over chunks of test points (sized by
        scikit-learn's ``working_memory``). Results depend on neither: every
        distance is computed on its own (exactly 0 between equal rows).

    Attributes
    ----------
    estimator_ : estimator
        The fitted model (``model`` itself when it was fitted).
    classes_ : ndarray of shape (n_classes,)
        The model's classes.
    n_features_in_ : int
        Number of features seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when X has feature names that are all strings.

    See Also
    --------
    skrelatif.InfluenceExplainer : Influence-function and RelatIF explanations.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skrelatif import NearestNeighborExplainer
    >>> X, y = load_iris(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    >>> explainer = NearestNeighborExplainer(model).fit(X, y)
    >>> e = explainer.explain(X[:2], k=3)
    >>> e.proponents[:, 0]  # each training point is its own nearest neighbour
    array([0, 1])
    >>> bool((e.proponent_scores <= 0).all())  # scores are minus distances
    True
    >>> explainer.transform(X[:2]).shape
    (2, 150)
    """

    _parameter_constraints: dict = {
        "model": [HasMethods(["fit", "predict"])],
        "n_jobs": [
            Interval(Integral, None, -1, closed="right"),
            Interval(Integral, 1, None, closed="left"),
            None,
        ],
    }

    def __init__(self, model: Any, *, n_jobs: int | None = None) -> None:
        self.model = model
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(
        self, X: Any, y: Any, sample_weight: Any = None
    ) -> NearestNeighborExplainer:
        """Keep the training examples, in the model's input space.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The training data of the model (raw input for a pipeline).
        y : array-like of shape (n_samples,)
            The training labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Only used to fit an unfitted ``model``; distances ignore it.

        Returns
        -------
        self : NearestNeighborExplainer
            The fitted explainer.
        """
        X_checked, y, sample_weight = self._validate_train(X, y, sample_weight)
        estimator = self._fitted_model(X_checked, y, sample_weight)
        final = _final_step(estimator)
        regressor = is_regressor(final) or not hasattr(final, "classes_")
        if not regressor:
            encode_labels(final.classes_, y)  # as InfluenceExplainer does
        X_train = self._final_input(X_checked, estimator)
        self.estimator_ = estimator
        if regressor:
            self.__dict__.pop("classes_", None)
        else:
            self.classes_ = np.asarray(final.classes_)
        self._X_train = X_train
        self._train_target = np.asarray(y)
        self._n_features_out = X_train.shape[0]
        self._set_n_features(X)
        return self

    def _test_input(self, X: Any, y: Any) -> tuple[Any, np.ndarray]:
        Xt = self._test_model_input(X)
        if y is None:
            return Xt, np.asarray(_final_step(self.estimator_).predict(Xt))
        y = self._test_target(Xt, y)
        if hasattr(self, "classes_"):
            encode_labels(self.classes_, y)  # unknown labels: a clear ValueError
        return Xt, y

    def transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Minus the distance from every row of ``X`` to every training example.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_test, n_features)
            The points to explain.
        y : array-like of shape (n_test,), default=None
            Accepted for interface compatibility (checked, then ignored: the
            distances do not depend on the label).

        Returns
        -------
        scores : ndarray of shape (n_test, n_train)
            ``-||x_t - x_i||`` in the model's input space.
        """
        Xt, _ = self._test_input(X, y)
        rows = chunk_slices(Xt.shape[0], 8 * self._X_train.shape[0])
        blocks = parallel_map(
            _distances, ((Xt[r], self._X_train) for r in rows), n_jobs=self.n_jobs
        )
        return -np.vstack(list(blocks))

    def explain(self, X: Any, y: Any = None, k: int = 5) -> Explanation:
        """The ``k`` nearest (proponents) and farthest (opponents) training examples.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_test, n_features)
            The points to explain.
        y : array-like of shape (n_test,), default=None
            The labels reported as explained (``target``); the model's
            predictions when None. They do not change the neighbours.
        k : int, default=5
            How many proponents and opponents to return per point.

        Returns
        -------
        explanation : Explanation
            ``proponents`` (nearest first, scores ``-distance``),
            ``opponents`` (farthest first), ``target`` and ``method =
            "nearest-neighbor"``. Ties go to the smaller training index.
        """
        check_is_fitted(self)
        n_train = self._X_train.shape[0]
        k = self._check_k(k, n_train)
        Xt, target = self._test_input(X, y)
        rows = chunk_slices(Xt.shape[0], 8 * 3 * n_train)
        chunks = parallel_map(
            _neighbours_chunk,
            ((Xt[r], self._X_train, int(k)) for r in rows),
            n_jobs=self.n_jobs,
        )
        top = tuple(np.vstack(parts) for parts in zip(*chunks))
        return self._explanation(
            top, target, "nearest-neighbor", target_given=y is not None
        )

"""The :class:`InfluenceExplainer` estimator."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    clone,
)
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._adapters import METHODS, ModelAdapter, find_adapter
from ._explanation import Explanation
from ._scoring import score_matrix, top_k
from ._solvers import SOLVERS

try:  # scikit-learn >= 1.6
    from sklearn.frozen import FrozenEstimator
except ImportError:  # pragma: no cover
    FrozenEstimator = ()


def _unfreeze(estimator: Any) -> Any:
    while isinstance(estimator, FrozenEstimator):
        estimator = estimator.estimator
    return estimator


def _final_step(model: Any) -> Any:
    model = _unfreeze(model)
    if isinstance(model, Pipeline):
        return _final_step(model.steps[-1][1])
    return model


def _is_fitted(model: Any) -> bool:
    try:
        check_is_fitted(_unfreeze(model))
    except NotFittedError:
        return False
    return True


class _ModelInputMixin:
    """Input validation shared by the explainers of a ``model`` (``self.model``).

    Raw X is checked like the model's own input (as is, for a pipeline) and
    then mapped to the final estimator's input through the pipeline's earlier
    steps.
    """

    def _validate_train(self, X, y, sample_weight):
        """Checked training ``X, y, sample_weight``; sets ``n_features_in_``."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None: fit needs the training labels."
            )
        if isinstance(_unfreeze(self.model), Pipeline):
            validate_data(self, X, skip_check_array=True)
            y = column_or_1d(y, warn=True)
            check_consistent_length(X, y)
        else:
            X, y = self._check_X(X, y=y, reset=True)
        if y.shape[0] == 0:
            raise ValueError("Found an empty y: fit needs at least one sample.")
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, ensure_non_negative=True
            )
        return X, y, sample_weight

    def _fitted_model(self, X, y, sample_weight):
        """``self.model`` if fitted, else a clone of it fitted on ``X, y``."""
        if _is_fitted(self.model):
            return self.model
        estimator = clone(self.model)
        fit_params = {}
        if sample_weight is not None:
            key = "sample_weight"
            if isinstance(_unfreeze(estimator), Pipeline):
                key = f"{estimator.steps[-1][0]}__sample_weight"
            fit_params[key] = sample_weight
        estimator.fit(X, y, **fit_params)
        return estimator

    def _check_X(self, X, *, y=None, reset):
        check_params = dict(
            accept_sparse=("csr", "csc"),
            dtype=(np.float64, np.float32),
            ensure_all_finite=True,
        )
        if y is None:
            return validate_data(self, X, reset=reset, **check_params)
        return validate_data(self, X, y, reset=reset, **check_params)

    def _model_input(self, X, estimator, final):
        """The final estimator's input: X through the pipeline's earlier steps."""
        estimator = _unfreeze(estimator)
        if isinstance(estimator, Pipeline):
            X = estimator[:-1].transform(X)
        Xt = check_array(
            X,
            accept_sparse="csr",
            dtype=(np.float64, np.float32),
            ensure_all_finite=True,
        )
        expected = getattr(final, "n_features_in_", Xt.shape[1])
        if Xt.shape[1] != expected:
            raise ValueError(
                f"X has {Xt.shape[1]} features after the pipeline's transforms, but "
                f"{type(final).__name__} was fitted on {expected} features."
            )
        return Xt

    def _test_model_input(self, X):
        """Test ``X`` checked against ``fit`` and mapped to the model's input."""
        check_is_fitted(self)
        if isinstance(_unfreeze(self.estimator_), Pipeline):
            validate_data(self, X, skip_check_array=True, reset=False)
        else:
            X = self._check_X(X, reset=False)
        Xt = self._model_input(X, self.estimator_, _final_step(self.estimator_))
        if Xt.shape[0] == 0:
            raise ValueError("Found array with 0 sample(s); at least 1 is required.")
        return Xt


class InfluenceExplainer(
    _ModelInputMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Explain a classifier's predictions with the training examples behind them.

    For a test point ``t`` and a training example ``i``, the score says how
    much ``i`` supports the label explained for ``t`` (the prediction, unless
    labels are given): positive scores are *proponents* (removing ``i`` would
    raise the test loss), negative scores *opponents*. With ``g`` the gradient
    of an example's loss at the fitted parameters, ``H`` the Hessian of the
    training objective ``F = C sum_i s_i l_i + 1/2 ||w||^2`` (plus
    ``damping * I``) and ``s_i`` the example's sample x class weight:

    - ``"if"`` (influence function, Koh & Liang 2017):
      ``C s_i g_t^T H^-1 g_i``, the first-order change of the test loss when
      ``i`` is removed and the model refitted;
    - ``"theta-relatif"``: ``g_t^T H^-1 g_i / ||H^-1 g_i||``, that change per
      unit of parameter change (Barshan et al. 2020);
    - ``"l-relatif"``: ``g_t^T H^-1 g_i / sqrt(g_i^T H^-1 g_i)``, that change
      relative to the example's effect on all training losses.

    RelatIF scores discount examples with a large global influence (outliers,
    mislabelled points), so they favour typical examples of the explained class.
    They depend on ``g_i`` only through its direction, which is computed without
    underflow: an example the model fits with near certainty still gets a
    finite score, and only an example whose gradient direction is exactly zero
    (all-zero features and no intercept) scores 0.

    Read more in the :ref:`User Guide <user_guide>`.

    Parameters
    ----------
    model : estimator
        A :class:`~sklearn.linear_model.LogisticRegression` (L2 or no
        penalty; binary or multinomial), a :class:`~sklearn.svm.SVC` or
        :class:`~sklearn.svm.NuSVC` (any kernel, binary or one-vs-one
        multiclass) or a :class:`~sklearn.svm.LinearSVC` (L2 penalty,
        one-vs-rest), or a
        :class:`~sklearn.pipeline.Pipeline` whose last step is one (its earlier
        steps transform X first), or a
        :class:`~sklearn.frozen.FrozenEstimator` of either. A fitted model is
        used as is and never modified or refitted; an unfitted one is cloned
        and fitted in :meth:`fit`. For SVMs the scores are those of Barshan et
        al. (2020, appendix F): ``"if"`` is ``y_i y_t K(x_i, x_t)`` and both
        RelatIF methods divide it by ``sqrt(K(x_i, x_i))``, for support
        vectors only (every other example scores 0). A multiclass model sums
        the ``"if"`` scores of its binary machines that involve the explained
        label, and RelatIF divides that by ``sqrt(n_i K(x_i, x_i))``, ``n_i``
        the number of machines in which ``i`` is a support vector (see the
        docstring of :mod:`skrelatif._adapters.svm`).
    method : {"if", "theta-relatif", "l-relatif"}, default="l-relatif"
        The score.
    hessian : {"exact", "identity", "block-diagonal", "cg", "lissa"}, default="exact"
        How ``H^-1`` is applied.

        - ``"exact"``: the closed-form Hessian of the training objective,
          factorised once (Cholesky); needs a dense P x P matrix (P = number of
          parameters) and raises a clear error when that cannot fit in memory.
        - ``"identity"``: ``H = I``, plain gradient similarity (the baseline of
          Barshan et al., Fig. 6).
        - ``"block-diagonal"``: the per-class diagonal blocks of H (cross-class
          curvature dropped, Barshan et al. appendix C); K factorisations of
          size n_features, so RelatIF stays affordable for many classes.
        - ``"cg"``: conjugate gradients on matrix-free Hessian-vector products
          (exact up to ``tol``); for large sparse models with ``method="if"``.
          RelatIF and ``self_influence_`` need one solve per training example.
        - ``"lissa"``: the stochastic estimator of Agarwal et al. (2017) used by
          Koh & Liang (2017); approximate, see ``hessian_options``.

        SVMs accept only ``"exact"`` (their Hessian is the identity in the
        kernel's feature space).
    damping : float, default=0.0
        ``lambda >= 0`` added to the Hessian's diagonal, ``H + lambda I``.
        Needed when the Hessian is singular (e.g. ``C=np.inf`` with collinear
        features). SVMs accept only 0.
    hessian_options : dict, default=None
        Options of the ``hessian`` solver: ``{"tol": 1e-8, "max_iter": 1000}``
        for ``"cg"``; ``{"scale": None, "depth": 1000, "repeats": 1,
        "batch_size": 100}`` for ``"lissa"`` (``scale=None``: twice the largest
        eigenvalue of H).
    n_jobs : int, default=None
        Number of joblib jobs over chunks of training examples. ``None`` means
        1 unless in a :func:`joblib.parallel_config` context (which also selects
        the backend, e.g. ``"dask"`` for a Dask cluster). Chunks are sized by
        scikit-learn's ``working_memory``; results do not depend on either.
    random_state : int, RandomState instance or None, default=None
        Seeds the minibatches of ``hessian="lissa"``.
    verbose : int, default=0
        Progress messages: 1 per stage of ``fit``/``explain``, 2 per chunk.

    Attributes
    ----------
    estimator_ : estimator
        The fitted model that is explained (``model`` itself when it was fitted).
    self_influence_ : ndarray of shape (n_train,)
        ``C s_i g_i^T H^-1 g_i``: the predicted rise of example ``i``'s own
        loss when it is removed; large for outliers and mislabelled examples.
        With ``hessian="cg"`` or ``"lissa"`` and ``method="if"`` it is computed
        on first access (one solve per training example).
    classes_ : ndarray of shape (n_classes,)
        The model's classes.
    n_features_in_ : int
        Number of features seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when X has feature names that are all strings.

    See Also
    --------
    skrelatif.Explanation : The result of :meth:`explain`.
    skrelatif.NearestNeighborExplainer : The nearest-neighbour baseline.
    skrelatif.validation.leave_one_out : Check the scores by retraining.

    Notes
    -----
    Memory stays bounded whatever the data size: training examples are
    processed in chunks sized by scikit-learn's ``working_memory`` (see
    :func:`sklearn.config_context`), no matrix of all training gradients is
    formed, sparse X is never densified whole, and :meth:`explain` keeps a
    running top-k instead of the score matrix. float32 X is kept and computed
    in float32 where a measured accuracy check allows (the Hessian's measured
    float32 error times its condition number at most 1), otherwise in float64.

    References
    ----------
    .. [1] P. W. Koh and P. Liang. Understanding black-box predictions via
       influence functions. ICML 2017.
    .. [2] E. Barshan, M.-E. Brunet and G. K. Dziugaite. RelatIF: Identifying
       explanatory training examples via relative influence. AISTATS 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skrelatif import InfluenceExplainer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-8))
    >>> model = model.fit(X[:400], y[:400])
    >>> explainer = InfluenceExplainer(model, method="l-relatif").fit(X[:400], y[:400])
    >>> scores = explainer.transform(X[400:403])
    >>> scores.shape
    (3, 400)
    >>> e = explainer.explain(X[400:403], k=2)
    >>> e.proponents.shape, e.target.shape
    ((3, 2), (3,))
    >>> bool((e.proponent_scores[:, 0] == scores.max(axis=1)).all())
    True
    """

    _parameter_constraints: dict = {
        "model": [HasMethods(["fit"])],
        "method": [StrOptions(set(METHODS))],
        "hessian": [StrOptions(set(SOLVERS))],
        "damping": [Interval(Real, 0, None, closed="left")],
        "hessian_options": [dict, None],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        model: Any,
        *,
        method: str = "l-relatif",
        hessian: str = "exact",
        damping: float = 0.0,
        hessian_options: dict | None = None,
        n_jobs: int | None = None,
        random_state: Any = None,
        verbose: int = 0,
    ) -> None:
        self.model = model
        self.method = method
        self.hessian = hessian
        self.damping = damping
        self.hessian_options = hessian_options
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags

    # -- fitting -----------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> InfluenceExplainer:
        """Prepare the explanations of ``model`` trained on ``X, y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The training data of the model (raw input for a pipeline).
        y : array-like of shape (n_samples,)
            The training labels.
        sample_weight : array-like of shape (n_samples,), default=None
            The sample weights the model was (or is to be) trained with.

        Returns
        -------
        self : InfluenceExplainer
            The fitted explainer.
        """
        state = self.__dict__.copy()
        try:
            return self._fit(X, y, sample_weight)
        except BaseException:
            # Bad input changes nothing: drop what validation set on the way.
            self.__dict__.clear()
            self.__dict__.update(state)
            raise

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_adapter")

    @property
    def self_influence_(self) -> np.ndarray:
        """``C s_i g_i^T H^-1 g_i`` per training example (see the class docstring)."""
        check_is_fitted(self)
        return self._adapter.self_influence_

    def _fit(self, X, y, sample_weight):
        self._validate_params()
        adapter_class = find_adapter(_final_step(self.model))
        X, y, sample_weight = self._validate_train(X, y, sample_weight)
        estimator = self._fitted_model(X, y, sample_weight)
        final = _final_step(estimator)
        adapter = adapter_class(final)
        if (
            adapter.hessian_options is not None
            and self.hessian not in adapter.hessian_options
        ):
            raise ValueError(
                f"hessian={self.hessian!r} is not available for "
                f"{type(final).__name__}; use one of {list(adapter.hessian_options)}."
            )
        Xt = self._model_input(X, estimator, final)
        y_encoded = adapter.encode_labels(y, what="y")
        adapter.fit(
            Xt,
            y_encoded,
            sample_weight,
            method=self.method,
            hessian=self.hessian,
            damping=float(self.damping),
            n_jobs=self.n_jobs,
            verbose=self.verbose,
            hessian_options=self.hessian_options,
            random_state=self.random_state,
        )
        self.estimator_ = estimator
        self._adapter: ModelAdapter = adapter
        self._train_target = np.asarray(y)
        self._fit_sample_weight = sample_weight  # as given (no class weight)
        self.classes_ = adapter.classes_
        self._n_features_out = adapter.n_train_
        return self

    # -- explaining --------------------------------------------------------------------
    def _test_input(self, X, y):
        Xt = self._test_model_input(X)
        if y is None:
            y_encoded = self._adapter.predict_encoded(Xt)
        else:
            y = column_or_1d(y, warn=True)
            check_consistent_length(Xt, y)
            y_encoded = self._adapter.encode_labels(y, what="y")
        return Xt, y_encoded

    def transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Score every training example for every row of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_test, n_features)
            The points to explain.
        y : array-like of shape (n_test,), default=None
            The labels to explain; the model's predictions when None.

        Returns
        -------
        scores : ndarray of shape (n_test, n_train)
            ``scores[t, i]``: the score of training example ``i`` for test point
            ``t`` (positive: proponent). For many test points prefer
            :meth:`explain`, which never holds the whole matrix.
        """
        Xt, y_encoded = self._test_input(X, y)
        return score_matrix(self._adapter, Xt, y_encoded, n_jobs=self.n_jobs)

    def explain(self, X: Any, y: Any = None, k: int = 5) -> Explanation:
        """The ``k`` strongest proponents and opponents of each row of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_test, n_features)
            The points to explain.
        y : array-like of shape (n_test,), default=None
            The labels to explain; the model's predictions when None.
        k : int, default=5
            How many proponents and opponents to return per point.

        Returns
        -------
        explanation : Explanation
            ``proponents``/``opponents`` (training indices) and their scores,
            each of shape (n_test, k), strongest first; ``target``, the labels
            explained.
        """
        check_is_fitted(self)
        n_candidates = (
            self._adapter.n_train_
            if self._adapter.candidates_ is None
            else len(self._adapter.candidates_)
        )
        if (
            isinstance(k, bool)
            or not isinstance(k, Integral)
            or not 1 <= k <= n_candidates
        ):
            raise ValueError(
                f"k must be an integer between 1 and the number of training examples "
                f"that can be scored ({n_candidates}); got k={k!r}."
            )
        Xt, y_encoded = self._test_input(X, y)
        proponents, proponent_scores, opponents, opponent_scores = top_k(
            self._adapter,
            Xt,
            y_encoded,
            int(k),
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        return Explanation(
            proponents=proponents,
            proponent_scores=proponent_scores,
            opponents=opponents,
            opponent_scores=opponent_scores,
            target=self.classes_[y_encoded],
            method=self.method,
            train_target=self._train_target,
        )

"""What every explainer of a ``model`` shares: :class:`_BaseExplainer`.

Input validation (raw X checked like the model's own input, then mapped to
the final estimator's input through every level of a pipeline), the fitted
or unfitted model (a fitted one is used as is, cloned explainers keep it),
tags, the ``k`` check and the assembly of an :class:`~skrelatif.Explanation`.
"""

from __future__ import annotations

import sys
from numbers import Integral
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
from sklearn.utils import get_tags
from sklearn.utils.validation import (
    _check_feature_names,
    _check_n_features,
    _check_sample_weight,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._explanation import Explanation
from .exceptions import FeatureCountError, TooFewCandidatesError

try:  # scikit-learn >= 1.6
    from sklearn.frozen import FrozenEstimator
except ImportError:  # pragma: no cover
    FrozenEstimator = ()

_CHECK_X = dict(
    accept_sparse=("csr", "csc"),
    dtype=(np.float64, np.float32),
    ensure_all_finite=True,
)


def _finiteness(estimator: Any) -> bool | str:
    """``ensure_all_finite`` for the input of ``estimator``'s final step:
    ``"allow-nan"`` where it handles missing values itself (its tags say
    so: histogram gradient boosting, forests), else True."""
    final = _final_step(_unfreeze(estimator))
    try:
        allow_nan = get_tags(final).input_tags.allow_nan
    except (AttributeError, TypeError, ValueError):  # pragma: no cover
        allow_nan = False
    return "allow-nan" if allow_nan else True


def _check_feature_count(X: Any, expected: int, who: str) -> None:
    """``FeatureCountError`` when X (of any kind with a shape) has another
    number of columns than ``expected``."""
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) == 2 and shape[1] != expected:
        raise FeatureCountError(int(shape[1]), int(expected), who)


def _unfreeze(estimator: Any) -> Any:
    while isinstance(estimator, FrozenEstimator):
        estimator = estimator.estimator
    return estimator


def _final_step(model: Any) -> Any:
    """The estimator at the end of (nested, frozen) pipelines."""
    model = _unfreeze(model)
    if isinstance(model, Pipeline):
        return _final_step(model.steps[-1][1])
    return model


def _sample_weight_key(model: Any) -> str:
    """The ``fit`` parameter that routes sample weights to the final step,
    through every level of nested pipelines (``b__lr__sample_weight``)."""
    model = _unfreeze(model)
    if isinstance(model, Pipeline):
        name, step = model.steps[-1]
        return f"{name}__{_sample_weight_key(step)}"
    return "sample_weight"


def _model_input(X: Any, model: Any) -> Any:
    """X mapped through the transforms of every level of nested pipelines."""
    model = _unfreeze(model)
    if isinstance(model, Pipeline):
        return _model_input(model[:-1].transform(X), model.steps[-1][1])
    return X


def _row_labels(X: Any) -> Any:
    """The index of a pandas DataFrame or Series (shared, not copied), else None."""
    pd = sys.modules.get("pandas")  # a pandas X means pandas is imported
    if pd is not None and isinstance(X, pd.DataFrame | pd.Series):
        return X.index
    return None


def _is_fitted(model: Any) -> bool:
    try:
        check_is_fitted(_unfreeze(model))
    except NotFittedError:
        return False
    return True


class _BaseExplainer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base class of the explainers of a ``model`` (``self.model``)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags

    # -- the model -------------------------------------------------------------------
    def __sklearn_clone__(self):
        """A clone that keeps a fitted ``model`` (as ``FrozenEstimator`` does).

        An unfitted model is cloned as usual, so ``clone(explainer).fit(X, y)``
        fits a fresh copy of it; a fitted one is shared, never refitted.
        """
        params = self.get_params(deep=False)
        model = params.pop("model")
        params = {name: clone(value, safe=False) for name, value in params.items()}
        model = model if _is_fitted(model) else clone(model)
        return type(self)(model, **params)

    def set_params(self, **params: Any):
        """Set the explainer's parameters; nested ``model__*`` parameters only
        for an unfitted model (a fitted model is the user's and never changed).

        Parameters
        ----------
        **params : dict
            Explainer parameters.

        Returns
        -------
        self : estimator instance
            The explainer.
        """
        nested = sorted(name for name in params if name.startswith("model__"))
        model = params.get("model", getattr(self, "model", None))
        if nested and _is_fitted(model):
            raise ValueError(
                f"Cannot set {', '.join(nested)}: the model is fitted, and setting "
                "its parameters through the explainer would change your fitted "
                "model in place without refitting it. Set them on a clone of the "
                "model and refit it, or pass an unfitted model."
            )
        return super().set_params(**params)

    def _fitted_model(self, X: Any, y: np.ndarray, sample_weight) -> Any:
        """``self.model`` if fitted, else a clone of it fitted on ``X, y``."""
        if _is_fitted(self.model):
            expected = getattr(self.model, "n_features_in_", None)
            if expected is not None:
                _check_feature_count(X, expected, type(self.model).__name__)
            return self.model
        estimator = clone(self.model)
        fit_params = {}
        if sample_weight is not None:
            fit_params[_sample_weight_key(estimator)] = sample_weight
        return estimator.fit(X, y, **fit_params)

    # -- input validation --------------------------------------------------------
    def _validate_train(self, X: Any, y: Any, sample_weight: Any):
        """Checked training ``X, y, sample_weight``; sets nothing on ``self``
        (see :meth:`_set_n_features`, called once ``fit`` has succeeded)."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None: fit needs the training labels (or targets)."
            )
        if isinstance(_unfreeze(self.model), Pipeline):
            y = column_or_1d(y, warn=True)
            check_consistent_length(X, y)
        else:
            X = check_array(
                X, **{**_CHECK_X, "ensure_all_finite": _finiteness(self.model)}
            )
            y = column_or_1d(y, warn=True)
            check_consistent_length(X, y)
        if y.shape[0] == 0:
            raise ValueError("Found an empty y: fit needs at least one sample.")
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, ensure_non_negative=True
            )
        return X, y, sample_weight

    def _set_n_features(self, X: Any) -> None:
        """``n_features_in_`` and ``feature_names_in_`` of the training ``X``,
        and its row labels (``_train_index``, for the explanations)."""
        _check_n_features(self, X, reset=True)
        _check_feature_names(self, X, reset=True)
        self._train_index = _row_labels(X)

    def _final_input(self, X: Any, estimator: Any) -> Any:
        """The final estimator's input: X through every pipeline level."""
        final = _final_step(estimator)
        Xt = check_array(
            _model_input(X, estimator),
            accept_sparse="csr",
            dtype=(np.float64, np.float32),
            ensure_all_finite=_finiteness(estimator),
        )
        expected = getattr(final, "n_features_in_", Xt.shape[1])
        if Xt.shape[1] != expected:
            raise ValueError(
                f"X has {Xt.shape[1]} features after the pipeline's transforms, but "
                f"{type(final).__name__} was fitted on {expected} features."
            )
        return Xt

    def _test_model_input(self, X: Any) -> Any:
        """Test ``X`` checked against ``fit`` and mapped to the model's input."""
        check_is_fitted(self)
        if hasattr(self, "n_features_in_"):
            _check_feature_count(X, self.n_features_in_, type(self).__name__)
        if isinstance(_unfreeze(self.estimator_), Pipeline):
            validate_data(self, X, skip_check_array=True, reset=False)
        else:
            finite = _finiteness(self.estimator_)
            X = validate_data(
                self, X, reset=False, **{**_CHECK_X, "ensure_all_finite": finite}
            )
        Xt = self._final_input(X, self.estimator_)
        if Xt.shape[0] == 0:
            raise ValueError("Found array with 0 sample(s); at least 1 is required.")
        return Xt

    def _test_target(self, Xt: Any, y: Any) -> np.ndarray:
        """Checked test ``y``: a 1-d array as long as ``Xt``."""
        y = column_or_1d(y, warn=True)
        check_consistent_length(Xt, y)
        return y

    # -- results -----------------------------------------------------------------------
    @staticmethod
    def _check_k(k: Any, n_candidates: int, what: str = "training examples") -> int:
        if isinstance(k, Integral) and not isinstance(k, bool) and k > n_candidates:
            raise TooFewCandidatesError(int(k), n_candidates, what)
        if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
            raise ValueError(
                f"k must be an integer between 1 and the number of {what} that can "
                f"be scored ({n_candidates}); got k={k!r}."
            )
        return int(k)

    def _explanation(
        self, top: tuple, target: np.ndarray, method: str, *, target_given: bool
    ) -> Explanation:
        proponents, proponent_scores, opponents, opponent_scores = top
        return Explanation(
            proponents=proponents,
            proponent_scores=proponent_scores,
            opponents=opponents,
            opponent_scores=opponent_scores,
            target=np.asarray(target),
            method=method,
            train_target=self._train_target,
            train_row_labels=getattr(self, "_train_index", None),
            # what "auto" resolved to, where the explainer says it
            hessian=getattr(self, "hessian_", None),
            solver=getattr(self, "solver_", None),
            damping=getattr(self, "damping_", None),
            target_given=target_given,
        )

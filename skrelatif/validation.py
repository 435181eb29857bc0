"""Ground truth for influence scores: leave-one-out retraining.

:func:`leave_one_out` removes training examples one at a time, retrains the
explained model and measures what actually changes: the test losses, the
parameters and the training losses. These are the quantities that the
``"if"``, ``"theta-relatif"`` and ``"l-relatif"`` scores of
:class:`~skrelatif.InfluenceExplainer` estimate (Koh & Liang 2017, Fig. 2;
Barshan et al. 2020, Fig. 6 and Table 4). :func:`agreement` summarises how
well predicted and actual changes agree.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy import stats
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.utils import Bunch
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from ._explainer import InfluenceExplainer

__all__ = ["agreement", "leave_one_out"]

#: Above this many parameters the retraining keeps the model's own solver
#: instead of switching to Newton's method (whose steps cost O(P^3)).
_NEWTON_MAX_PARAMS = 2000
#: Solvers that minimise exactly the same objective as "newton-cg".
_SAME_OBJECTIVE = {"lbfgs", "newton-cg", "newton-cholesky", "sag", "saga"}


def _retraining_template(final: Any, n_params: int, tol: float, max_iter: int):
    """A clone of ``final`` set to converge tightly; and whether to warm-start."""
    template = clone(final)
    params = template.get_params()
    updates: dict[str, Any] = {}
    if "tol" in params:
        updates["tol"] = tol
    if isinstance(params.get("max_iter"), Integral) and params["max_iter"] >= 0:
        updates["max_iter"] = max(int(max_iter), params["max_iter"])
    warm = "warm_start" in params and params.get("solver") != "liblinear"
    if warm:
        updates["warm_start"] = True
    if (
        isinstance(final, LogisticRegression)
        and params["solver"] in _SAME_OBJECTIVE
        and n_params <= _NEWTON_MAX_PARAMS
    ):
        # Same objective, Newton convergence: the tolerance is really reached.
        # (Not "newton-cholesky": its warm start mis-sets multinomial
        # intercepts in scikit-learn 1.6.)
        updates["solver"] = "newton-cg"
    return template.set_params(**updates), warm


def _losses_and_params(adapter_class, estimator, X, y_encoded):
    """Per-example losses on ``X, y_encoded`` (``None``: minus the predictions
    of a regressor) and theta (None for kernel machines) of ``estimator``."""
    adapter = adapter_class(estimator)
    if y_encoded is None:
        losses = -adapter.predict_target(X)
    else:
        losses = adapter.losses(X, y_encoded)
    params = None if adapter.kernel_space else adapter.parameters()
    return losses, params


def _projected_norm(delta: np.ndarray | None, null_space: np.ndarray | None) -> float:
    """``||delta||`` without its component along directions the loss ignores."""
    if delta is None:
        return np.nan
    if null_space is not None:
        delta = delta - null_space @ (null_space.T @ delta)
    return float(np.linalg.norm(delta))


def _retrain(template, warm, init, X, y, sample_weight, drop):
    """``template`` fitted on the data without row ``drop`` (None: all rows)."""
    estimator = clone(template)
    if warm and init is not None:
        for name in ("coef_", "intercept_"):
            if hasattr(init, name):
                setattr(estimator, name, np.array(getattr(init, name), copy=True))
    keep = slice(None) if drop is None else np.delete(np.arange(X.shape[0]), drop)
    kwargs = {} if sample_weight is None else {"sample_weight": sample_weight[keep]}
    with (
        warnings.catch_warnings(record=True) as caught,
        threadpool_limits(limits=1, user_api="blas"),
    ):
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(X[keep], y[keep], **kwargs)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return estimator, converged


def _remove_one(
    adapter_class, template, warm, reference, X, y, y_encoded, sample_weight,
    X_test, y_test, train_loss, theta, null_space, drop,
):  # fmt: skip
    estimator, converged = _retrain(
        template, warm, reference, X, y, sample_weight, drop
    )
    new_train_loss, new_theta = _losses_and_params(
        adapter_class, estimator, X, y_encoded
    )
    test_loss, _ = _losses_and_params(adapter_class, estimator, X_test, y_test)
    rss = float(np.sqrt(np.sum((new_train_loss - train_loss) ** 2)))
    delta = None if theta is None else new_theta - theta
    return test_loss, _projected_norm(delta, null_space), rss, converged


def leave_one_out(
    explainer: InfluenceExplainer,
    X_test: Any,
    y_test: Any,
    indices: Any,
    *,
    n_jobs: int | None = None,
    tol: float = 1e-10,
    max_iter: int = 10_000,
) -> Bunch:
    """Retrain the explained model without each of the training ``indices``.

    For every index ``i``, the explainer's model is refitted on its training
    data without example ``i`` (same hyper-parameters, ``sample_weight`` and
    class weights; a pipeline's earlier steps are kept fixed, as in the
    influence scores) and compared with a *reference* model refitted on all
    the data with the same tight settings. The reference is not the given
    model itself so that "before" and "after" are converged to the same
    tolerance: their difference is then the effect of the removal, not of the
    optimiser's stopping point (``reference_param_change`` says how far the
    given model was from it).

    Models with a ``warm_start`` parameter are warm-started from the fitted
    parameters. A :class:`~sklearn.linear_model.LogisticRegression` trained
    with "lbfgs", "newton-cg", "sag" or "saga" (all minimise the same
    objective) is retrained with "newton-cg", which converges to ``tol`` in a
    few Newton steps, unless it has more than 2000 parameters. Models
    without ``warm_start`` (e.g. kernel SVMs) are retrained from scratch.
    Each refit uses one BLAS thread (the refits are small; parallelism comes
    from ``n_jobs``, as in joblib's own workers), which also avoids the
    drastic slowdowns of oversubscribed BLAS threads on a busy machine.

    Parameters
    ----------
    explainer : InfluenceExplainer
        A fitted explainer; its model, training data and sample weights are
        used.
    X_test : {array-like, sparse matrix} of shape (n_test, n_features)
        Test points whose losses are tracked (raw input for a pipeline).
    y_test : array-like of shape (n_test,) or None
        Their labels. ``None`` means the model's predictions, i.e. the labels
        that :meth:`InfluenceExplainer.transform` explains by default.
    indices : array-like of int of shape (n_removed,)
        Training indices to remove, one at a time.
    n_jobs : int, default=None
        Number of joblib jobs over ``indices``. ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context. Results do not depend on it.
    tol : float, default=1e-10
        Tolerance of every refit (including the reference).
    max_iter : int, default=10_000
        Iteration budget of every refit (never lowered below the model's own).

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        With attributes

        test_loss_change : ndarray of shape (n_test, n_removed)
            Actual test loss after removing ``indices[j]`` minus before: the
            quantity that the ``"if"`` score predicts.
        param_change_norm : ndarray of shape (n_removed,)
            ``||theta_after - theta_before||`` (without the component along
            the common shift of all multinomial intercepts, to which the model
            is invariant). NaN for models without a parameter vector in the
            adapter (kernel SVMs).
        train_loss_change_rss : ndarray of shape (n_removed,)
            ``sqrt(sum_j (l_j after - l_j before)^2)`` over *all* training
            examples ``j`` (the removed one included), unweighted.
        test_loss : ndarray of shape (n_test,)
            Test losses of the reference model.
        indices : ndarray of shape (n_removed,)
            The removed indices.
        reference_param_change : float
            ``||theta_reference - theta_given||``: how far the given model was
            from the tightly converged reference.

    Notes
    -----
    The losses are the model's own per-example losses (log-loss for logistic
    regression, at the labels given or predicted); for a binary model without
    a twice-differentiable loss (SVM) the hinge loss ``max(0, 1 - y f)``.
    A refit that does not converge raises one :class:`ConvergenceWarning`.
    Removing the only example of a class is refused (the retrained model
    would have different classes). With ``class_weight="balanced"`` the
    retrained model recomputes its class weights without the removed example,
    as a real retraining would; the influence function does not model that
    (small) effect.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skrelatif import InfluenceExplainer
    >>> from skrelatif.validation import agreement, leave_one_out
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> model = LogisticRegression(C=0.1, tol=1e-10).fit(X[:300], y[:300])
    >>> explainer = InfluenceExplainer(model, method="if").fit(X[:300], y[:300])
    >>> indices = np.arange(0, 300, 15)
    >>> loo = leave_one_out(explainer, X[300:302], y[300:302], indices)
    >>> loo.test_loss_change.shape, loo.param_change_norm.shape
    ((2, 20), (20,))
    >>> predicted = explainer.transform(X[300:302], y[300:302])[:, indices]
    >>> bool(agreement(predicted, loo.test_loss_change).pearson > 0.99)
    True
    """
    if not isinstance(explainer, InfluenceExplainer):
        raise TypeError(
            f"leave_one_out needs a fitted InfluenceExplainer; got "
            f"{type(explainer).__name__}."
        )
    check_is_fitted(explainer)
    if isinstance(tol, bool) or not (isinstance(tol, Real) and tol > 0):
        raise ValueError(f"tol must be a positive number; got {tol!r}.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer; got {max_iter!r}.")
    influence = explainer._influence
    adapter = influence.adapter
    final = adapter.estimator
    X = influence.X_
    n_train = X.shape[0]
    y = explainer._train_target
    y_encoded = influence.y_
    sample_weight = explainer._fit_sample_weight

    indices = np.asarray(indices)
    if indices.ndim != 1 or indices.size == 0:
        raise ValueError(
            f"indices must be a non-empty 1-d array of training indices; got shape "
            f"{indices.shape}."
        )
    if not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"indices must be integers; got dtype {indices.dtype}.")
    if indices.min() < 0 or indices.max() >= n_train:
        raise ValueError(
            f"indices must be between 0 and n_train - 1 = {n_train - 1}; got "
            f"values from {indices.min()} to {indices.max()}."
        )
    if not adapter.is_regressor:
        counts = np.bincount(y_encoded, minlength=len(adapter.classes_))
        alone = indices[counts[y_encoded[indices]] <= 1]
        if alone.size:
            raise ValueError(
                f"Training examples {list(alone[:5])} are the only examples of "
                "their class; removing one changes the model's classes, so it "
                "cannot be compared with the original."
            )
    Xt_test, yt_test, _ = explainer._test_input(X_test, y_test)
    if yt_test is not None:  # a loss that retraining cannot track fails here,
        adapter.losses(Xt_test[:1], yt_test[:1])  # before any refit

    adapter_class = type(adapter)
    null_space = None if adapter.kernel_space else adapter.null_space()
    n_params = adapter.n_params
    template, warm = _retraining_template(final, n_params, float(tol), max_iter)
    reference, converged = _retrain(template, warm, final, X, y, sample_weight, None)
    train_loss, theta = _losses_and_params(adapter_class, reference, X, y_encoded)
    test_loss, _ = _losses_and_params(adapter_class, reference, Xt_test, yt_test)
    _, given_theta = _losses_and_params(adapter_class, final, X[:1], y_encoded[:1])
    reference_change = _projected_norm(
        None if theta is None else theta - given_theta, null_space
    )

    results = Parallel(n_jobs=n_jobs)(
        delayed(_remove_one)(
            adapter_class,
            template,
            warm,
            reference,
            X,
            y,
            y_encoded,
            sample_weight,
            Xt_test,
            yt_test,
            train_loss,
            theta,
            null_space,
            int(i),
        )  # fmt: skip
        for i in indices
    )
    after, norms, rss, ok = zip(*results)
    n_failed = int(not converged) + sum(not c for c in ok)
    if n_failed:
        warnings.warn(
            f"{n_failed} of {len(indices) + 1} leave-one-out refits of "
            f"{type(final).__name__} did not converge to tol={tol}; the actual "
            "changes may be inaccurate. Increase max_iter or tol.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return Bunch(
        test_loss_change=np.column_stack(after) - test_loss[:, None],
        param_change_norm=np.asarray(norms, dtype=float),
        train_loss_change_rss=np.asarray(rss, dtype=float),
        test_loss=test_loss,
        indices=indices,
        reference_param_change=reference_change,
    )


def actual_change(result: Bunch, method: str) -> np.ndarray:
    """The actual counterpart of ``method``'s scores in a :func:`leave_one_out` result.

    ``"if"``: the test loss change; ``"theta-relatif"``: it divided by
    ``param_change_norm``; ``"l-relatif"``: it divided by
    ``train_loss_change_rss`` (each column by its removal). Shape
    (n_test, n_removed); NaN where the divisor is zero or undefined.
    """
    change = result.test_loss_change
    if method == "if":
        return change
    divisors = {
        "theta-relatif": result.param_change_norm,
        "l-relatif": result.train_loss_change_rss,
    }
    if method not in divisors:
        raise ValueError(
            f"method must be one of 'if', 'theta-relatif', 'l-relatif'; got {method!r}."
        )
    divisor = np.asarray(divisors[method], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(divisor > 0, change / divisor, np.nan)


def agreement(predicted: Any, actual: Any) -> Bunch:
    """How well predicted changes agree with actual ones.

    Parameters
    ----------
    predicted : array-like
        Predicted changes, e.g. ``explainer.transform(X_test)[:, indices]``.
    actual : array-like of the same shape
        Actual changes, e.g. ``leave_one_out(...).test_loss_change``. Both are
        flattened.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        ``pearson`` (linear correlation), ``spearman`` (rank correlation),
        ``slope`` and ``intercept`` of the least-squares line
        ``actual ~ slope * predicted + intercept``, and ``n`` (the number of
        pairs). A correlation or slope that is undefined because an input is
        constant is NaN.

    Examples
    --------
    >>> from skrelatif.validation import agreement
    >>> a = agreement([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 9.0])
    >>> round(a.pearson, 4), a.spearman, round(a.slope, 2)
    (0.9944, 1.0, 2.3)
    """
    predicted = np.asarray(predicted, dtype=float)
    actual = np.asarray(actual, dtype=float)
    if predicted.shape != actual.shape:
        raise ValueError(
            f"predicted and actual must have the same shape; got {predicted.shape} "
            f"and {actual.shape}."
        )
    predicted, actual = predicted.ravel(), actual.ravel()
    if predicted.size < 2:
        raise ValueError("agreement needs at least 2 pairs of values.")
    if not (np.isfinite(predicted).all() and np.isfinite(actual).all()):
        raise ValueError("predicted and actual must be finite (no NaN or inf).")
    dp = predicted - predicted.mean()
    da = actual - actual.mean()
    var_p, var_a = np.dot(dp, dp), np.dot(da, da)
    constant_p = var_p <= (np.finfo(float).eps * np.abs(predicted).max()) ** 2 * dp.size
    constant_a = var_a <= (np.finfo(float).eps * np.abs(actual).max()) ** 2 * da.size
    slope = np.nan if constant_p else np.dot(dp, da) / var_p
    intercept = np.nan if constant_p else actual.mean() - slope * predicted.mean()
    if constant_p or constant_a:
        pearson = spearman = np.nan
    else:
        pearson = float(np.clip(np.dot(dp, da) / np.sqrt(var_p * var_a), -1.0, 1.0))
        spearman = float(stats.spearmanr(predicted, actual).statistic)
    return Bunch(
        pearson=pearson,
        spearman=spearman,
        slope=float(slope),
        intercept=float(intercept),
        n=int(predicted.size),
    )

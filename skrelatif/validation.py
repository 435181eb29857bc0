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
from sklearn.utils import Bunch
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_params,
)
from sklearn.utils.validation import check_is_fitted, check_random_state
from threadpoolctl import threadpool_limits

from ._adapters._base import ParametricAdapter
from ._explainer import InfluenceExplainer
from ._refit_cache import REFITS, fingerprint, run_tasks
from ._removal.bregman import ProximalBregman
from ._removal.exact import ExactRemoval
from ._removal.groups import check_groups
from ._utils import caller_stacklevel, chunk_slices

__all__ = [
    "agreement",
    "leave_one_out",
    "linear_datamodeling_score",
    "removal_curve",
]

#: Above this many parameters the retraining keeps the model's own solver
#: instead of switching to Newton's method (whose steps cost O(P^3)).
_NEWTON_MAX_PARAMS = 2000
#: Above this many parameters leave-one-out refits instead of Newton
#: iterations with the dense Hessian.
_NEWTON_DENSE_PARAMS = 8000
#: Newton iterations at most (each removal converges in a few).
_NEWTON_MAX_ITER = 100


def _retraining_template(
    adapter, n_params: int, tol: float, max_iter: int, warm_start: bool = True
):
    """A clone of the adapter's estimator set to converge tightly; and whether
    to warm-start (never with ``warm_start=False``: a retraining from the
    estimator's own initialisation)."""
    template = clone(adapter.estimator)
    if not adapter.tight_retraining:  # no tolerance: the same fit again
        return template, False
    params = template.get_params()
    updates: dict[str, Any] = {}
    if "tol" in params:
        updates["tol"] = tol
    if isinstance(params.get("max_iter"), Integral) and params["max_iter"] >= 0:
        updates["max_iter"] = max(int(max_iter), params["max_iter"])
    warm = "warm_start" in params and params.get("solver") != "liblinear"
    if "warm_start" in params:
        updates["warm_start"] = warm = warm and warm_start
    # the family's own (a solver that converges tightly on the same objective)
    updates.update(adapter.retraining_updates(params, n_params <= _NEWTON_MAX_PARAMS))
    return template.set_params(**updates), warm


def _losses_and_params(adapter_class, estimator, X, y_encoded):
    """Per-example losses on ``X, y_encoded`` (``None``: minus the predictions
    of a regressor) and theta (None for kernel machines) of ``estimator``."""
    adapter = adapter_class(estimator)
    if y_encoded is None:
        losses = -adapter.predict_target(X)
    else:
        losses = adapter.losses(X, y_encoded)
    params = adapter.parameters() if isinstance(adapter, ParametricAdapter) else None
    return losses, params


def _projected_norm(delta: np.ndarray | None, null_space: np.ndarray | None) -> float:
    """``||delta||`` without its component along directions the loss ignores."""
    if delta is None:
        return np.nan
    if null_space is not None:
        delta = delta - null_space @ (null_space.T @ delta)
    return float(np.linalg.norm(delta))


def _retrain(adapter_class, template, warm, init, X, y, sample_weight, drop):
    """``template`` fitted on the data without row ``drop`` (None: all rows),
    warm-started from ``init`` as the family does it."""
    estimator = clone(template)
    if warm and init is not None:
        estimator = adapter_class.warm_started(estimator, init)
    keep = slice(None) if drop is None else np.delete(np.arange(X.shape[0]), drop)
    kwargs = {} if sample_weight is None else {"sample_weight": sample_weight[keep]}
    with (
        warnings.catch_warnings(record=True) as caught,
        threadpool_limits(limits=1),  # BLAS and OpenMP: one thread per refit
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
        adapter_class, template, warm, reference, X, y, sample_weight, drop
    )
    new_train_loss, new_theta = _losses_and_params(
        adapter_class, estimator, X, y_encoded
    )
    test_loss, _ = _losses_and_params(adapter_class, estimator, X_test, y_test)
    rss = float(np.sqrt(np.sum((new_train_loss - train_loss) ** 2)))
    delta = None if theta is None else new_theta - theta
    return test_loss, _projected_norm(delta, null_space), rss, converged


def _newton_removals(exact, X_test, y_test, groups, null_space):
    """Exact removal of each group by Newton iterations (see ``ExactRemoval``);
    single examples are iterated together, and the losses of every removal
    evaluated together."""
    adapter = exact.adapter
    with threadpool_limits(limits=1, user_api="blas"):
        if all(len(group) == 1 for group in groups):
            removed = exact.remove_each(np.concatenate(groups))
        else:
            removed = [exact.remove(group) for group in groups]
        thetas = np.stack([theta for theta, _ in removed])
        train_losses = _losses_at(adapter, exact.X, exact.y, thetas)
        test_losses = _losses_at(adapter, X_test, y_test, thetas)
    base = _losses_at(adapter, exact.X, exact.y, adapter.parameters()[None])[0]
    test_base = _losses_at(adapter, X_test, y_test, adapter.parameters()[None])[0]
    theta0 = adapter.parameters()
    return [
        (
            test_after - test_base,
            _projected_norm(theta - theta0, null_space),
            float(np.sqrt(np.sum((train_after - base) ** 2))),
            converged,
        )
        for (theta, converged), train_after, test_after in zip(
            removed, train_losses, test_losses
        )
    ]


def _losses_at(adapter, X, y_encoded, thetas) -> np.ndarray:
    """(b, n) losses under each row of ``thetas`` (``y_encoded`` None: minus
    the prediction, the quantity a regressor's scores explain)."""
    F = adapter.outputs_at(X, thetas)  # (b, n, K)
    if y_encoded is None:
        return -F[:, :, 0]
    b, n, K = F.shape
    losses = adapter.output_losses(F.reshape(b * n, K), np.tile(y_encoded, b))
    return losses.reshape(b, n)


def _as_groups(indices: Any, n_train: int) -> tuple[list[np.ndarray], Any]:
    """``indices`` as a list of groups (:func:`check_groups`), and as reported:
    a 1-d array when every group is a single index, else the list."""
    groups = check_groups(indices, n_train, name="indices")
    if all(group.size == 1 for group in groups):
        return groups, np.concatenate(groups)
    return groups, groups


#: How a retraining may be done (see ``retraining`` in :func:`leave_one_out`).
_RETRAINING = ("auto", "warm", "scratch", "proximal-bregman")
#: Tolerance and iteration budget of the refits of the refit-based measures.
_REFIT_TOL, _REFIT_MAX_ITER = 1e-10, 10_000


def _resolve_retraining(retraining: str, adapter, *, network: str) -> str:
    """``retraining`` with ``"auto"`` resolved (a convex model: ``"warm"``,
    which only changes the speed; a network: ``network``), or a ValueError."""
    if retraining == "auto":
        return "warm" if adapter.convex else network
    if retraining == "proximal-bregman" and not isinstance(adapter, ParametricAdapter):
        raise ValueError(
            "retraining='proximal-bregman' needs a model trained by minimising "
            f"a smooth objective over parameters; {type(adapter.estimator).__name__} "
            "is a sum over its training examples. Use retraining='warm' or "
            "'scratch'."
        )
    return retraining


def _tracked(adapter, X_test, y_test) -> np.ndarray:
    """The tracked output: the test losses at ``y_test``, or minus a
    regressor's predictions (``y_test`` None)."""
    if y_test is None:
        return -adapter.predict_target(X_test)
    return adapter.losses(X_test, y_test)


def _bregman(explainer) -> ProximalBregman:
    """The PBRF of the explainer's model around its fitted parameters, damped
    by the explainer's ``damping_``."""
    influence = explainer._influence
    return ProximalBregman(
        influence.adapter,
        influence.X_,
        influence.y_,
        influence.weights_,
        explainer.damping_,
    )


def _pbrf_theta(bregman, removed, tol, max_iter):
    if removed is None or len(removed) == 0:
        return bregman.theta0, True
    with threadpool_limits(limits=1, user_api="blas"):
        return bregman.minimise(np.asarray(removed), tol=tol, max_iter=max_iter)


def _pbrf_output(bregman, removed, X_test, y_test, tol, max_iter):
    """The tracked output at the PBRF optimum without ``removed``, and whether
    L-BFGS converged."""
    theta, converged = _pbrf_theta(bregman, removed, tol, max_iter)
    return _tracked(bregman.adapter.at(theta), X_test, y_test), converged


def _pbrf_removal(
    bregman, removed, X, y_encoded, X_test, y_test, train_loss, null_space, tol,
    max_iter,
):  # fmt: skip
    """:func:`_remove_one` for the PBRF optimum without ``removed``."""
    theta, converged = _pbrf_theta(bregman, removed, tol, max_iter)
    moved = bregman.adapter.at(theta)
    rss = float(np.sqrt(np.sum((moved.losses(X, y_encoded) - train_loss) ** 2)))
    norm = _projected_norm(theta - bregman.theta0, null_space)
    return _tracked(moved, X_test, y_test), norm, rss, converged


def _refit_key(explainer, *parts) -> str:
    """What a retraining of the explainer's model depends on (see
    :mod:`skrelatif._refit_cache`), with ``parts``."""
    influence = explainer._influence
    return fingerprint(
        "skrelatif.validation",
        type(influence.adapter).__name__,
        influence.adapter.estimator,
        influence.X_,
        explainer._train_target,
        explainer._fit_sample_weight,
        *parts,
    )


class _Digests:
    """:func:`fingerprint` of test inputs, once per object in a call."""

    def __init__(self):
        self._known: dict[int, tuple[Any, str]] = {}

    def __call__(self, array) -> str | None:
        if array is None:
            return None
        if id(array) not in self._known:  # keeps the object alive: ids stay unique
            self._known[id(array)] = (array, fingerprint(array))
        return self._known[id(array)][1]


@validate_params(
    {
        "explainer": [InfluenceExplainer],
        "X_test": ["array-like", "sparse matrix"],
        "y_test": ["array-like", None],
        "indices": ["array-like"],
        "n_jobs": [Integral, None],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "solver": [StrOptions({"auto", "newton", "refit"})],
        "retraining": [StrOptions(set(_RETRAINING))],
        "verbose": ["verbose"],
        "cache": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def leave_one_out(
    explainer: InfluenceExplainer,
    X_test: Any,
    y_test: Any,
    indices: Any,
    *,
    n_jobs: int | None = None,
    tol: float = 1e-10,
    max_iter: int = 10_000,
    solver: str = "auto",
    retraining: str = "auto",
    verbose: int = 0,
    cache: bool = True,
) -> Bunch:
    """Retrain the explained model without each of the training ``indices``.

    For every index ``i`` (or every group of indices, removed together), the
    explainer's model is retrained on its training data without it (same
    hyper-parameters, ``sample_weight`` and class weights; a pipeline's
    earlier steps are kept fixed, as in the influence scores) and compared
    with a *reference*: the model converged to the exact minimum of its
    objective on all the data. The reference is not the given model itself so
    that "before" and "after" are converged to the same tolerance: their
    difference is then the effect of the removal, not of the optimiser's
    stopping point (``reference_param_change`` says how far the given model
    was from it).

    ``solver="newton"`` (the default through ``"auto"`` for every model whose
    objective the package knows, when its Hessian fits in memory and is well
    conditioned) minimises the objective without the removed examples by Newton
    iterations from the reference, with the package's own gradient and exact
    Hessian, until the step is at most ``tol`` times the change of the
    parameters: a tiny but real change is resolved to that relative accuracy,
    never reported as 0. ``solver="refit"`` (the default for models that are a
    sum over their training examples, such as kernel SVMs, and for
    ``class_weight="balanced"``, whose weights a removal changes) refits the
    scikit-learn model: warm-started from the fitted parameters where the model
    allows it, and, where the model family declares one, with a solver of the
    same objective that reaches ``tol`` reliably (up to 2000 parameters, a
    Newton-type solver in place of a quasi-Newton or stochastic one). Models
    whose objective is not convex (neural networks) are refit by default: from
    a copy of the fitted model with ``warm_start=True`` (its own
    ``random_state``), by scikit-learn's L-BFGS to ``tol``. This is a *local*
    answer, the minimum nearest the trained weights (as Koh & Liang 2017 do for
    non-convex models), not a retraining from scratch, which could land in
    another minimum; L-BFGS's own stopping rule on the decrease of the
    objective limits how tightly it converges, so changes of the order of that
    precision are noisy. ``solver="newton"`` may be asked for a small network:
    it needs a positive definite exact Hessian all along its iterations, and
    raises otherwise. Each removal uses one thread (BLAS and OpenMP);
    parallelism comes from ``n_jobs``.

    For networks, retraining from that warm start and retraining from scratch
    disagree with each other (and with the influence scores), so
    ``retraining`` chooses the question: ``"warm"`` (the default through
    ``"auto"``; all of the above), ``"scratch"`` (refit from the estimator's
    own initialisation, its ``random_state``, without warm start: the
    reference is the same retraining on all rows; always ``solver="refit"``)
    or ``"proximal-bregman"``, the proximal Bregman response function that
    Bae et al. (NeurIPS 2022) show influence estimates approximate well in
    networks. It is
    minimised by L-BFGS from the *given* parameters ``theta*`` (which are the
    reference: ``reference_param_change`` is 0)::

        PBRF(theta) = sum_j w_j D_l(f_j(theta), f_j(theta*), y_j)
                      - sum_{i removed} w_i (l_i(theta) - l_i(theta*))
                      + 1/2 (theta - theta*)^T diag(p + lambda) (theta - theta*)

    over all training examples ``j``: ``w_j = c s_j`` the weight of example
    ``j`` in the model's objective ``F = sum_j w_j l_j + 1/2 theta^T diag(p)
    theta`` (``1/n`` for a network without sample weights), ``D_l(f, f*, y) =
    l(f, y) - l(f*, y) - dl/df(f*, y)^T (f - f*)`` the Bregman divergence of
    the loss in output space, ``p`` the L2 penalty per parameter (whose own
    Bregman divergence is the ``p`` term; 0 on intercepts) and ``lambda`` the
    explainer's ``damping_``. Its linearisation at ``theta*`` is the
    ``"if"`` score with the Gauss-Newton curvature and its first Newton step
    that of ``method="newton"`` (for a network, up to the removed example's
    second derivative of its outputs); for a linear model with squared loss
    it is exact leave-one-out (the user guide, "Networks: which
    retraining?").
    It converges when the largest entry of its gradient falls to
    ``max(tol, 1e-5)`` of its value at ``theta*`` (or, for an example whose
    own gradient is tiny, to 1e-11 of ``sum_j w_j ||g_j||``): the line search
    compares values of the objective, whose rounding stops L-BFGS near there.

    Retrainings computed by refits or L-BFGS (not the exact Newton
    iterations, which are cheap) are reused: their results are kept in a
    bounded in-process cache keyed by :func:`joblib.hash` of the fitted
    estimator, the training data, the removed indices, the test points and
    labels, ``retraining``, ``tol`` and ``max_iter``, so a second call for
    another explainer method on the same model, data and ``indices`` repeats
    no retraining (see :func:`linear_datamodeling_score`).

    Parameters
    ----------
    explainer : InfluenceExplainer
        A fitted explainer; its model, training data and sample weights are
        used.
    X_test : {array-like, sparse matrix} of shape (n_test, n_features)
        Test points whose losses are tracked (raw input for a pipeline).
    y_test : array-like of shape (n_test,) or None
        Their labels (or targets). ``None`` means the model's predictions,
        i.e. what :meth:`InfluenceExplainer.transform` explains by default;
        for a regressor the tracked quantity is then minus its prediction.
    indices : sequence of int or of array-like of int, length n_removed
        What to remove, one removal per element: an int removes that training
        example alone, a 1-d array-like of ints removes those examples
        together (a group). So ``[0, 1, 2]`` and ``np.array([0, 1, 2])`` are
        three single removals, ``[[0, 1], [2]]`` two removals and a 2-d int
        array one group per row: the meaning of ``groups`` in
        :meth:`InfluenceExplainer.predict_removal`.
    n_jobs : int, default=None
        Number of joblib jobs over the removals. ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context. Results do not depend on it.
    tol : float, default=1e-10
        Relative tolerance of the Newton iterations (on the step), or the
        ``tol`` of every refit (including the reference).
    max_iter : int, default=10_000
        Iteration budget of every refit (never lowered below the model's
        own), or of the Newton iterations (at most 100).
    solver : {"auto", "newton", "refit"}, default="auto"
        How the model is retrained (see above).
    retraining : {"auto", "warm", "scratch", "proximal-bregman"}, default="auto"
        What the removal is compared with (see above): ``"auto"`` is
        ``"warm"``. ``"scratch"`` needs ``solver`` ``"auto"`` or ``"refit"``,
        ``"proximal-bregman"`` ``solver="auto"`` and a model with parameters
        (not a kernel SVM).
    verbose : int, default=0
        With ``verbose > 0``, a progress line on standard error counts the
        finished retrainings (and those reused).
    cache : bool, default=True
        Reuse retrainings kept from earlier calls and keep these ones (see
        above). ``False`` retrains everything and keeps nothing.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        With attributes

        test_loss_change : ndarray of shape (n_test, n_removed)
            Actual test loss after the removal minus before: the quantity
            that the ``"if"`` and ``"newton"`` scores predict.
        param_change_norm : ndarray of shape (n_removed,)
            ``||theta_after - theta_before||`` (without the component along
            the common shift of all multinomial intercepts, to which the model
            is invariant). NaN for kernel SVMs.
        train_loss_change_rss : ndarray of shape (n_removed,)
            ``sqrt(sum_j (l_j after - l_j before)^2)`` over *all* training
            examples ``j`` (the removed ones included), unweighted.
        test_loss : ndarray of shape (n_test,)
            Test losses of the reference model.
        indices : ndarray or list of ndarray
            The removed indices: a 1-d array when every removal is a single
            example, else the list of groups.
        reference_param_change : float
            ``||theta_reference - theta_given||``: how far the given model was
            from the exact minimum.
        solver : str
            ``"newton"``, ``"refit"`` or ``"l-bfgs"`` (the PBRF): how the
            removals were computed.
        retraining : str
            ``"warm"``, ``"scratch"`` or ``"proximal-bregman"``.

    Notes
    -----
    The losses are the model's own per-example losses (the log-loss of a
    probabilistic classifier, the squared error of a least-squares model,
    ...; the "Supported models" page lists each family's), at the labels
    given or predicted; for a binary SVM the hinge loss ``max(0, 1 - y f)``.
    Retraining that does not converge raises one :class:`ConvergenceWarning`.
    With ``solver="refit"``, removing the only example of a class is refused
    (the retrained model would have different classes). With
    ``class_weight="balanced"`` the retrained model recomputes its class
    weights without the removed examples, as a real retraining would; the
    influence function does not model that (small) effect.

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

    The proximal Bregman response of the same removals (for a GLM it agrees
    with leave-one-out to second order):

    >>> pbrf = leave_one_out(
    ...     explainer, X[300:302], y[300:302], indices, retraining="proximal-bregman"
    ... )
    >>> pbrf.solver, bool(agreement(predicted, pbrf.test_loss_change).pearson > 0.99)
    ('l-bfgs', True)
    """
    check_is_fitted(explainer)
    influence = explainer._influence
    adapter = influence.adapter
    final = adapter.estimator
    X = influence.X_
    n_train = X.shape[0]
    y = explainer._train_target
    y_encoded = influence.y_
    sample_weight = explainer._fit_sample_weight
    groups, given = _as_groups(indices, n_train)
    Xt_test, yt_test, _ = explainer._test_input(X_test, y_test)
    if yt_test is not None:  # a loss that retraining cannot track fails here,
        adapter.losses(Xt_test[:1], yt_test[:1])  # before any retraining
    if not adapter.is_regressor:
        counts = np.bincount(y_encoded, minlength=len(adapter.classes_))
        removed = np.concatenate(groups)
        alone = removed[counts[y_encoded[removed]] <= 1]
        if alone.size:
            raise ValueError(
                f"Training examples {list(alone[:5])} are the only examples of "
                "their class; removing one changes the model's classes, so it "
                "cannot be compared with the original."
            )
    mode = _resolve_retraining(retraining, adapter, network="warm")
    if mode == "scratch" and solver == "newton":
        raise ValueError(
            "solver='newton' iterates from the fitted parameters, which "
            "retraining='scratch' does not start from; pass solver='refit' or "
            "'auto' with retraining='scratch'."
        )
    if mode == "proximal-bregman" and solver != "auto":
        raise ValueError(
            "retraining='proximal-bregman' minimises the proximal Bregman "
            f"response by L-BFGS; solver={solver!r} does not apply. Leave "
            "solver='auto'."
        )
    parametric = isinstance(adapter, ParametricAdapter)
    null_space = adapter.null_space() if parametric else None
    n_params = adapter.n_params if parametric else 0
    if mode == "proximal-bregman":
        solver = "l-bfgs"
    else:
        solver = _choose_solver("refit" if mode == "scratch" else solver, adapter)
    exact = None
    if solver in ("auto", "newton"):
        try:
            exact = ExactRemoval(
                adapter,
                X,
                y_encoded,
                influence.weights_,
                influence.penalty_share_,
                solver=influence.exact_solver_,
                tol=float(tol),
                max_iter=min(int(max_iter), _NEWTON_MAX_ITER),
            )
        except ValueError:  # a singular or ill-conditioned Hessian
            if solver == "newton":
                raise
        solver = "refit" if exact is None else "newton"
    label = "leave_one_out"
    digest = _Digests()
    keys = None
    if cache and solver != "newton":
        common = _refit_key(explainer, "leave_one_out", mode, solver, tol, max_iter)
        if mode == "proximal-bregman":
            common = fingerprint(common, explainer.damping_)
        test_digest = (digest(Xt_test), digest(yt_test))
        keys = [fingerprint(common, group, test_digest) for group in groups]

    if solver == "newton":
        # batches of removals iterated together, sized by working_memory (not
        # by n_jobs, so that the results do not depend on it)
        batches = chunk_slices(len(groups), 8 * 4 * adapter.n_outputs * n_params)
        parts = run_tasks(
            _newton_removals,
            len(batches),
            lambda b: (exact, Xt_test, yt_test, groups[batches[b]], null_space),
            keys=None,
            n_jobs=n_jobs,
            verbose=verbose,
            label=label,
            counts=[len(groups[batch]) for batch in batches],
        )
        results = [row for part in parts for row in part]
        reference = exact.adapter
        test_loss = (
            -reference.outputs(Xt_test)[:, 0]
            if yt_test is None
            else reference.losses(Xt_test, yt_test)
        )
        reference_change = _projected_norm(
            reference.parameters() - adapter.parameters(), null_space
        )
        n_failed = int(not exact.converged) + sum(not r[3] for r in results)
    elif solver == "l-bfgs":
        # the PBRF is defined around the fitted parameters: they are the reference
        bregman = _bregman(explainer)
        train_loss = adapter.losses(X, y_encoded)
        test_loss = _tracked(adapter, Xt_test, yt_test)
        results = run_tasks(
            _pbrf_removal,
            len(groups),
            lambda i: (
                bregman,
                groups[i],
                X,
                y_encoded,
                Xt_test,
                yt_test,
                train_loss,
                null_space,
                float(tol),
                int(max_iter),
            ),  # fmt: skip
            keys=keys,
            n_jobs=n_jobs,
            verbose=verbose,
            label=label,
        )
        reference_change = 0.0
        n_failed = sum(not r[3] for r in results)
        n_retrainings = len(groups)
    else:
        adapter_class = type(adapter)
        warm_start = mode == "warm"
        template, warm = _retraining_template(
            adapter, n_params, float(tol), max_iter, warm_start=warm_start
        )
        found = {} if keys is None else REFITS.get_many(keys)
        reference_key = (
            None if keys is None else fingerprint(common, "reference", test_digest)
        )
        summary = None
        if reference_key is not None:
            summary = REFITS.get_many([reference_key]).get(0)
        reference = None
        if summary is None or (warm and len(found) < len(groups)):
            # the reference: the same retraining on all rows (warm: from the
            # given model; scratch: from the estimator's initialisation)
            reference, converged = _retrain(
                adapter_class, template, warm, final, X, y, sample_weight, None
            )
            train_loss, theta = _losses_and_params(
                adapter_class, reference, X, y_encoded
            )
            test_loss, _ = _losses_and_params(
                adapter_class, reference, Xt_test, yt_test
            )
            _, given_theta = _losses_and_params(
                adapter_class, final, X[:1], y_encoded[:1]
            )
            reference_change = _projected_norm(
                None if theta is None else theta - given_theta, null_space
            )
            summary = (train_loss, theta, test_loss, reference_change, converged)
            if reference_key is not None:
                REFITS.put(reference_key, summary)
        train_loss, theta, test_loss, reference_change, converged = summary
        results = run_tasks(
            _remove_one,
            len(groups),
            lambda i: (
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
                groups[i],
            ),  # fmt: skip
            keys=keys,
            found=found,
            n_jobs=n_jobs,
            verbose=verbose,
            label=label,
        )
        n_failed = int(not converged) + sum(not r[3] for r in results)
    if n_failed:
        if solver != "l-bfgs":  # and the reference
            n_retrainings = len(groups) + 1
        warnings.warn(
            f"{n_failed} of {n_retrainings} leave-one-out retrainings of "
            f"{type(final).__name__} did not converge to tol={tol}; the actual "
            "changes may be inaccurate. Increase max_iter or tol.",
            ConvergenceWarning,
            stacklevel=2,
        )
    after, norms, rss, _ = zip(*results)
    change = np.column_stack(after)
    if solver != "newton":  # refits return test losses, Newton their changes
        change = change - test_loss[:, None]
    return Bunch(
        test_loss_change=change,
        param_change_norm=np.asarray(norms, dtype=float),
        train_loss_change_rss=np.asarray(rss, dtype=float),
        test_loss=test_loss,
        indices=given,
        reference_param_change=reference_change,
        solver=solver,
        retraining=mode,
    )


def _choose_solver(solver: str, adapter) -> str:
    """``"newton"`` where the package knows the objective and its Hessian fits."""
    newton_ok = (
        isinstance(adapter, ParametricAdapter)
        and adapter.n_params <= _NEWTON_DENSE_PARAMS
        and getattr(adapter.estimator, "class_weight", None) != "balanced"
    )
    if solver == "newton" and not newton_ok:
        raise ValueError(
            "solver='newton' needs a model with a smooth loss, at most "
            f"{_NEWTON_DENSE_PARAMS} parameters and no class_weight='balanced'; "
            f"{type(adapter.estimator).__name__} is retrained with solver='refit'."
        )
    if solver == "auto" and (not newton_ok or not adapter.convex):
        return "refit"  # networks: Newton iterations may leave the local basin
    return solver


def actual_change(result: Bunch, method: str) -> np.ndarray:
    """The actual counterpart of ``method``'s scores in a :func:`leave_one_out` result.

    ``"if"``, ``"newton"`` and ``"boostin"``: the test loss change;
    ``"theta-relatif"``: it divided by
    ``param_change_norm``; ``"l-relatif"``: it divided by
    ``train_loss_change_rss`` (each column by its removal). Shape
    (n_test, n_removed); NaN where the divisor is zero or undefined.
    """
    change = result.test_loss_change
    if method in ("if", "newton", "boostin"):
        return change
    divisors = {
        "theta-relatif": result.param_change_norm,
        "l-relatif": result.train_loss_change_rss,
    }
    if method not in divisors:
        raise ValueError(
            "method must be one of 'if', 'theta-relatif', 'l-relatif', 'newton', "
            f"'boostin'; got {method!r}."
        )
    divisor = np.asarray(divisors[method], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(divisor > 0, change / divisor, np.nan)


@validate_params(
    {"predicted": ["array-like"], "actual": ["array-like"]},
    prefer_skip_nested_validation=True,
)
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


def _fit_subset(
    adapter_class, template, warm, init, X, y, sample_weight, removed, X_test, y_test
):
    """The tracked output on ``X_test`` of ``template`` refit without
    ``removed``, and whether the refit converged."""
    estimator, converged = _retrain(
        adapter_class, template, warm, init, X, y, sample_weight, removed
    )
    with threadpool_limits(limits=1):
        output, _ = _losses_and_params(adapter_class, estimator, X_test, y_test)
    return output, converged


def _refit_outputs(
    explainer, tasks, n_jobs, *, retraining, cache, verbose, label
) -> list[np.ndarray]:
    """The tracked output of each retraining of the explainer's model without
    the rows of a task, ``tasks`` being ``(removed, X_test, y_test)`` triples
    (``removed`` None: all rows kept), all in one joblib ``Parallel``, reused
    from the cache where it holds them (``cache``); ``retraining`` resolved
    (``"warm"``, ``"scratch"`` or ``"proximal-bregman"``). One
    ``ConvergenceWarning`` when any retraining does not converge."""
    influence = explainer._influence
    adapter = influence.adapter
    keys = None
    if cache:
        common = _refit_key(
            explainer, "output", retraining, _REFIT_TOL, _REFIT_MAX_ITER
        )
        if retraining == "proximal-bregman":
            common = fingerprint(common, explainer.damping_)
        digest = _Digests()
        keys = [
            fingerprint(common, removed, digest(X_test), digest(y_test))
            for removed, X_test, y_test in tasks
        ]
    if retraining == "proximal-bregman":
        bregman = _bregman(explainer)
        function = _pbrf_output

        def arguments(i):
            return (bregman, *tasks[i], _REFIT_TOL, _REFIT_MAX_ITER)

    else:
        n_params = adapter.n_params if isinstance(adapter, ParametricAdapter) else 0
        template, warm = _retraining_template(
            adapter,
            n_params,
            _REFIT_TOL,
            _REFIT_MAX_ITER,
            warm_start=retraining == "warm",
        )
        init = adapter.estimator if warm else None
        common_args = (
            type(adapter), template, warm, init, influence.X_,
            explainer._train_target, explainer._fit_sample_weight,
        )  # fmt: skip
        function = _fit_subset

        def arguments(i):
            return (*common_args, *tasks[i])

    results = run_tasks(
        function,
        len(tasks),
        arguments,
        keys=keys,
        n_jobs=n_jobs,
        verbose=verbose,
        label=label,
    )
    outputs, converged = zip(*results)
    n_failed = sum(not c for c in converged)
    if n_failed:
        warnings.warn(
            f"{n_failed} of {len(results)} retrainings of "
            f"{type(adapter.estimator).__name__} did not converge; the actual "
            "outputs may be inaccurate.",
            ConvergenceWarning,
            stacklevel=caller_stacklevel(),
        )
    return list(outputs)


def _check_subsets(subsets: Any, n_train: int) -> np.ndarray:
    """``subsets`` as a (n_subsets, n_train) bool array, or a ValueError."""
    array = np.asarray(subsets)
    if array.dtype != bool:
        raise ValueError(
            "subsets must be a boolean array (True = the training example is "
            f"kept); got dtype {array.dtype}. Use e.g. `mask.astype(bool)`."
        )
    if array.ndim != 2 or array.shape[1] != n_train or array.shape[0] < 2:
        raise ValueError(
            "subsets must have shape (n_subsets, n_train) with n_subsets >= 2 and "
            f"n_train={n_train} (the explainer's training set); got shape "
            f"{array.shape}."
        )
    empty = np.flatnonzero(~array.any(axis=1))
    if empty.size:
        raise ValueError(
            f"subsets {empty[:5].tolist()} keep no training example; every subset "
            "must keep at least one."
        )
    return array


@validate_params(
    {
        "explainer": [InfluenceExplainer],
        "X_test": ["array-like", "sparse matrix"],
        "y_test": ["array-like", None],
        "subsets": ["array-like", None],
        "n_subsets": [Interval(Integral, 2, None, closed="left")],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "retraining": [StrOptions(set(_RETRAINING))],
        "verbose": ["verbose"],
        "cache": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def linear_datamodeling_score(
    explainer: InfluenceExplainer,
    X_test: Any,
    y_test: Any = None,
    *,
    subsets: Any = None,
    n_subsets: int = 100,
    alpha: float = 0.5,
    random_state: Any = None,
    n_jobs: int | None = None,
    retraining: str = "auto",
    verbose: int = 0,
    cache: bool = True,
) -> Bunch:
    """Linear datamodeling score (LDS) of the explainer's scores.

    The field's yardstick for data attribution (Park et al. 2023, TRAK): the
    model is retrained on many random subsets of its training data, the
    explainer *predicts* each retrained model's output on every test point
    from its scores, and the score is the Spearman rank correlation, across
    subsets, between predicted and actual outputs, averaged over test points.

    Each subset is refit with the model's own solver, a full refit on the
    kept examples (same hyper-parameters, ``sample_weight`` and class
    weights; a pipeline's earlier steps are kept fixed, as in the influence
    scores), converged tightly as in :func:`leave_one_out` with
    ``solver="refit"``. ``retraining`` says from where: ``"auto"`` warm-starts
    a convex model from the fitted one (which changes only the speed: the
    minimum is unique) and retrains a network (non-convex) from scratch, from
    its initialisation with its own ``random_state`` (Park et al.'s
    protocol); ``"warm"`` and ``"scratch"`` ask for either, and
    ``"proximal-bregman"`` replaces the refit by the minimiser of the
    proximal Bregman response function without the removed examples (Bae et
    al. 2022; the objective is written out in :func:`leave_one_out`), what
    influence functions estimate for networks. Each refit uses one BLAS
    thread; parallelism comes from ``n_jobs``.

    **Reuse.** The outputs of every retraining (never the retrained models)
    are kept in a bounded in-process cache (64 MiB, least recently used
    first out) keyed by :func:`joblib.hash` of the fitted estimator, the
    training data, target and ``sample_weight``, the removed examples, the
    test points and labels (or the prediction tracked without them) and the
    retraining. Asking again with the same ``subsets`` for another explainer
    method of the same model repeats no retraining and gives identical
    ``actual``; so does :func:`removal_curve` for its reference and random
    baseline. An in-process cache is chosen over a ``joblib.Memory`` (which
    scikit-learn's ``Pipeline(memory=...)`` uses for fitted transformers on
    disk and which the user must set up) and over passing an earlier result
    back in (which would only cover repeated calls of one function): outputs
    are small, a key matches only when everything they depend on is equal,
    and the cost is one hash of the training data per call. ``cache=False``
    bypasses it.

    The prediction for a subset is the explainer's prediction for removing
    its complement: for the first-order methods (``"if"``, and the RelatIF
    methods, although they do not estimate a counterfactual change) the sum
    of the removed examples' scores; for ``"newton"`` the group Newton step
    of :meth:`InfluenceExplainer.predict_removal`. Rank correlation ignores
    any offset common to all subsets, so predicted changes and actual outputs
    (not changes) are compared directly.

    Parameters
    ----------
    explainer : InfluenceExplainer
        A fitted explainer; its model, training data, sample weights and
        ``method`` are used.
    X_test : {array-like, sparse matrix} of shape (n_test, n_features)
        Test points whose outputs are tracked (raw input for a pipeline).
    y_test : array-like of shape (n_test,) or None, default=None
        Their labels (or targets): the output is the test loss at them.
        ``None`` means what :meth:`InfluenceExplainer.transform` explains by
        default: a classifier's loss at the labels the explained model
        predicts (kept fixed across subsets), a regressor's prediction.
    subsets : array-like of bool of shape (n_subsets, n_train), default=None
        The retraining subsets, True = the training example is kept, used as
        given (so that two methods can be compared on the same retrainings).
        Each must keep at least one example, and, for a classifier, at least
        one of every class. ``None`` draws ``n_subsets`` subsets, each of
        exactly ``round(alpha * n_train)`` examples, uniformly.
    n_subsets : int, default=100
        Number of subsets drawn (ignored when ``subsets`` is given).
    alpha : float in (0, 1), default=0.5
        Fraction of the training set each drawn subset keeps.
    random_state : int, RandomState instance or None, default=None
        Seeds the drawing of the subsets (and nothing else).
    n_jobs : int, default=None
        Number of joblib jobs over the subsets. ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context. Results do not depend on it.
    retraining : {"auto", "warm", "scratch", "proximal-bregman"}, default="auto"
        How each subset is retrained (see above).
    verbose : int, default=0
        With ``verbose > 0``, a progress line on standard error counts the
        finished retrainings (and those reused).
    cache : bool, default=True
        Reuse retrainings kept from earlier calls and keep these ones (see
        above). ``False`` retrains everything and keeps nothing.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        With attributes

        score : float
            Mean of ``per_test`` over the test points where it is defined.
        per_test : ndarray of shape (n_test,)
            Spearman correlation of ``predicted[:, t]`` with ``actual[:, t]``;
            NaN where either is constant.
        predicted : ndarray of shape (n_subsets, n_test)
            The explainer's predicted change of the output when the subset's
            complement is removed.
        actual : ndarray of shape (n_subsets, n_test)
            The output of the model retrained on the subset: the test loss
            (the model's own per-example loss, as in :func:`leave_one_out`),
            or, for a regressor explained without ``y_test``, **minus** its
            prediction (the quantity whose change the scores estimate:
            positive scores push the prediction up, so removing them lowers
            it), so that a good explainer has a positive correlation.
        subsets : ndarray of bool of shape (n_subsets, n_train)
            The subsets used.
        retraining : str
            ``"warm"``, ``"scratch"`` or ``"proximal-bregman"``.

    Notes
    -----
    A subset that lacks a class entirely is refused with a ValueError naming
    it (its refit would have different classes). Refits that do not converge
    raise one :class:`~sklearn.exceptions.ConvergenceWarning`.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skrelatif import InfluenceExplainer
    >>> from skrelatif.validation import linear_datamodeling_score
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> model = LogisticRegression(C=0.1, tol=1e-10).fit(X[:200], y[:200])
    >>> explainer = InfluenceExplainer(model, method="if").fit(X[:200], y[:200])
    >>> lds = linear_datamodeling_score(
    ...     explainer, X[200:205], y[200:205], n_subsets=20, random_state=0
    ... )
    >>> lds.predicted.shape, lds.actual.shape, lds.subsets.shape
    ((20, 5), (20, 5), (20, 200))
    >>> bool(lds.score > 0.8)
    True

    Another method on the same subsets reuses the 20 refits:

    >>> newton = InfluenceExplainer(model, method="newton").fit(X[:200], y[:200])
    >>> again = linear_datamodeling_score(
    ...     newton, X[200:205], y[200:205], subsets=lds.subsets
    ... )
    >>> bool((again.actual == lds.actual).all()), bool(again.score >= lds.score)
    (True, True)
    """
    check_is_fitted(explainer)
    influence = explainer._influence
    adapter = influence.adapter
    n_train = influence.n_train_
    y_encoded = influence.y_
    if subsets is None:
        n_keep = round(alpha * n_train)
        if not 1 <= n_keep < n_train:
            raise ValueError(
                f"alpha={alpha} keeps round(alpha * n_train) = {n_keep} of the "
                f"{n_train} training examples; choose alpha so that each subset "
                "keeps at least one example and removes at least one."
            )
        rng = check_random_state(random_state)
        order = np.argsort(rng.random_sample((n_subsets, n_train)), axis=1)
        subsets = np.zeros((n_subsets, n_train), dtype=bool)
        np.put_along_axis(subsets, order[:, :n_keep], True, axis=1)
    else:
        subsets = _check_subsets(subsets, n_train)
    mode = _resolve_retraining(retraining, adapter, network="scratch")
    if not adapter.is_regressor:
        onehot = np.eye(len(adapter.classes_), dtype=int)[y_encoded]
        lacking = np.flatnonzero((subsets.astype(int) @ onehot == 0).any(axis=1))
        if lacking.size:
            raise ValueError(
                f"subsets {lacking[:5].tolist()} lack every example of at least one "
                "class; a refit on them would change the model's classes. Keep "
                "at least one example of each class in every subset."
            )
    Xt_test, yt_test, _ = explainer._test_input(X_test, y_test)
    removed = ~subsets

    # predicted: the explainer's change for removing each complement
    if explainer.method == "newton":
        some = np.flatnonzero(removed.any(axis=1))
        predicted = np.zeros((len(subsets), Xt_test.shape[0]))
        if some.size:
            groups = [np.flatnonzero(removed[s]) for s in some]
            predicted[some] = explainer.predict_removal(
                X_test, y_test, groups=groups, method="newton"
            ).T
    else:  # first order: sums of the removed examples' scores
        scores = explainer.transform(X_test, y_test)
        predicted = removed.astype(scores.dtype) @ scores.T

    # actual: the output of each refit model
    tasks = [(np.flatnonzero(drop), Xt_test, yt_test) for drop in removed]
    actual = np.vstack(
        _refit_outputs(
            explainer,
            tasks,
            n_jobs,
            retraining=mode,
            cache=cache,
            verbose=verbose,
            label="linear_datamodeling_score",
        )
    )

    per_test = np.full(actual.shape[1], np.nan)
    for t in range(actual.shape[1]):
        p, a = predicted[:, t], actual[:, t]
        if np.ptp(p) > 0 and np.ptp(a) > 0:
            per_test[t] = stats.spearmanr(p, a).statistic
    defined = ~np.isnan(per_test)
    score = float(per_test[defined].mean()) if defined.any() else np.nan
    return Bunch(
        score=score,
        per_test=per_test,
        predicted=predicted,
        actual=actual,
        subsets=subsets,
        retraining=mode,
    )


def _check_proponents(
    proponents: Any, n_test: int, n_train: int, n_removed: int
) -> np.ndarray:
    """``proponents`` as an (n_test, >= n_removed) int array of distinct
    training indices per row, or a ValueError."""
    array = np.asarray(proponents)
    if array.ndim != 2 or array.shape[0] != n_test or array.shape[1] < n_removed:
        raise ValueError(
            f"proponents must have shape (n_test, n_ranked) with n_test={n_test} "
            f"and n_ranked >= {n_removed} (the largest removal); got shape "
            f"{array.shape}. Pass e.g. explain(X_test, k={n_removed}).proponents."
        )
    if array.dtype.kind not in "iu":
        raise ValueError(
            f"proponents must be training indices (integers); got dtype {array.dtype}."
        )
    array = array[:, :n_removed]
    if array.size and (array.min() < 0 or array.max() >= n_train):
        raise ValueError(
            f"proponents must be training indices in [0, {n_train}); got values "
            f"from {array.min()} to {array.max()}."
        )
    if (np.diff(np.sort(array, axis=1), axis=1) == 0).any():
        raise ValueError(
            "proponents must not repeat an index within a test point's row."
        )
    return array.astype(np.intp)


def _check_fractions(fractions: Any, n_train: int) -> tuple[np.ndarray, np.ndarray]:
    """``fractions`` as a float array and the removal sizes, or a ValueError."""
    array = np.asarray(fractions, dtype=float).ravel()
    if array.size == 0:
        raise ValueError(
            "fractions must hold at least one fraction of the training set to "
            "remove, e.g. fractions=(0.01, 0.05)."
        )
    bad = array[~((array > 0) & (array <= 1))]
    if bad.size:
        raise ValueError(
            f"fractions must lie in (0, 1]; got {bad[:5].tolist()}. Pass the "
            "fraction of the training set to remove, e.g. 0.05 for 5%."
        )
    if np.unique(array).size != array.size:
        raise ValueError(
            f"fractions must not repeat a value; got {array.tolist()}. Drop the "
            "duplicates (each would only repeat the same refits)."
        )
    sizes = np.maximum(1, np.round(array * n_train)).astype(int)
    if sizes.max() >= n_train:
        raise ValueError(
            f"fractions {array[sizes >= n_train].tolist()} remove all "
            f"{n_train} training examples (max(1, round(fraction * n_train))); "
            "choose fractions that leave at least one example to refit on."
        )
    return array, sizes


@validate_params(
    {
        "explainer": [InfluenceExplainer],
        "X_test": ["array-like", "sparse matrix"],
        "y_test": ["array-like", None],
        "fractions": ["array-like"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "retraining": [StrOptions(set(_RETRAINING))],
        "verbose": ["verbose"],
        "cache": ["boolean"],
        "proponents": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def removal_curve(
    explainer: InfluenceExplainer,
    X_test: Any,
    y_test: Any = None,
    *,
    fractions: Any = (0.001, 0.005, 0.01, 0.02, 0.05),
    n_jobs: int | None = None,
    random_state: Any = None,
    retraining: str = "auto",
    verbose: int = 0,
    cache: bool = True,
    proponents: Any = None,
) -> Bunch:
    """Change of each test output when its top proponents are removed.

    The removal experiment of Brophy et al. (2023): for each test point and
    each fraction, the ``max(1, round(fraction * n_train))`` strongest
    proponents of that point (by :meth:`InfluenceExplainer.explain`, so the
    sets for increasing fractions are prefixes of one ranking) are removed,
    the model is refit, and the change of the point's tracked output is
    measured. A good explainer's proponents support the point: removing them
    raises its test loss, more than removing as many random examples does
    (the baseline, refit in the same way).

    Refits are those of :func:`linear_datamodeling_score`: the model's own
    solver, a full refit on the kept examples (same hyper-parameters,
    ``sample_weight`` and class weights; a pipeline's earlier steps kept
    fixed), converged tightly, a convex model warm-started from the fitted
    one, one thread each (BLAS and OpenMP). The reference output is that of
    the same refit on the whole training set, so that solver tolerance does
    not enter the changes. All refits (one reference, then one per test point, fraction
    and kind of removal) run in one joblib ``Parallel``. ``retraining``
    chooses how (``"auto"``: warm for a convex model, from scratch for a
    network; or ``"proximal-bregman"``, see
    :func:`linear_datamodeling_score`), and refits asked before are reused
    from the same cache: a second call for another method with the same
    ``random_state`` repeats neither the reference nor the random baseline.

    Parameters
    ----------
    explainer : InfluenceExplainer
        A fitted explainer; its model, training data, sample weights and
        ``method`` (which ranks the proponents) are used.
    X_test : {array-like, sparse matrix} of shape (n_test, n_features)
        Test points whose outputs are tracked (raw input for a pipeline).
    y_test : array-like of shape (n_test,) or None, default=None
        Their labels (or targets): the output is the test loss at them.
        ``None`` means what :meth:`InfluenceExplainer.transform` explains by
        default: a classifier's loss at the labels the explained model
        predicts (kept fixed across refits), a regressor's prediction.
    fractions : array-like of float in (0, 1], default=(0.001, 0.005, 0.01, 0.02, 0.05)
        Fractions of the training set to remove, in any order (the results
        follow it), without repeats; each removes
        ``max(1, round(fraction * n_train))`` examples, fewer than
        ``n_train``. Two fractions may round to the same size; each is refit.
    n_jobs : int, default=None
        Number of joblib jobs over the refits. ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context. Results do not depend on it.
    random_state : int, RandomState instance or None, default=None
        Seeds the random baseline sets (and nothing else): the same seed
        gives the same random sets for every explainer of the same training
        set.
    retraining : {"auto", "warm", "scratch", "proximal-bregman"}, default="auto"
        How each removal is retrained (see :func:`linear_datamodeling_score`).
    verbose : int, default=0
        With ``verbose > 0``, a progress line on standard error counts the
        finished retrainings (and those reused).
    cache : bool, default=True
        Reuse retrainings kept from earlier calls and keep these ones (see
        :func:`linear_datamodeling_score`). ``False`` retrains everything.
    proponents : array-like of int of shape (n_test, n_ranked), default=None
        Training indices to remove instead of the explainer's own
        proponents, strongest first, at least as many per test point as the
        largest removal. For another ranking refit in the same way, e.g. the
        nearest-neighbour baseline:
        ``NearestNeighborExplainer(model).fit(X, y).explain(X_test, k=k).proponents``
        (the explainer then supplies only the model and the data to refit).

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        With attributes

        fractions : ndarray of shape (n_fractions,)
            The fractions, as given.
        sizes : ndarray of int of shape (n_fractions,)
            Examples removed per fraction: ``max(1, round(fraction * n_train))``.
        change : ndarray of shape (n_test, n_fractions)
            Output of the refit without the top ``sizes[j]`` proponents of
            test point ``t``, minus the output of the refit on all the data.
            The output is the test loss (the model's own per-example loss),
            or, for a regressor explained without ``y_test``, **minus** its
            prediction, as in :func:`linear_datamodeling_score`; positive:
            removing the proponents raised the loss (lowered the prediction).
        random_change : ndarray of shape (n_test, n_fractions)
            The same for ``sizes[j]`` training examples drawn uniformly
            without replacement: one random permutation per test point, whose
            prefixes are removed (nested like the proponents).
        removed : list of length n_test of lists of length n_fractions
            ``removed[t][j]``: the training indices removed for ``change[t, j]``
            (strongest proponent first).
        random_removed : list of length n_test of lists of length n_fractions
            The same for ``random_change[t, j]``.
        retraining : str
            ``"warm"``, ``"scratch"`` or ``"proximal-bregman"``.

    Notes
    -----
    A removal that takes away every example of a class is refused with a
    ValueError before any refit (the refit would have different classes).
    Refits that do not converge raise one
    :class:`~sklearn.exceptions.ConvergenceWarning`. The cost is
    ``1 + 2 * n_test * n_fractions`` refits.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skrelatif import InfluenceExplainer
    >>> from skrelatif.validation import removal_curve
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> model = LogisticRegression(C=0.1, tol=1e-10).fit(X[:200], y[:200])
    >>> explainer = InfluenceExplainer(model, method="if").fit(X[:200], y[:200])
    >>> curve = removal_curve(
    ...     explainer, X[200:203], y[200:203], fractions=(0.01, 0.05), random_state=0
    ... )
    >>> curve.sizes.tolist(), curve.change.shape, len(curve.removed[0][1])
    ([2, 10], (3, 2), 10)
    """
    check_is_fitted(explainer)
    influence = explainer._influence
    adapter = influence.adapter
    n_train = influence.n_train_
    y_encoded = influence.y_
    fractions, sizes = _check_fractions(fractions, n_train)
    mode = _resolve_retraining(retraining, adapter, network="scratch")
    Xt_test, yt_test, _ = explainer._test_input(X_test, y_test)
    n_test = Xt_test.shape[0]

    if proponents is None:
        ranking = np.asarray(
            explainer.explain(X_test, y_test, k=int(sizes.max())).proponents
        )
    else:
        ranking = _check_proponents(proponents, n_test, n_train, int(sizes.max()))
    rng = check_random_state(random_state)
    permutations = np.argsort(rng.random_sample((n_test, n_train)), axis=1)
    removed = [[ranking[t, :s] for s in sizes] for t in range(n_test)]
    random_removed = [[permutations[t, :s] for s in sizes] for t in range(n_test)]

    if not adapter.is_regressor:
        onehot = np.eye(len(adapter.classes_), dtype=int)[y_encoded]
        class_counts = onehot.sum(axis=0)
        for kind, order in (
            ("top {} proponents", ranking),
            ("{} random examples", permutations),
        ):
            # class counts of every prefix removed: (n_test, n_fractions, n_classes)
            taken = np.cumsum(onehot[order[:, : sizes.max()]], axis=1)[:, sizes - 1]
            t, j = np.nonzero((taken == class_counts).any(axis=2))
            if t.size:
                raise ValueError(
                    f"removing the {kind.format(sizes[j[0]])} for test point "
                    f"{t[0]} (fraction {fractions[j[0]]}) takes away every "
                    "example of a class; a refit would change the model's "
                    "classes. Choose smaller fractions."
                )

    # a refit on all rows, then one per (kind, test point, fraction)
    tasks = [(None, Xt_test, yt_test)] + [
        (
            np.asarray(sets[t][j]),
            Xt_test[t : t + 1],
            None if yt_test is None else yt_test[t : t + 1],
        )
        for sets in (removed, random_removed)
        for t in range(n_test)
        for j in range(len(sizes))
    ]
    outputs = _refit_outputs(
        explainer,
        tasks,
        n_jobs,
        retraining=mode,
        cache=cache,
        verbose=verbose,
        label="removal_curve",
    )
    changes = np.array([o[0] for o in outputs[1:]]).reshape(2, n_test, len(sizes))
    changes -= outputs[0][None, :, None]
    return Bunch(
        fractions=fractions,
        sizes=sizes,
        change=changes[0],
        random_change=changes[1],
        removed=removed,
        random_removed=random_removed,
        retraining=mode,
    )

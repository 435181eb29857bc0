"""Flip sets: the fewest training examples whose removal changes a predicted
label (:meth:`InfluenceExplainer.flip_sets`)."""

from __future__ import annotations

import numpy as np
from joblib import effective_n_jobs
from sklearn.utils import Bunch
from threadpoolctl import threadpool_limits

from .._utils import chunk_slices, parallel_map
from .exact import ExactRemoval
from .groups import GroupRemoval
from .newton import newton_test_state, outputs_after, solve_small


def _margin(F: np.ndarray, label: int) -> np.ndarray:
    """How far the outputs ``F`` (m, K) are from predicting another label than
    ``label`` (positive: ``label`` is predicted)."""
    if F.shape[1] == 1:
        return (2 * label - 1) * F[:, 0]
    others = np.delete(F, label, axis=1)
    return F[:, label] - others.max(axis=1)


def flip_set(influence, X_row, label: int, max_size: int, exact) -> tuple:
    """The smallest greedy set of training examples whose removal changes the
    predicted label of one test point; ``(indices, verified)``.

    Candidates are ranked by the margin after their own Newton removal step;
    prefixes of that ranking are evaluated with the group Newton step (1)
    (one (s K)-sized solve each, from precomputed blocks) until the label
    flips; ``exact`` (an :class:`ExactRemoval` or None) then confirms the set
    by refitting without it, moving to longer prefixes if the refit does not
    flip, and to shorter ones while they still flip.
    """
    adapter, solver = influence.adapter, influence.solver_
    X, y, weights = influence.X_, influence.y_, influence.weights_
    shares = influence.penalty_share_
    z = influence.penalty_z_
    state = newton_test_state(adapter, solver, X_row, None, z)
    F = state.outputs
    K = F.shape[1]
    margin = _margin(F, label)[0]
    moved = np.empty((influence.n_train_, K))
    for rows in chunk_slices(influence.n_train_, 8 * 4 * K * max(adapter.n_params, 1)):
        u = influence.newton_u_[rows]
        moved[rows] = outputs_after(state, X[rows], u, shares[rows])[0].T
    new_margin = _margin(moved, label)
    order = np.argsort(new_margin, kind="stable")
    order = order[new_margin[order] < margin][:max_size]
    if order.size == 0:
        return np.zeros(0, dtype=np.intp), False
    group = GroupRemoval(adapter, solver, X, y, weights, order)  # (1) blocks
    linear = state.solved is not None
    if linear:
        B = adapter.output_jacobian(X_row)[0] @ group.solved.T  # J_t H^-1 J_G^T
    Jz_train = group.J @ z  # (2): J_i z, then J_t z

    def predicted_flip(s):
        n = s * K
        rho = float(np.sum(shares[order[:s]]))
        v = group.v[:n] + rho * (group.M[:n, :n] @ Jz_train[:n])
        u = solve_small(group.capacitance[:n, :n], v, "this group")
        if linear:
            after = F + B[:, :n] @ u + rho * state.Jz[0]
        else:  # the forward pass at theta* + delta_G
            delta = group.solved[:n].T @ u + rho * z
            after = adapter.at(adapter.parameters() + delta).outputs(X_row)
        return _margin(after, label)[0] < 0

    def exact_flip(s):
        theta, _ = exact.remove(order[:s])
        return _margin(exact.adapter.at(theta).outputs(X_row), label)[0] < 0

    for s in range(1, order.size + 1):
        if not predicted_flip(s):
            continue
        if exact is None:
            return order[:s], False
        if exact_flip(s):
            while s > 1 and exact_flip(s - 1):
                s -= 1
            return order[:s], True
    return np.zeros(0, dtype=np.intp), False


def _flip_chunk(influence, X_test, labels, max_size, verify):
    with threadpool_limits(limits=1, user_api="blas"):  # many small solves
        return _flip_sets(influence, X_test, labels, max_size, verify)


def _flip_sets(influence, X_test, labels, max_size, verify):
    exact = None
    if verify:
        exact = ExactRemoval(
            influence.adapter,
            influence.X_,
            influence.y_,
            influence.weights_,
            influence.penalty_share_,
            solver=influence.exact_solver_,
        )
    return [
        flip_set(influence, X_test[t : t + 1], int(labels[t]), max_size, exact)
        for t in range(X_test.shape[0])
    ]


def flip_sets(influence, X_test, labels, max_size, verify, *, n_jobs=None):
    """:meth:`InfluenceExplainer.flip_sets` over batches of test points."""
    if getattr(influence, "newton_u_", None) is None:
        influence._newton_rows()
    n_test = X_test.shape[0]
    size = max(1, -(-n_test // max(1, effective_n_jobs(n_jobs))))
    batches = [slice(i, min(i + size, n_test)) for i in range(0, n_test, size)]
    results = [
        found
        for part in parallel_map(
            _flip_chunk,
            ((influence, X_test[b], labels[b], max_size, verify) for b in batches),
            n_jobs=n_jobs,
        )
        for found in part
    ]
    indices = [np.asarray(found, dtype=np.intp) for found, _ in results]
    return Bunch(
        size=np.array([len(i) if len(i) else -1 for i in indices]),
        indices=indices,
        verified=np.array([bool(v) for _, v in results]),
    )

"""Removing groups of training examples together: the group Newton step
(1)-(2) of :mod:`skrelatif._removal`, :meth:`InfluenceExplainer.predict_removal`
and the validation of groups."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
from joblib import effective_n_jobs
from scipy import linalg

from .._utils import chunk_slices, parallel_map
from .newton import curvature_matrices, inverse_jacobian, penalty_direction, solve_small


class GroupRemoval:
    """One Newton step (1) for removing a group of training examples.

    A group of ``g`` examples with ``g K`` at most ``P`` is removed by the
    Woodbury form (1), a ``g K`` x ``g K`` solve. A larger group (half of
    the training set, as the linear datamodeling score removes) is removed
    by the same step written in parameter space, a P x P solve:
    ``H - J^T M J = H (I - H^-1 J^T M J)``, so ``delta_G = (I - H^-1 J^T M
    J)^-1 H^-1 J^T v``, where ``H^-1 J^T`` is at hand (rows of ``solved``).

    Parameters
    ----------
    adapter, solver
        The model's mathematics at ``theta*`` and ``H^-1`` at ``theta*``.
    X, y_encoded, weights
        The training data and ``w = c s``.
    rows : ndarray of int
        The group.
    """

    def __init__(
        self, adapter, solver, X, y_encoded, weights, rows, shares=None
    ) -> None:
        rows = np.asarray(rows)
        Xg, yg, wg = X[rows], y_encoded[rows], weights[rows]
        J = adapter.output_jacobian(Xg)  # (g, K, P)
        g, K, P = J.shape
        self.J = J.reshape(g * K, P)
        self.solved = inverse_jacobian(solver, J).reshape(g * K, P)  # H^-1 J^T
        D = curvature_matrices(*adapter.loss_curvature(Xg, yg))
        self._blocks = wg[:, None, None] * D  # M = blockdiag(w_j D_j)
        direction, norm = adapter.loss_gradients(Xg, yg)
        self.v = ((wg * norm)[:, None] * direction).ravel()
        self.solver = solver
        self.direct = g * K > P  # the P x P form is the smaller solve
        self._lu = None
        # rho_G of (2) and z = H^-1 p theta*
        self.share = 0.0 if shares is None else float(np.sum(shares[rows]))
        self.z = penalty_direction(adapter, solver) if self.share else None
        self._v_data = self.v
        if self.share:
            self.v = self.v + self.share * self._apply_M(self.J @ self.z)

    def _apply_M(self, u: np.ndarray) -> np.ndarray:
        """``M u`` for stacked (g K,) or (g K, m) ``u``, block by block."""
        g, K, _ = self._blocks.shape
        shaped = u.reshape(g, K, -1)
        return np.einsum("gkl,glm->gkm", self._blocks, shaped).reshape(u.shape)

    @cached_property
    def M(self) -> np.ndarray:
        """``blockdiag(w_j D_j)``, dense (g K, g K)."""
        return linalg.block_diag(*self._blocks)

    @cached_property
    def A(self) -> np.ndarray:
        """``J H^-1 J^T``, (g K, g K)."""
        return self.J @ self.solved.T

    @cached_property
    def capacitance(self) -> np.ndarray:
        """``I - M A`` of the Woodbury form."""
        return np.eye(self.J.shape[0]) - self._apply_M(self.A)

    def _factor(self):
        """LU factors of ``I - M A`` (g K x g K) or, for the direct form, of
        ``I - H^-1 J^T M J`` (P x P), computed once."""
        if self._lu is None:
            if self.direct:
                MJ = self._apply_M(self.J)
                matrix = np.eye(self.J.shape[1]) - self.solved.T @ MJ
            else:
                matrix = self.capacitance
            self._lu = linalg.lu_factor(matrix, check_finite=False)
            if not np.all(np.abs(np.diagonal(self._lu[0])) > 0):
                solve_small(np.zeros((1, 1)), np.zeros(1), "this group")
        return self._lu

    def _solve(self, rhs: np.ndarray) -> np.ndarray:
        """``(I - M A)^-1 rhs`` (Woodbury form) or ``(I - H^-1 J^T M J)^-1
        rhs`` (direct form)."""
        return linalg.lu_solve(self._factor(), rhs, check_finite=False)

    def step(self) -> np.ndarray:
        """``delta_G`` of (2): the Newton step from ``theta*``, flat (P,)."""
        if self.direct:  # (H - J^T M J) delta = J^T v_data + rho_G H z
            rhs = self.solved.T @ self._v_data
            if self.share:
                rhs = rhs + self.share * self.z
            return self._solve(rhs)
        step = self.solved.T @ self._solve(self.v)
        return step + self.share * self.z if self.share else step

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """``(H - J^T M J)^-1 z`` for a flat vector z (the Woodbury form)."""
        Hz = np.asarray(self.solver.solve(z[None, :]), dtype=np.float64)[0]
        if self.direct:
            return self._solve(Hz)
        return Hz + self.solved.T @ self._solve(self._apply_M(self.solved @ z))


def group_step(adapter, solver, X, y_encoded, weights, rows, shares) -> np.ndarray:
    """The Newton step (2) of removing ``rows`` (flat, (P,))."""
    return GroupRemoval(adapter, solver, X, y_encoded, weights, rows, shares).step()


def removal_change(adapter, theta, X_test, y_test) -> np.ndarray:
    """Change of the test losses (``y_test`` None: minus the change of the
    prediction) when the parameters move from the adapter's to ``theta``."""
    moved = adapter.at(theta)
    if y_test is None:
        return -(moved.outputs(X_test)[:, 0] - adapter.outputs(X_test)[:, 0])
    return moved.losses(X_test, y_test) - adapter.losses(X_test, y_test)


def _group_error(name: str) -> ValueError:
    return ValueError(
        f"{name} must be a sequence whose elements are each a training index "
        "(an int: that example removed alone) or a 1-d array-like of training "
        "indices (removed together), e.g. [3, 7], [[0, 1], [2]] or a 2-d int "
        "array with one group per row."
    )


def _as_index_array(item: Any, name: str) -> np.ndarray:
    """One element of ``groups`` as a 1-d array (an int: a group of one)."""
    if isinstance(item, (str, bytes)):
        raise _group_error(name)
    array = np.asarray(item)
    if array.ndim == 0:
        array = array.reshape(1)
    elif array.ndim != 1:
        raise ValueError(
            f"Each group in {name} must be an int or a 1-d array-like of "
            f"training indices; got an array of shape {array.shape}."
        )
    if array.size == 0:
        raise ValueError(f"Each group in {name} must be non-empty; got an empty one.")
    return array


def check_groups(groups: Any, n_train: int, *, name: str = "groups") -> list:
    """Training indices removed together, one int array per group.

    The one meaning of groups (spec section 10), shared by
    :meth:`InfluenceExplainer.predict_removal` and
    :func:`skrelatif.validation.leave_one_out`: a sequence whose elements are
    each an int (a group of one) or a 1-d array-like of ints (a group); so
    ``[0, 1, 2]`` and ``np.array([0, 1, 2])`` are three single removals,
    ``[[0, 1], [2]]`` two groups and a 2-d int array one group per row.
    ``ValueError`` (naming ``name``) for no group, an empty group, an index
    twice in a group, indices that are not integers or out of range, and a
    group of every training example.
    """
    if groups is None or np.isscalar(groups) or isinstance(groups, dict):
        raise _group_error(name)
    try:  # the common cases at once: ints (ndim 1) or equal-sized groups
        array = np.asarray(groups)
    except ValueError:  # ragged: group by group below
        array = None
    if array is not None and array.dtype != object and array.ndim in (1, 2):
        if array.size == 0:
            raise ValueError(
                f"{name} must contain at least one group; got an empty sequence."
                if array.shape[0] == 0
                else f"Each group in {name} must be non-empty; got an empty one."
            )
        matrix = array[:, None] if array.ndim == 1 else array
    else:
        try:
            items = list(groups)
        except TypeError:
            raise _group_error(name) from None
        if not items:
            raise ValueError(f"{name} must contain at least one group; got none.")
        matrix = None
        arrays = [_as_index_array(item, name) for item in items]
    values = matrix if matrix is not None else np.concatenate(arrays)
    if not np.issubdtype(values.dtype, np.integer):
        hint = (
            " For a boolean mask, pass np.flatnonzero(mask)."
            if values.dtype == bool
            else ""
        )
        raise ValueError(
            f"Training indices in {name} must be integers; got dtype "
            f"{values.dtype}.{hint}"
        )
    if values.min() < 0 or values.max() >= n_train:
        raise ValueError(
            f"Training indices in {name} must be between 0 and {n_train - 1}; got "
            f"values from {values.min()} to {values.max()}."
        )
    if matrix is not None:
        arrays = list(matrix.astype(np.intp, copy=False))
        ordered = np.sort(matrix, axis=1)
        repeated = bool(np.any(ordered[:, 1:] == ordered[:, :-1]))
        sizes = np.full(len(arrays), matrix.shape[1])
    else:
        arrays = [a.astype(np.intp, copy=False) for a in arrays]
        sizes = np.array([np.unique(a).size for a in arrays])
        repeated = bool(np.any(sizes != [a.size for a in arrays]))
    if repeated:
        raise ValueError(
            f"A group in {name} lists the same training index twice; each group "
            "removes distinct examples."
        )
    if np.any(sizes >= n_train):
        raise ValueError(
            f"A group in {name} removes every training example ({n_train}); there "
            "is no model without them. Remove fewer examples."
        )
    return arrays


def _removal_chunk(influence, X_test, y_test, groups, method):
    adapter, solver = influence.adapter, influence.solver_
    X, y, weights = influence.X_, influence.y_, influence.weights_
    if method != "newton":  # sum of the "if" scores: g_t^T H^-1 sum_i c s_i g_i
        summed = np.empty((len(groups), adapter.n_params))
        for j, group in enumerate(groups):
            coefficients = (weights[group] * influence.grad_norm_[group])[:, None]
            summed[j] = adapter.gradients(
                X[group], coefficients * influence.direction_[group]
            ).sum(axis=0)
        solved = np.asarray(solver.solve(summed))  # all the groups at once
        return influence.test_gradients(X_test, y_test) @ solved.T
    columns = []
    for group in groups:
        step = group_step(
            adapter, solver, X, y, weights, group, influence.penalty_share_
        )
        columns.append(
            removal_change(adapter, adapter.parameters() + step, X_test, y_test)
        )
    return np.column_stack(columns)


def predict_removal(influence, X_test, y_test, groups, method, *, n_jobs=None):
    """(n_test, n_groups) predicted test-loss changes (see the explainer)."""
    solver = influence.solver_
    if solver.iterative:
        # batches run here, as large as the solver's workspace allows: each
        # of its iterations is a pass over the training set, itself
        # dispatched in about n_jobs tasks
        row_bytes = 8 * solver.workspace * influence.adapter.n_params
        batches = [groups[rows] for rows in chunk_slices(len(groups), row_bytes)]
        n_jobs = 1
    else:
        size = max(1, len(groups) // max(1, 4 * effective_n_jobs(n_jobs)))
        batches = [groups[i : i + size] for i in range(0, len(groups), size)]
    parts = parallel_map(
        _removal_chunk,
        ((influence, X_test, y_test, batch, method) for batch in batches),
        n_jobs=n_jobs,
    )
    return np.hstack(list(parts))

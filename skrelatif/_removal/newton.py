"""Newton leave-one-out of single examples: the per-example coefficients
``u_i`` and leave-one-out losses of the training rows, the test state and the
predicted change of the test losses (equations (1) and (2) of
:mod:`skrelatif._removal`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._utils import chunk_slices


def curvature_matrices(a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``D_i = diag(a_i) - b_i b_i^T`` as an (n, K, K) array."""
    D = a[:, :, None] * np.eye(a.shape[1])
    if b is not None:
        D -= b[:, :, None] * b[:, None, :]
    return D


def inverse_jacobian(solver, J: np.ndarray) -> np.ndarray:
    """``H^-1 J^T`` as rows: (n, K, P) for the (n, K, P) Jacobian rows ``J``."""
    n, K, P = J.shape
    return np.asarray(solver.solve(J.reshape(n * K, P)), dtype=np.float64).reshape(
        n, K, P
    )


def solve_small(matrix: np.ndarray, rhs: np.ndarray, what: str) -> np.ndarray:
    try:
        return np.linalg.solve(matrix, rhs)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"Removing {what} makes the Hessian of the training objective singular "
            "(the remaining data do not determine the parameters). Pass damping > 0."
        ) from None


def penalty_direction(adapter, solver) -> np.ndarray:
    """``z = H^-1 p theta*`` of (2) (zeros without a penalty)."""
    gradient = adapter.penalty() * adapter.parameters()
    if not np.any(gradient):
        return np.zeros_like(gradient)
    return np.asarray(solver.solve(gradient[None, :]), dtype=np.float64)[0]


def parameter_steps(adapter, solver, J, u, shares, z) -> np.ndarray:
    """``delta_i = H^-1 J_i^T u_i + rho_i z`` of (2) for a chunk: (n, P), from
    the solver on the chunk's stacked Jacobian rows ``J`` (n, K, P)."""
    solved = inverse_jacobian(solver, J)
    return np.einsum("nkp,nk->np", solved, u) + shares[:, None] * z


def newton_chunk(adapter, solver, X, y_encoded, weights, shares, z, rows=None):
    """Per training example of a chunk (training ``rows``, where the solver
    has every training example's block ``A_i``, ``training_blocks``): the
    coefficients ``u_i`` of (2),
    ``(I - M_i A_i)^-1 (w_i r_i + rho_i M_i J_i z)`` (n, K), and the example's
    loss after its Newton leave-one-out step: at ``f_i + A_i u_i + rho_i J_i z``
    when the outputs are linear in theta, else through the forward pass at
    ``theta* + delta_i``."""
    J = adapter.output_jacobian(X)
    training = getattr(solver, "training_blocks", None)
    A = solver.gram_blocks(J) if training is None or rows is None else training()[rows]
    M = weights[:, None, None] * curvature_matrices(
        *adapter.loss_curvature(X, y_encoded)
    )
    direction, norm = adapter.loss_gradients(X, y_encoded)
    v = (weights * norm)[:, None] * direction
    penalty_shift = shares[:, None] * (J @ z)  # rho_i J_i z, (n, K)
    v = v + np.einsum("nkl,nl->nk", M, penalty_shift)
    K = v.shape[1]
    u = solve_small(np.eye(K) - M @ A, v[:, :, None], "a training example")[..., 0]
    if adapter.outputs_linear_in_params:
        moved = adapter.outputs(X) + np.einsum("nkl,nl->nk", A, u) + penalty_shift
    else:
        delta = parameter_steps(adapter, solver, J, u, shares, z)
        moved = adapter.row_outputs_at(X, adapter.parameters() + delta)
    return u, adapter.output_losses(moved, y_encoded)


def newton_rows(adapter, solver, X, y_encoded, weights, shares, z, row_bytes: int):
    """``u`` (n, K) and the Newton leave-one-out losses of every training
    example, chunk by chunk."""
    parts = [
        newton_chunk(
            adapter,
            solver,
            X[rows],
            y_encoded[rows],
            weights[rows],
            shares[rows],
            z,
            rows,
        )
        for rows in chunk_slices(X.shape[0], row_bytes)
    ]
    return np.vstack([u for u, _ in parts]), np.concatenate([loss for _, loss in parts])


class TestState(NamedTuple):
    """What the Newton scores of one test batch need.

    ``outputs`` are ``f_t`` (n_test, K) and ``y`` the targets (None: a
    regressor's prediction is explained). Outputs linear in theta: ``solved``
    holds the rows ``H^-1 J_t^T`` (n_test * K, P) and ``Jz`` ``J_t z``; else
    ``X`` is the test batch, evaluated by forward passes, with the ``solver``
    and ``z`` that make the parameter steps.
    """

    adapter: Any
    outputs: np.ndarray
    y: np.ndarray | None
    solved: np.ndarray | None = None
    Jz: np.ndarray | None = None
    X: Any = None
    solver: Any = None
    z: np.ndarray | None = None


def newton_test_state(adapter, solver, X, y_encoded, z) -> TestState:
    """The :class:`TestState` of a test batch."""
    F = adapter.outputs(X)
    if not adapter.outputs_linear_in_params:
        return TestState(adapter, F, y_encoded, X=X, solver=solver, z=z)
    J = adapter.output_jacobian(X)
    solved = inverse_jacobian(solver, J).reshape(-1, J.shape[2])
    return TestState(adapter, F, y_encoded, solved=solved, Jz=J @ z)


def output_shifts(state: TestState, X, u, shares) -> np.ndarray:
    """Outputs linear in theta: how the test outputs move when each training
    example of the chunk is removed, ``J_t H^-1 J_i^T u_i + rho_i J_t z``,
    shape (n_test, K, n_rows)."""
    n_test, K = state.outputs.shape
    shift = state.adapter.gradient_dots(state.solved, X, u)
    return shift.reshape(n_test, K, u.shape[0]) + state.Jz[:, :, None] * shares


def outputs_after(state: TestState, X, u, shares) -> np.ndarray:
    """The test outputs after each training example's Newton removal step,
    (n_test, K, n_rows): ``f_t`` moved by :func:`output_shifts` when the outputs
    are linear in theta, else the forward pass at ``theta* + delta_i``
    (chunks of training rows, so that their Jacobians stay small)."""
    adapter = state.adapter
    if state.solved is not None:
        return state.outputs[:, :, None] + output_shifts(state, X, u, shares)
    n_test, K = state.outputs.shape
    theta = adapter.parameters()
    out = np.empty((n_test, K, u.shape[0]))
    for rows in chunk_slices(u.shape[0], 8 * 3 * K * max(adapter.n_params, 1)):
        J = adapter.output_jacobian(X[rows])
        delta = parameter_steps(
            adapter, state.solver, J, u[rows], shares[rows], state.z
        )
        out[:, :, rows] = adapter.outputs_at(state.X, theta + delta).transpose(1, 2, 0)
    return out


def newton_cross(state: TestState, X, u, shares):
    """Newton leave-one-out change of the test losses, (n_test, n_rows): the
    loss after the step of (2) minus the loss at ``f_t``; for a regressor's
    prediction, minus the change of the prediction."""
    adapter, F, y_encoded = state.adapter, state.outputs, state.y
    n_test, K = F.shape
    n_rows = u.shape[0]
    if y_encoded is None:
        if state.solved is not None:
            return -output_shifts(state, X, u, shares)[:, 0, :]
        return -(outputs_after(state, X, u, shares)[:, 0, :] - F[:, :1])
    moved = outputs_after(state, X, u, shares)  # (n_test, K, n_rows)
    moved = moved.transpose(0, 2, 1).reshape(-1, K)
    after = adapter.output_losses(moved, np.repeat(y_encoded, n_rows))
    return after.reshape(n_test, n_rows) - adapter.output_losses(F, y_encoded)[:, None]

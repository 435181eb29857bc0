"""Newton leave-one-out of single examples: the per-example coefficients
``u_i`` and leave-one-out losses of the training rows, the test state and the
predicted change of the test losses (equations (1) and (2) of
:mod:`skrelatif._removal`)."""

from __future__ import annotations

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


def newton_chunk(adapter, solver, X, y_encoded, weights, shares, z):
    """Per training example of a chunk: the coefficients ``u_i`` of (2),
    ``(I - M_i A_i)^-1 (w_i r_i + rho_i M_i J_i z)`` (n, K), and the example's
    loss after its Newton leave-one-out step, at ``f_i + A_i u_i + rho_i J_i z``."""
    J = adapter.output_jacobian(X)
    A = solver.gram_blocks(J)
    M = weights[:, None, None] * curvature_matrices(
        *adapter.loss_curvature(X, y_encoded)
    )
    direction, norm = adapter.loss_gradients(X, y_encoded)
    v = (weights * norm)[:, None] * direction
    penalty_shift = shares[:, None] * (J @ z)  # rho_i J_i z, (n, K)
    v = v + np.einsum("nkl,nl->nk", M, penalty_shift)
    K = v.shape[1]
    u = solve_small(np.eye(K) - M @ A, v[:, :, None], "a training example")[..., 0]
    moved = adapter.outputs(X) + np.einsum("nkl,nl->nk", A, u) + penalty_shift
    return u, adapter.output_losses(moved, y_encoded)


def newton_rows(adapter, solver, X, y_encoded, weights, shares, z, row_bytes: int):
    """``u`` (n, K) and the Newton leave-one-out losses of every training
    example, chunk by chunk."""
    parts = [
        newton_chunk(
            adapter, solver, X[rows], y_encoded[rows], weights[rows], shares[rows], z
        )
        for rows in chunk_slices(X.shape[0], row_bytes)
    ]
    return np.vstack([u for u, _ in parts]), np.concatenate([loss for _, loss in parts])


def newton_test_state(adapter, solver, X, y_encoded, z):
    """Per test batch: ``H^-1 J_t^T`` (rows, (n_test * K, P)), ``J_t z``, the
    outputs and the targets (None: a regressor's prediction is explained)."""
    J = adapter.output_jacobian(X)
    solved = inverse_jacobian(solver, J).reshape(-1, J.shape[2])
    return adapter, solved, J @ z, adapter.outputs(X), y_encoded


def output_shifts(state, X, u, shares) -> np.ndarray:
    """How the test outputs move when each training example of the chunk is
    removed: ``J_t H^-1 J_i^T u_i + rho_i J_t z``, shape (n_test, K, n_rows)."""
    adapter, solved, Jz, F, _ = state
    n_test, K = F.shape
    shift = adapter.gradient_dots(solved, X, u).reshape(n_test, K, u.shape[0])
    return shift + Jz[:, :, None] * shares


def newton_cross(state, X, u, shares):
    """Newton leave-one-out change of the test losses, (n_test, n_rows): the
    loss at the moved outputs minus the loss at ``f_t`` (2); for a regressor's
    prediction, minus the change of the prediction."""
    adapter, _, _, F, y_encoded = state
    n_test, K = F.shape
    n_rows = u.shape[0]
    shift = output_shifts(state, X, u, shares)
    if y_encoded is None:
        return -shift[:, 0, :]
    moved = F[:, :, None] + shift  # (n_test, K, n_rows)
    moved = moved.transpose(0, 2, 1).reshape(-1, K)
    after = adapter.output_losses(moved, np.repeat(y_encoded, n_rows))
    return after.reshape(n_test, n_rows) - adapter.output_losses(F, y_encoded)[:, None]

"""Conjugate gradients with a budget and rigorous bounds: the reference
that ``normaliser_error_`` measures a Kronecker-factored solver against, on
models too large for a dense one (see :func:`quad_bounds`)."""

from __future__ import annotations

import time

import numpy as np
from scipy import linalg

from ..exceptions import SingularCurvatureError


class Jacobi:
    """The preconditioner ``diag(C + damping I)^-1``."""

    def __init__(self, operator, damping: float, diagonal=None) -> None:
        diagonal = operator.diagonal() if diagonal is None else diagonal
        self.inverse = 1.0 / (diagonal + damping)

    def solve(self, R: np.ndarray) -> np.ndarray:
        return R * self.inverse


class BlockJacobi(Jacobi):
    """The preconditioner ``H_II^-1`` on a block I of coordinates (one
    Cholesky factorisation) and ``diag(H)^-1`` on the others, for an operator
    with ``principal_block`` (a linear model's: the intercepts and the
    densest inputs, those the others are most coupled to).

    With ``C + damping I = H``: where the diagonal misses the coupling of a
    few coordinates to everything (the intercept and the words found in
    almost every document), the conjugate-gradient iterations fall from 76
    to 19 on the 20-class text model of ``benchmarks/bench_large.py``. The
    null space (the softmax's common intercept shift, inside the block) gets
    the block's mean diagonal, so the factor exists; the solver projects it
    away.
    """

    def __init__(
        self, operator, damping: float, max_params: int, diagonal=None
    ) -> None:
        super().__init__(operator, damping, diagonal)
        indices, block = operator.principal_block(max_params)
        block[np.diag_indices_from(block)] += damping
        if operator.null_space is not None:
            inside = operator.null_space[indices]
            block += np.mean(np.diag(block)) * (inside @ inside.T)
        self.indices = indices
        self.factor = linalg.cholesky(
            block, lower=True, overwrite_a=True, check_finite=False
        )

    def solve(self, R: np.ndarray) -> np.ndarray:
        out = R * self.inverse
        out[:, self.indices] = linalg.cho_solve(
            (self.factor, True), R[:, self.indices].T, check_finite=False
        ).T
        return out


def preconditioned_cg(
    operator, damping, preconditioner, B, *, tol, max_iter, max_seconds=np.inf
):
    """``(C + damping I)^-1`` applied to the rows of ``B`` by conjugate
    gradients, preconditioned by ``preconditioner.solve`` (a symmetric
    positive definite approximation of that inverse, e.g. :class:`Jacobi`).

    Stops when every row's residual is below ``tol`` times its right-hand
    side's norm, after ``max_iter`` iterations, or once ``max_seconds`` have
    passed; a direction of negative curvature raises
    :class:`~skrelatif.exceptions.SingularCurvatureError`. Each iteration is
    one ``operator.matvec`` of the rows not yet converged (one pass over the
    training data for all of them). ``g^T x_k`` of the iterate
    underestimates ``g^T H^-1 g`` by ``||x - x_k||_H^2``, at most
    ``||r_k||^2 / lambda_min``: a residual of ``tol`` makes its relative error
    at most ``tol^2`` times the condition number.

    Returns
    -------
    X : ndarray
        The solutions, like ``B``.
    residual : ndarray
        ``||b - (C + damping I) x||`` per row.
    iterations : int
        Iterations run (one curvature product of the rows not yet converged
        each).
    """
    B = operator.remove_null(np.array(B, dtype=np.float64))
    X = np.zeros_like(B)
    R = B.copy()
    Z = operator.remove_null(preconditioner.solve(R))
    D = Z.copy()
    rz = np.einsum("ij,ij->i", R, Z)
    target = tol * np.linalg.norm(B, axis=1)
    active = np.flatnonzero(np.linalg.norm(R, axis=1) > target)
    iteration = 0
    start = time.perf_counter()
    while (
        active.size
        and iteration < max_iter
        and time.perf_counter() - start < max_seconds
    ):
        iteration += 1
        Da = D[active]
        HD = operator.matvec(Da) + damping * Da
        curvature = np.einsum("ij,ij->i", Da, HD)
        if np.any(curvature < 0):
            raise SingularCurvatureError(0.0, indefinite=True)
        alpha = np.divide(
            rz[active], curvature, out=np.zeros_like(curvature), where=curvature > 0
        )
        X[active] += alpha[:, None] * Da
        R[active] -= alpha[:, None] * HD
        going = np.linalg.norm(R[active], axis=1) > target[active]
        active = active[going]
        if not active.size:
            break
        Za = operator.remove_null(preconditioner.solve(R[active]))
        rz_new = np.einsum("ij,ij->i", R[active], Za)
        beta = np.divide(
            rz_new, rz[active], out=np.zeros_like(rz_new), where=rz[active] > 0
        )
        D[active] = Za + beta[:, None] * D[active]
        rz[active] = rz_new
    return X, np.linalg.norm(R, axis=1), iteration


def quad_bounds(B, X, residual, damping, *, norms):
    """Rigorous bounds on ``b^T H^-1 b`` and ``||H^-1 b||`` from an
    approximate solution ``x`` of ``H x = b`` with residual ``r``, when every
    eigenvalue of H (on the orthogonal complement of the null space) is at
    least ``damping`` > 0: ``b^T H^-1 b - b^T x = r^T H^-1 r`` lies in
    ``[0, ||r||^2 / damping]`` (x a conjugate-gradient iterate, whose error is
    H-orthogonal to it), and ``||H^-1 b - x|| <= ||r|| / damping``.

    Returns ``(low, high)`` arrays of the quadratic forms, or of the norms."""
    if norms:
        size = np.linalg.norm(X, axis=1)
        return np.maximum(size - residual / damping, 0.0), size + residual / damping
    low = np.einsum("ij,ij->i", X, B)
    return low, low + np.square(residual) / damping

"""Conjugate gradients with a budget and rigorous bounds: the reference
that ``normaliser_error_`` measures a Kronecker-factored solver against, on
models too large for a dense one (see :func:`quad_bounds`)."""

from __future__ import annotations

import time
from functools import partial

import numpy as np
from scipy import linalg

from .._utils import compute_threads, thread_map, transposed
from ..exceptions import SingularCurvatureError

#: Elements of a (P, m) array in one row block of the conjugate-gradient
#: passes: about 1 MiB, so a block of each operand stays in cache between
#: the operations a pass makes on it.
_BLOCK_ELEMENTS = 2**17


class Jacobi:
    """The preconditioner ``diag(C + damping I)^-1``.

    Preconditioners act on columns: ``solve(R)`` for R of shape (P, m). They
    are the diagonal ``inverse`` everywhere but on the coordinates ``rows``,
    whose values ``solve_rows(R)`` gives (none for this one), so the
    conjugate-gradient passes apply the diagonal block by block and fix up
    a few rows.
    """

    rows = np.empty(0, dtype=np.intp)

    def __init__(self, operator, damping: float, diagonal=None) -> None:
        diagonal = operator.diagonal() if diagonal is None else diagonal
        self.inverse = 1.0 / (diagonal + damping)

    def solve_rows(self, R: np.ndarray) -> np.ndarray:
        """``(M R)[rows]``."""
        return R[self.rows] * self.inverse[self.rows, None]

    def solve(self, R: np.ndarray) -> np.ndarray:
        """``M R`` for the columns of R."""
        out = R * self.inverse[:, None]
        out[self.rows] = self.solve_rows(R)
        return out


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
        self.rows = indices
        self.factor = linalg.cholesky(
            block, lower=True, overwrite_a=True, check_finite=False
        )

    def solve_rows(self, R: np.ndarray) -> np.ndarray:
        return linalg.cho_solve((self.factor, True), R[self.rows], check_finite=False)


class NullProjector:
    """``V <- V - N N^T V`` for the columns of V, with N the operator's
    orthonormal ``null_space`` basis (P, r), touching only the rows where N
    is non-zero (a linear model's intercepts, a network's output biases)."""

    def __init__(self, operator) -> None:
        basis = getattr(operator, "null_space", None)
        if basis is None:
            self.rows, self.basis = np.empty(0, dtype=np.intp), None
            return
        self.rows = np.flatnonzero(np.any(basis != 0, axis=1))
        self.basis = basis[self.rows]

    def __call__(self, V: np.ndarray) -> np.ndarray:
        if self.basis is not None:
            V[self.rows] -= self.basis @ (self.basis.T @ V[self.rows])
        return V


def column_product(operator):
    """``(V, shift, out) -> (C + shift I) V`` for a (P, m) array of columns
    (``out`` a buffer the product may write into): the
    operator's own ``matmat`` if it has one (a linear model's, which needs
    no transposed copy), else its row product ``matvec`` on ``V^T``."""
    matmat = getattr(operator, "matmat", None)
    if matmat is not None:
        return matmat

    def product(V, shift, out=None):
        out = transposed(operator.matvec(transposed(V)))
        out += shift * V
        return out

    return product


class _RowBlocks:
    """Row blocks of (P, m) arrays, each pass's blocks run on ``threads``
    threads (numpy releases the GIL) and its per-column sums added in block
    order, so the result does not depend on the number of threads."""

    def __init__(self, n_rows: int, n_columns: int, threads: int) -> None:
        size = max(64, _BLOCK_ELEMENTS // max(n_columns, 1))
        self.slices = [slice(i, min(i + size, n_rows)) for i in range(0, n_rows, size)]
        self.threads = threads

    def map(self, function) -> None:
        thread_map(function, self.slices, self.threads)

    def sum(self, function) -> np.ndarray:
        return np.sum(thread_map(function, self.slices, self.threads), axis=0)


def _column_dots(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->j", A, B)


def _curvature_pass(D, HD, rows):
    return _column_dots(D[rows], HD[rows])


def _update_pass(X, R, D, HD, alpha, inverse, rows):
    """``x += alpha d``, ``r -= alpha q`` on a block; its ``r^T r`` and
    ``r^T diag(inverse) r``."""
    X[rows] += alpha * D[rows]
    R_rows = R[rows]
    R_rows -= alpha * HD[rows]
    return np.stack(
        [
            _column_dots(R_rows, R_rows),
            _column_dots(R_rows * inverse[rows, None], R_rows),
        ]
    )


def _direction_pass(D, R, beta, inverse, rows):
    """``d = diag(inverse) r + beta d`` on a block."""
    D_rows = D[rows]
    D_rows *= beta
    D_rows += inverse[rows, None] * R[rows]


def preconditioned_cg(
    operator, damping, preconditioner, B, *, tol, max_iter, max_seconds=np.inf
):
    """``(C + damping I)^-1`` applied to the rows of ``B`` by conjugate
    gradients, preconditioned by ``preconditioner`` (a symmetric positive
    definite approximation of that inverse, e.g. :class:`Jacobi`).

    Stops when every row's residual is below ``tol`` times its right-hand
    side's norm, after ``max_iter`` iterations, or once ``max_seconds`` have
    passed; a direction of negative curvature raises
    :class:`~skrelatif.exceptions.SingularCurvatureError`. A system stops at
    its own tolerance (its step is zero from then on), so the systems solved
    with it do not change its solution. Each iteration is one product of
    the systems not yet converged (one pass over the training data for all
    of them) and three passes over their vectors, held as the columns of
    (P, m) arrays (the layout of a linear model's sparse products) and
    updated block by block on as many threads as BLAS may use:

        q = (C + damping I) d;  alpha = (r^T z) / (d^T q)       (pass 1)
        x += alpha d;  r -= alpha q;  r^T r;  r^T M_diag r      (pass 2)
        z = M r  (the diagonal, then the preconditioner's rows and the
                  null space's: r^T z is pass 2's sum corrected on them)
        d = z + beta d,  beta = (r^T z)_new / (r^T z)_old       (pass 3)

    ``g^T x_k`` of the iterate underestimates ``g^T H^-1 g`` by
    ``||x - x_k||_H^2``, at most ``||r_k||^2 / lambda_min``: a residual of
    ``tol`` makes its relative error at most ``tol^2`` times the condition
    number.

    Returns
    -------
    X : ndarray
        The solutions, like ``B``.
    residual : ndarray
        ``||b - (C + damping I) x||`` per row (the recursive residual).
    iterations : int
        Iterations run (one curvature product of the rows not yet converged
        each).
    """
    product = column_product(operator)
    project = NullProjector(operator)
    rhs = project(transposed(np.asarray(B, dtype=np.float64)))
    n_params, n_rhs = rhs.shape
    solution = np.zeros_like(rhs)
    residual = np.linalg.norm(rhs, axis=0)
    target = tol * residual
    blocks = _RowBlocks(n_params, n_rhs, compute_threads())
    inverse = preconditioner.inverse
    # the rows where z = M r is not the diagonal's inverse times r
    special = np.union1d(preconditioner.rows, project.rows)
    in_block = np.isin(special, preconditioner.rows)
    null_at = np.searchsorted(special, project.rows)

    def precondition_special(R):
        Z = R[special] * inverse[special, None]
        Z[in_block] = preconditioner.solve_rows(R)
        if project.basis is not None:
            Z[null_at] -= project.basis @ (project.basis.T @ Z[null_at])
        return Z

    columns = np.flatnonzero(residual > target)  # the systems still solved
    R = rhs[:, columns]
    X = np.zeros_like(R)
    D = project(preconditioner.solve(R))
    rz = _column_dots(R, D)
    frozen = np.zeros(columns.size, dtype=bool)
    HD = None  # the products' buffer, reused
    iteration = 0
    start = time.perf_counter()
    while (
        columns.size
        and iteration < max_iter
        and time.perf_counter() - start < max_seconds
    ):
        iteration += 1
        HD = product(D, damping, out=None if HD is None or HD.shape != D.shape else HD)
        curvature = blocks.sum(partial(_curvature_pass, D, HD))
        if np.any(curvature < 0):
            raise SingularCurvatureError(0.0, indefinite=True)
        alpha = np.divide(rz, curvature, out=np.zeros_like(rz), where=curvature > 0)
        alpha[frozen] = 0.0

        squares, rz_new = blocks.sum(partial(_update_pass, X, R, D, HD, alpha, inverse))
        Z_special = precondition_special(R)
        R_special = R[special]
        rz_new += _column_dots(R_special, Z_special) - _column_dots(
            R_special * inverse[special, None], R_special
        )
        residual[columns] = np.sqrt(squares)
        frozen |= residual[columns] <= target[columns]
        if frozen.all() or frozen.sum() * 8 >= frozen.size:
            # store the converged systems and go on with the others
            solution[:, columns[frozen]] = X[:, frozen]
            going = ~frozen
            columns, frozen = columns[going], frozen[going]
            X, R, D = X[:, going], R[:, going], D[:, going]
            if not columns.size:
                break
            rz, rz_new, Z_special = rz[going], rz_new[going], Z_special[:, going]
        beta = np.divide(rz_new, rz, out=np.zeros_like(rz), where=rz > 0)
        beta[frozen] = 0.0
        D_special = D[special]

        blocks.map(partial(_direction_pass, D, R, beta, inverse))
        D[special] = Z_special + beta * D_special
        rz = rz_new
    solution[:, columns] = X
    return transposed(solution), residual, iteration


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

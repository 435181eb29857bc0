"""Direct solvers: the identity, one Cholesky factorisation of the dense
curvature, or of each of its diagonal blocks."""

from __future__ import annotations

import numpy as np
from scipy import linalg

from .._utils import log
from ._base import (
    DENSE_RATE,
    SPARSE_RATE,
    Estimate,
    InverseHessian,
    ProblemSize,
    available_memory,
    check_rcond,
    cholesky,
)

#: Largest ``kappa * e`` (condition number times the measured relative error of the
#: float32-accumulated Hessian) for which float32 is kept (see CholeskyInverse).
FLOAT32_TOLERANCE = 1.0
#: Share of the available memory a dense factorisation may take.
MEMORY_SHARE = 0.6


def _leading_zeros(G: np.ndarray) -> int:
    """Number of leading columns that are zero in every row of G."""
    nonzero = np.flatnonzero(np.any(G != 0, axis=0))
    return int(nonzero[0]) if nonzero.size else G.shape[1]


def dense_bytes(n_params: int, float32: bool = False) -> int:
    """Peak bytes of a dense factorisation of P parameters."""
    return 8 * n_params**2 + 4 * n_params**2 * float32


class IdentityInverse(InverseHessian):
    """``H = I`` (the "gradient" baseline of Barshan et al., Fig. 6): what
    ``hessian="identity"`` means; no solver is needed."""

    automatic = False

    def fit(self, operator):
        self.compute_dtype = np.dtype(operator.dtype)
        return self

    def solve(self, G):
        return G / (1.0 + self.damping)

    def quad_norms(self, G, *, norms):
        sq = np.einsum("ij,ij->i", G, G, dtype=np.float64)
        scale = 1.0 + self.damping
        return sq / scale, (np.sqrt(sq) / scale if norms else None)


class CholeskyInverse(InverseHessian):
    """Exact: one Cholesky factorisation ``H = L L^T`` of the dense Hessian.

    ``g^T H^-1 g = ||L^-1 g||^2`` and ``H^-1 g = L^-T (L^-1 g)``, so both
    normalisers cost one or two triangular solves per chunk of gradients.

    float32 training data: the Hessian is accumulated from float32 products
    (in float64) and factorised in float64. Its error ``e`` is measured on a few
    random Hessian-vector products against float64 ones; with ``kappa`` the
    condition number (LAPACK's estimate), float32 is kept (for the Hessian and
    the per-example triangular solves and scoring products) when
    ``kappa * e <= 1``, otherwise the Hessian is recomputed and everything runs
    in float64. ``kappa * e`` bounds the relative error of ``H^-1 g``; it is
    pessimistic: on standardised digits (620 parameters) the scores' measured
    relative error was 2e-6, 3e-5 and 1e-4 for ``kappa * e`` = 0.006, 0.08 and
    0.45 (C = 0.05, 1, 10), and 1.7e-3 for ``kappa * e`` = 5 (C = 100), which
    therefore falls back to float64.
    """

    requires = "dense"

    @classmethod
    def estimate(cls, size: ProblemSize) -> Estimate:
        # form H, factorise it (P^3 / 3), then two triangular solves per
        # right-hand side (2 P^2), all BLAS-3 but the sparse assembly
        P = size.n_params
        form = size.dense_flops / (SPARSE_RATE if size.dense_sparse else DENSE_RATE)
        work = (P**3 / 3 + 2 * size.n_solves * P**2) / DENSE_RATE
        return Estimate(form + work, dense_bytes(P))

    def fit(self, operator):
        n_params = operator.n_params
        needed = dense_bytes(n_params, operator.dtype == np.float32)
        if needed > MEMORY_SHARE * available_memory():
            raise MemoryError(
                f'solver="cholesky" needs a dense {n_params} x {n_params} matrix '
                f"({needed / 2**30:.1f} GiB), more than this machine has available "
                f'({available_memory() / 2**30:.1f} GiB). Use solver="cg" (exact, '
                'matrix-free) or an approximate solver ("block-diagonal", "kfac", '
                '"lissa") for this many parameters, or solver="auto".'
            )
        dtype = np.dtype(operator.dtype)
        if dtype == np.float32:
            probe = np.random.RandomState(0).standard_normal((3, n_params))
            probe = operator.remove_null(probe)
            factor, rcond, approx = self._factor(operator, dtype, probe)
            exact = operator.matvec(probe) + self.damping * probe
            error = float(np.linalg.norm(approx - exact) / np.linalg.norm(exact))
            if rcond == 0 or error / rcond > FLOAT32_TOLERANCE:
                log(
                    self.verbose,
                    1,
                    f"float32 Hessian too inaccurate (error {error:.1e}, "
                    f"rcond {rcond:.1e}): recomputing it in float64",
                )
                dtype = np.dtype(np.float64)
        if dtype == np.float64:
            factor, rcond, _ = self._factor(operator, dtype)
        check_rcond(rcond, n_params)
        self.factor_ = factor
        self.compute_dtype = dtype
        self._factor_lowp = factor.astype(dtype) if dtype != np.float64 else factor
        return self

    def _factor(self, operator, dtype, probe=None):
        """Cholesky factor of H + damping I (+ the null-space term), its rcond,
        and ``probe H`` (taken before the factorisation overwrites H)."""
        H = operator.dense(dtype)
        H.flat[:: operator.n_params + 1] += self.damping
        product = None if probe is None else probe @ H
        if operator.null_space is not None:
            # H^+ g for g orthogonal to U equals (H + a U U^T)^-1 g for any a > 0.
            # U is zero outside a few rows (the unpenalised inputs of each output).
            U = operator.null_space
            rows = np.flatnonzero(np.any(U != 0, axis=1))
            H[np.ix_(rows, rows)] += (np.trace(H) / operator.n_params) * (
                U[rows] @ U[rows].T
            )
        return (*cholesky(H), product)

    def solve(self, G):
        return linalg.cho_solve((self.factor_, True), G.T, check_finite=False).T

    def gram_blocks(self, J):
        """``A_i = (L^-1 J_i^T)^T (L^-1 J_i^T)``: one triangular solve per row
        instead of two; rows whose leading entries are zero (output k of a
        linear model, ``e_k ⊗ x̃``) are solved with the trailing block of L only
        (``L^-1`` keeps the leading zeros)."""
        n, K, P = J.shape
        half = np.zeros((n, K, P))
        for k in range(K):
            rows = J[:, k, :]
            start = _leading_zeros(rows)
            if start < P:
                half[:, k, start:] = linalg.solve_triangular(
                    self.factor_[start:, start:],
                    rows[:, start:].T,
                    lower=True,
                    check_finite=False,
                ).T
        return np.einsum("nkp,nlp->nkl", half, half)

    def quad_norms(self, G, *, norms):
        G = G.astype(self.compute_dtype, copy=False)
        # in place: G is a temporary chunk of gradients, G.T F-ordered
        half = linalg.solve_triangular(
            self._factor_lowp, G.T, lower=True, check_finite=False, overwrite_b=True
        )  # L^-1 g
        quad = np.einsum("ij,ij->j", half, half, dtype=np.float64)
        if not norms:
            return quad, None
        solved = linalg.solve_triangular(
            self._factor_lowp,
            half,
            lower=True,
            trans="T",
            check_finite=False,
            overwrite_b=True,
        )  # L^-T L^-1 g
        return quad, np.sqrt(np.einsum("ij,ij->j", solved, solved, dtype=np.float64))


class BlockDiagonalInverse(InverseHessian):
    """The per-output diagonal blocks ``H_kk`` of the Hessian, each factorised.

    With ``g = r ⊗ x̃``: ``g^T H^-1 g = sum_k r_k^2 x̃^T H_kk^-1 x̃`` and
    ``||H^-1 g||^2 = sum_k r_k^2 ||H_kk^-1 x̃||^2``, so the normalisers of all
    training examples cost ``K`` triangular solves with the design matrix.
    """

    requires = "diagonal_blocks"
    exact = False

    @classmethod
    def estimate(cls, size: ProblemSize) -> Estimate | None:
        if len(size.block_sizes) < 2:  # one block: the same as "cholesky"
            return None
        blocks = np.asarray(size.block_sizes, dtype=np.float64)
        form = size.block_flops / (SPARSE_RATE if size.dense_sparse else DENSE_RATE)
        work = np.sum(blocks**3 / 3 + 2 * size.n_solves * blocks**2) / DENSE_RATE
        return Estimate(form + float(work), float(8 * np.sum(blocks**2)))

    def fit(self, operator):
        blocks = operator.diagonal_blocks()
        self.n_outputs, self.n_design = blocks.shape[:2]
        self.factors_ = []
        for block in blocks:
            block.flat[:: self.n_design + 1] += self.damping
            factor, rcond = cholesky(block)
            check_rcond(rcond, self.n_design)
            self.factors_.append(factor)
        self.compute_dtype = np.dtype(np.float64)
        return self

    def solve(self, G):
        G = G.reshape(len(G), self.n_outputs, self.n_design)
        solved = np.empty_like(G, dtype=np.float64)
        for k, factor in enumerate(self.factors_):
            solved[:, k] = linalg.cho_solve((factor, True), G[:, k].T).T
        return solved.reshape(len(G), -1)

    def quad_norms(self, G, *, norms):
        G = G.reshape(len(G), self.n_outputs, self.n_design)
        quad = np.zeros(len(G))
        norm_sq = np.zeros(len(G)) if norms else None
        for k, factor in enumerate(self.factors_):
            half = linalg.solve_triangular(
                factor, G[:, k].T, lower=True, check_finite=False
            )
            quad += np.einsum("ij,ij->j", half, half)
            if norms:
                solved = linalg.solve_triangular(
                    factor, half, lower=True, trans="T", check_finite=False
                )
                norm_sq += np.einsum("ij,ij->j", solved, solved)
        return quad, (np.sqrt(norm_sq) if norms else None)

"""``solver="data-space"``: the exact inverse of a linear model's curvature
through the n K-dimensional data space (Woodbury), for n K < P.

The curvature of a linear model is ``H = Λ + Φ^T Φ``: ``Λ`` the diagonal of the
penalty plus damping, and ``Φ`` (n K x P) the stacked rows ``R_i J_i``, with
``J_i = I_K ⊗ x̃_i^T`` the Jacobian of example i's outputs and ``R_i`` a root of
its weighted output curvature, ``w_i D_i = R_i^T R_i`` (``R_i = diag(√e) V^T``
from the eigen-decomposition ``w_i D_i = V diag(e) V^T``, K x K). The
parameters split into the penalised ones (``Λ_p > 0``) and the few that are
not (``U``: the intercepts, m of them). With the Gram matrix

    M = I + Φ_p Λ_p^-1 Φ_p^T    (n K x n K; its eigenvalues are >= 1)

factorised once, ``M = L L^T``, Woodbury gives ``A^-1 = (Λ_p + Φ_p^T Φ_p)^-1 =
Λ_p^-1 - Λ_p^-1 Φ_p^T M^-1 Φ_p Λ_p^-1``, and the unpenalised parameters follow
exactly from the m x m Schur complement ``S = Φ_u^T M^-1 Φ_u`` (the softmax's
common intercept shift, along which ``S`` is singular, gets the rank-one term
of the null space, as ``"cholesky"`` does). A solve ``H x = g`` is then

    h = Φ_p Λ_p^-1 g_p,  v = M^-1 h,  x_u = S^-1 (g_u - Φ_u^T v),
    x_p = Λ_p^-1 (g_p - Φ_p^T (v + M^-1 Φ_u x_u)):

two sparse products with X and two triangular solves of size n K per
right-hand side.

The training examples' own blocks ``A_i = J_i H^-1 J_i^T`` (K x K: RelatIF's
normalisers ``d_i^T A_i d_i``, the self-influence, and the Newton
leave-one-out step) come from the diagonal blocks of ``M^-1`` (a selected
inverse: the columns of ``L^-1``, no n K x n K inverse): with
``Σ = J_p A^-1 J_p^T``, ``R Σ R^T = I - M^-1``, so
``Σ_ii = R_i^+ (I - M^-1)_ii R_i^+T`` on the range of ``R_i^T`` (all of it,
except the constant direction of a softmax, to which every residual and
Newton coefficient is orthogonal). That subtraction loses relative accuracy
when ``(I - M^-1)_ii`` is small (an example fitted with near certainty, or of
weight 0): such examples (``CANCELLATION`` below) are computed instead as
``Σ_ii = K_ii - C_i^T M^-1 C_i`` with ``C_i = Φ_p Λ_p^-1 J_ip^T`` (one
triangular product per example).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import linalg, sparse
from scipy.linalg import blas, lapack

from .._adapters._linear_curvature import _symmetrise_lower
from .._utils import chunk_slices, log, transposed
from ..exceptions import SingularCurvatureError
from ._base import (
    DENSE_RATE,
    SPARSE_RATE,
    Estimate,
    InverseHessian,
    ProblemSize,
    available_memory,
    cholesky_lower,
)
from ._direct import MEMORY_SHARE

#: Smallest eigenvalue of a training example's block of ``I - M^-1`` (in the
#: basis of its curvature root) for which its block ``Σ_ii`` is taken from the
#: selected inverse; below it the subtraction ``I - M^-1`` would lose more than
#: ``eps * cond(M) / CANCELLATION`` relative accuracy, and the example is
#: solved directly.
CANCELLATION = 1e-3
#: Multiply-adds per second of SciPy's sparse-sparse product (one thread;
#: measured on the benchmark's TF-IDF data, rounded down).
SPARSE_PRODUCT_RATE = 1e8
#: Most unpenalised parameters (handled by their Schur complement).
MAX_UNPENALISED = 256


class DataSpace(NamedTuple):
    """What the data-space solver needs of a linear model's curvature
    (``LinearHessian.data_space()``).

    Attributes
    ----------
    X : ndarray or sparse matrix of shape (n, n_features)
        The training inputs (without the intercept column).
    fit_intercept : bool
        Whether the design has the column of ones ``x̃ = [x, 1]``.
    curvature : ndarray of shape (n, K, K)
        ``w_i D_i``, the weighted output curvature of each example.
    penalty : ndarray of shape (K * d,)
        The penalty's diagonal (0 for unpenalised parameters).
    shift_invariant : bool
        Whether the loss is invariant to a common shift of the outputs (the
        softmax): residuals and Newton coefficients are orthogonal to it.
    scale : ndarray of shape (n,)
        The size of the terms ``curvature`` was computed from (``w_i`` times
        the largest of ``|a_i|`` and ``||b_i||^2``), against which its rounding
        errors are judged.
    """

    X: Any
    fit_intercept: bool
    curvature: np.ndarray
    penalty: np.ndarray
    shift_invariant: bool
    scale: np.ndarray


def _columns(X, columns: np.ndarray) -> np.ndarray:
    """Dense columns ``columns`` of the design ``x̃ = [x, 1]`` (n, len(columns));
    column ``n_features`` is the intercept's column of ones."""
    n, n_features = X.shape
    out = np.ones((n, len(columns)))
    for j, column in enumerate(columns):
        if column < n_features:
            col = X[:, [column]]
            out[:, j] = (col.toarray() if sparse.issparse(col) else col).ravel()
    return out


def _scale_rows(A, factor: np.ndarray):
    if sparse.issparse(A):
        return sparse.csr_matrix(A.multiply(factor[:, None]))
    return A * factor[:, None]


def _dense_head(df: np.ndarray, n: int) -> int:
    """How many of the densest columns (``df`` non-zeros each, sorted
    decreasingly) to multiply as a dense ``syrk`` (``n^2 h`` flops at
    ``DENSE_RATE``) rather than as a sparse product (``sum df^2``
    multiply-adds at ``SPARSE_PRODUCT_RATE``)."""
    squares = df.astype(np.float64) ** 2
    tail = squares.sum() - np.concatenate([[0.0], np.cumsum(squares)])
    heads = np.arange(len(df) + 1, dtype=np.float64)
    cost = float(n) ** 2 * heads / DENSE_RATE + tail / SPARSE_PRODUCT_RATE
    return int(np.argmin(cost))


def _add_kernel(out: np.ndarray, A) -> None:
    """``out += A A^T`` (n x n, C-ordered): its upper triangle at least.

    A sparse A is split by column: its densest columns (the frequent words of
    a text) form a dense block whose Gram matrix is one BLAS ``syrk`` (into
    the lower triangle of ``out.T``, the F-ordered view LAPACK factorises),
    the rest is a sparse product (nearly empty for rare words), added in row
    blocks (both triangles)."""
    n = A.shape[0]
    if not sparse.issparse(A):
        head, tail = np.asfortranarray(A, dtype=np.float64), None
    else:
        A = sparse.csc_matrix(A)
        df = np.diff(A.indptr)
        order = np.argsort(-df, kind="stable")
        h = _dense_head(df[order], n)
        head = np.asfortranarray(A[:, order[:h]].toarray())
        tail = sparse.csr_matrix(A[:, order[h:]]) if h < A.shape[1] else None
    if head.shape[1]:
        target = out.T  # F-ordered view: syrk writes into it in place
        result = blas.dsyrk(1.0, head, beta=1.0, c=target, trans=0, lower=1,
                            overwrite_c=1)  # fmt: skip
        if not np.shares_memory(result, out):  # pragma: no cover - f2py copied
            target[...] = result
    del head
    if tail is not None and tail.nnz:
        tail_t = tail.T.tocsr()
        for rows in chunk_slices(n, 8 * 3 * n):
            out[rows] += (tail[rows] @ tail_t).toarray()


class DataSpaceInverse(InverseHessian):
    """Exact inverse in the n K-dimensional data space (see the module
    docstring): one Cholesky factorisation of the n K x n K Gram system
    instead of the P x P curvature. Linear models with every weight
    penalised (or ``damping > 0``); the cost grows as ``(n K)^3``, so it pays
    when n K is much smaller than P (wide or sparse data, few classes).

    No options. ``fit`` raises a ``ValueError`` for a per-example curvature
    that is not positive semi-definite (a non-canonical GLM link), and for
    more than ``MAX_UNPENALISED`` unpenalised parameters.
    """

    requires = "data_space"
    workspace = 3

    @classmethod
    def estimate(cls, size: ProblemSize) -> Estimate | None:
        N = float(size.n_train * size.n_outputs)
        if N >= size.n_params:  # the parameter space is smaller
            return None
        n, K = float(size.n_train), size.n_outputs
        nnz = size.matvec_flops / (4.0 * K)  # non-zeros of the design (X̃)
        # the kernel X̃ Λ^-1 X̃^T: a product of each row with X^T (sparse), or
        # a syrk; the Gram system, its Cholesky factorisation, and (for the
        # training examples' blocks) its triangular inverse
        if size.matvec_sparse:
            kernel = 2.0 * n * nnz / SPARSE_RATE
        else:
            kernel = n * nnz / DENSE_RATE
        # the training examples' own solves (RelatIF: n, Newton: n K) come
        # from the selected inverse (a triangular inversion), the rest are
        # test points: two triangular solves and two sparse products each
        training = size.n_solves >= size.n_train
        tests = size.n_solves
        if training:
            own = size.n_train * (K if size.n_solves >= size.n_train * K else 1)
            tests = max(size.n_solves - own, 1)
        work = N**3 / 3 * (2 if training else 1) + 2.0 * N**2 * tests + N**2 * K
        seconds = kernel + work / DENSE_RATE + 4.0 * nnz * K * tests / SPARSE_RATE
        return Estimate(seconds, 8.0 * N**2 + 8.0 * n**2 * (K > 1) + 16 * N * K)

    def fit(self, operator):
        space = operator.data_space()
        self.compute_dtype = np.dtype(np.float64)
        K, d = operator.n_outputs, operator.n_design
        X = space.X
        X = X.astype(np.float64) if X.dtype != np.float64 else X
        if sparse.issparse(X):
            X = sparse.csr_matrix(X)
        n = X.shape[0]
        N = n * K
        needed = 8.0 * N**2
        if needed > MEMORY_SHARE * available_memory():
            raise MemoryError(
                f'solver="data-space" needs a dense {N} x {N} Gram matrix '
                f"({needed / 2**30:.1f} GiB; n_train x n_outputs = {N}), more "
                f"than this machine has available ({available_memory() / 2**30:.1f}"
                ' GiB). Use solver="cg" or solver="auto".'
            )
        self.X_, self.fit_intercept_ = X, space.fit_intercept
        self.n_outputs_, self.n_design_ = K, d
        self.shift_invariant_ = bool(space.shift_invariant)
        lam = (np.asarray(space.penalty, dtype=np.float64) + self.damping).reshape(K, d)
        if np.any(lam < 0):
            raise SingularCurvatureError(0.0, indefinite=True)
        self.lam_ = lam
        self.inv_lam_ = np.divide(1.0, lam, out=np.zeros_like(lam), where=lam > 0)
        self.unpenalised_ = np.argwhere(lam == 0)  # (m, 2): (output, column)
        if len(self.unpenalised_) > MAX_UNPENALISED:
            raise ValueError(
                f'solver="data-space" needs a penalty (or damping) on the '
                f"parameters; {len(self.unpenalised_)} are unpenalised. Pass "
                'damping > 0, or use solver="cholesky" or solver="cg".'
            )
        # w_i D_i = R_i^T R_i with R_i = diag(sqrt(e)) V^T
        curvature = np.asarray(space.curvature, dtype=np.float64)
        e, V = np.linalg.eigh(curvature)
        # rounding: w (diag(a) - b b^T) carries absolute errors of about
        # eps * scale (a softmax fitted with near certainty: p (1 - p))
        scale = np.asarray(space.scale, dtype=np.float64)
        if np.any(e < -1e-10 * scale[:, None]):
            raise ValueError(
                'solver="data-space" needs a positive semi-definite curvature of '
                "every example's loss; this model's loss curves downwards at some "
                'training examples (a non-canonical link). Use solver="cholesky" '
                'or solver="cg".'
            )
        e = np.clip(e, 0.0, None)
        # directions of (numerically) zero curvature are dropped from the root
        e[e <= 1e-12 * scale[:, None]] = 0.0
        self.eig_, self.eigvec_ = e, V
        self.root_ = np.sqrt(e)[:, :, None] * V.transpose(0, 2, 1)  # (n, K, K)
        # outputs sharing their penalty row share one kernel X̃ Λ^-1 X̃^T
        groups: dict[bytes, list[int]] = {}
        for k in range(K):
            groups.setdefault(lam[k].tobytes(), []).append(k)
        self.groups_ = [np.asarray(g) for g in groups.values()]
        gram = self._gram(X)
        # M is symmetric: its transpose is the F-ordered array LAPACK works in
        factor, info = cholesky_lower(gram.T)
        del gram
        if info != 0:
            raise SingularCurvatureError(0.0)
        self.factor_ = factor  # L, F-ordered (the Gram matrix's memory)
        self.inverted_ = False
        self._fit_unpenalised(operator)
        log(self.verbose, 1, f"data-space: {N} x {N} Gram system factorised")
        return self

    # -- the kernel and the Gram matrix ----------------------------------------------
    def _scaled_design(self, output: int, rows=slice(None)):
        """``X̃ Λ_k^-1/2`` restricted to the penalised columns of output k."""
        root = np.sqrt(self.inv_lam_[output])
        X = self.X_[rows]
        n_features = X.shape[1]
        Xs = (
            sparse.csr_matrix(X.multiply(root[None, :n_features]))
            if sparse.issparse(X)
            else X * root[:n_features]
        )
        if self.fit_intercept_:
            ones = np.full((X.shape[0], 1), root[n_features])
            Xs = (
                sparse.hstack([Xs, ones], format="csr")
                if sparse.issparse(Xs)
                else np.hstack([Xs, ones])
            )
        return Xs

    def _gram(self, X) -> np.ndarray:
        """``M = I + R (K ⊗ I) R^T`` (n K x n K, C-ordered; symmetric). Only
        its upper triangle (the lower one of its F-ordered transpose, which
        LAPACK factorises) is guaranteed for one output."""
        n, K = X.shape[0], self.n_outputs_
        N = n * K
        M = np.zeros((N, N))
        R = self.root_
        if K == 1:  # M - I = Φ Φ^T with Φ = diag(r) X̃ Λ^-1/2: one kernel
            _add_kernel(M, _scale_rows(self._scaled_design(0), R[:, 0, 0]))
        else:
            view = M.reshape(n, K, n, K)
            G = np.zeros((n, n))
            for group in self.groups_:
                G[...] = 0.0
                _add_kernel(G, self._scaled_design(int(group[0])))
                _symmetrise_lower(G.T)
                Rg = R[:, :, group]  # (n, K, |g|)
                for rows in chunk_slices(n, 8 * 2 * n * K * K):
                    outer = np.tensordot(Rg[rows], Rg, axes=([2], [2]))
                    view[rows] += G[rows, None, :, None] * outer  # (b, K, n, K)
            del G
        M.flat[:: N + 1] += 1.0
        return M

    def _fit_unpenalised(self, operator) -> None:
        """``Y_u = M^-1 Φ_u`` and the Cholesky factor of the Schur complement
        ``S = Φ_u^T Y_u`` (+ the null space's rank-one terms)."""
        m = len(self.unpenalised_)
        if m == 0:
            return
        self.phi_u_ = self._phi_unpenalised()
        self.y_u_ = self._apply_inverse(self.phi_u_.copy(order="F"))
        schur = self.phi_u_.T @ self.y_u_
        null = operator.null_space
        if null is not None and self.damping == 0:
            flat = self.unpenalised_[:, 0] * self.n_design_ + self.unpenalised_[:, 1]
            rest = np.ones(null.shape[0], bool)
            rest[flat] = False
            if np.any(null[rest] != 0):  # pragma: no cover - by construction
                raise ValueError("null space outside the unpenalised parameters")
            Nu = null[flat]
            schur += (np.trace(schur) / m) * (Nu @ Nu.T)
        try:
            self.schur_ = linalg.cho_factor(schur, lower=True, check_finite=False)
        except linalg.LinAlgError:
            raise SingularCurvatureError(0.0) from None
        rcond = 1.0 / max(np.linalg.cond(schur), 1e-300)
        if not rcond > m * np.finfo(np.float64).eps:
            raise SingularCurvatureError(rcond)

    def _phi_unpenalised(self) -> np.ndarray:
        """``Φ_u`` (n K x m): row (i, k), column (a, f): ``R_i[k, a] x̃_if``."""
        outputs, columns = self.unpenalised_[:, 0], self.unpenalised_[:, 1]
        design = _columns(self.X_, columns)  # (n, m)
        phi = self.root_[:, :, outputs] * design[:, None, :]  # (n, K, m)
        return phi.reshape(-1, len(outputs))

    # -- M^-1 ---------------------------------------------------------------------
    def _invert_factor(self) -> None:
        """Replace L by ``L^-1`` (in place; for the training examples' blocks)."""
        if not self.inverted_:
            inverse, info = lapack.dtrtri(self.factor_, lower=1, overwrite_c=1)
            if info != 0:  # pragma: no cover - L has a positive diagonal
                raise SingularCurvatureError(0.0)
            self.factor_ = inverse
            self.inverted_ = True

    def _half(self, B: np.ndarray) -> np.ndarray:
        """``L^-1 B`` for an (N, m) array."""
        B = np.asarray(B, dtype=np.float64, order="F")
        if self.inverted_:
            return blas.dtrmm(1.0, self.factor_, B, lower=1)
        return linalg.solve_triangular(
            self.factor_, B, lower=True, check_finite=False, overwrite_b=True
        )

    def _apply_inverse(self, B: np.ndarray) -> np.ndarray:
        """``M^-1 B`` for an (N, m) array."""
        half = self._half(B)
        if self.inverted_:
            return blas.dtrmm(1.0, self.factor_, half, lower=1, trans_a=1)
        return linalg.solve_triangular(
            self.factor_, half, lower=True, trans="T", check_finite=False,
            overwrite_b=True,
        )  # fmt: skip

    # -- products with Φ ------------------------------------------------------------
    def _phi(self, scaled: np.ndarray) -> np.ndarray:
        """``Φ_p s`` for rows s = Λ_p^-1 g_p (m, K, d): (N, m)."""
        m, K = scaled.shape[:2]
        right = transposed(scaled.reshape(m * K, -1))  # (d, m K), C-ordered
        T = np.asarray(self._design() @ right)  # (n, m K)
        h = np.einsum("ika,ima->ikm", self.root_, T.reshape(-1, m, K))  # (n, K, m)
        return h.reshape(-1, m)

    def _phi_t_raw(self, Z: np.ndarray) -> np.ndarray:
        """``Φ^T Z`` for (N, m) Z, as (m, K, d) (unpenalised entries too)."""
        m, K = Z.shape[1], self.n_outputs_
        U = np.einsum("ika,ikm->ima", self.root_, Z.reshape(-1, K, m))  # (n, m, K)
        product = np.asarray(self._design().T @ U.reshape(-1, m * K))  # (d, m K)
        return transposed(product).reshape(m, K, -1)

    def _phi_t(self, Z: np.ndarray) -> np.ndarray:
        """``Φ_p^T Z`` for (N, m) Z, as (m, K, d) with the unpenalised entries 0."""
        out = self._phi_t_raw(Z)
        out[:, self.lam_ == 0] = 0.0
        return out

    def _design(self):
        if not hasattr(self, "_design_cache"):
            X = self.X_
            if self.fit_intercept_:
                ones = np.ones((X.shape[0], 1))
                X = (
                    sparse.hstack([X, ones], format="csr")
                    if sparse.issparse(X)
                    else np.hstack([X, ones])
                )
            self._design_cache = X
        return self._design_cache

    # -- the solver interface ----------------------------------------------------------
    def solve(self, G):
        G = np.asarray(G, dtype=np.float64)
        m = G.shape[0]
        K, d = self.n_outputs_, self.n_design_
        Gk = G.reshape(m, K, d)
        out = Gk * self.inv_lam_  # Λ_p^-1 g_p (0 on the unpenalised entries)
        v = self._apply_inverse(self._phi(out))
        if len(self.unpenalised_):
            outputs, columns = self.unpenalised_[:, 0], self.unpenalised_[:, 1]
            gu = Gk[:, outputs, columns].T  # (m_u, m)
            xu = linalg.cho_solve(self.schur_, gu - self.phi_u_.T @ v)
            v = v + self.y_u_ @ xu
        # x_p = Λ_p^-1 (g_p - Φ_p^T z), in place, one (d, K) slab at a time
        back = self._phi_t_raw(v)  # (m, K, d)
        back *= self.inv_lam_
        out -= back
        del back
        if len(self.unpenalised_):
            out[:, outputs, columns] = xu.T
        return out.reshape(m, -1)

    def training_blocks(self) -> np.ndarray:
        """``A_i = J_i H^-1 J_i^T`` (n, K, K) of every training example (see
        the module docstring); computed once."""
        if getattr(self, "blocks_", None) is not None:
            return self.blocks_
        self._invert_factor()
        n, K = self.X_.shape[0], self.n_outputs_
        Linv = self.factor_
        # diagonal K x K blocks of M^-1 = L^-T L^-1: the Gram matrices of the
        # column blocks of L^-1 (F-ordered; zero above the diagonal)
        inverse_blocks = np.empty((n, K, K))
        for batch in chunk_slices(n, 8 * 2 * Linv.shape[0] * K):
            part = Linv[batch.start * K :, batch.start * K : batch.stop * K]
            cols = part.T.reshape(-1, K, part.shape[0])  # (b, K, rows), contiguous
            inverse_blocks[batch] = np.matmul(cols, cols.transpose(0, 2, 1))
        own = np.eye(K) - inverse_blocks  # R_i Σ_ii R_i^T, in the eigen basis
        e = self.eig_
        keep = e > 0
        # in the eigen-root basis the block is diag(√e) V^T Σ V diag(√e) = own
        restricted = np.where(keep[:, :, None] & keep[:, None, :], own, 0.0)
        smallest = np.linalg.eigvalsh(
            restricted + np.where(keep, 0.0, 1.0)[:, :, None] * np.eye(K)
        )[:, 0]
        dropped = K - keep.sum(axis=1)
        valid = (smallest >= CANCELLATION) & (
            (dropped == 0) | (self.shift_invariant_ & (dropped == 1))
        )
        inv_root = np.divide(1.0, np.sqrt(e), out=np.zeros_like(e), where=keep)
        # Σ_ii = V diag(1/√e) own diag(1/√e) V^T
        scaled = inv_root[:, :, None] * own * inv_root[:, None, :]
        blocks = np.einsum("iak,ikl,ibl->iab", self.eigvec_, scaled, self.eigvec_)
        direct = np.flatnonzero(~valid)
        if direct.size:
            blocks[direct] = self._direct_blocks(direct)
        log(
            self.verbose,
            1,
            f"data-space: {n} training blocks, {direct.size} of them solved directly",
        )
        self.n_direct_ = int(direct.size)
        if len(self.unpenalised_):
            E = self._unpenalised_rows()  # (n, K, m)
            solved = linalg.cho_solve(
                self.schur_, E.reshape(-1, E.shape[2]).T
            ).T.reshape(E.shape)
            blocks += np.einsum("ikm,ilm->ikl", E, solved)
        self.blocks_ = blocks
        return blocks

    def _direct_blocks(self, examples: np.ndarray) -> np.ndarray:
        """``Σ_ii = K_ii - C_i^T M^-1 C_i`` for the given examples (b, K, K)."""
        n, K = self.X_.shape[0], self.n_outputs_
        out = np.empty((len(examples), K, K))
        N = n * K
        for batch in chunk_slices(len(examples), 8 * 3 * N * K):
            ex = examples[batch]
            b = len(ex)
            C = np.zeros((n, K, b, K))  # row (j, k), column (i, c)
            own = np.zeros((b, K, K))
            for group in self.groups_:
                Xs = self._scaled_design(int(group[0]))
                kernel = Xs @ Xs[ex].T
                kernel = kernel.toarray() if sparse.issparse(kernel) else kernel
                kernel = np.asarray(kernel)  # (n, b): columns i of the kernel
                for c in group:
                    C[:, :, :, c] = self.root_[:, :, c, None] * kernel[:, None, :]
                    own[:, c, c] = kernel[ex, np.arange(b)]
            half = self._half(C.reshape(N, b * K)).reshape(N, b, K)
            out[batch] = own - np.einsum("rbk,rbl->bkl", half, half)
        return out

    def _unpenalised_rows(self) -> np.ndarray:
        """``E_i = J_ip A^-1 B - J_iu`` (n, K, m) of the Schur term."""
        m = len(self.unpenalised_)
        K = self.n_outputs_
        # A^-1 B = Λ^-1 Φ_p^T Y_u
        Q = self._phi_t(self.y_u_) * self.inv_lam_  # (m, K, d)
        design = self._design()
        E = np.asarray(design @ Q.transpose(2, 1, 0).reshape(-1, K * m))
        E = E.reshape(-1, K, m)
        outputs, columns = self.unpenalised_[:, 0], self.unpenalised_[:, 1]
        values = _columns(self.X_, columns)  # (n, m)
        E[:, outputs, np.arange(m)] -= values
        return E

    def quad_norms(self, G, *, norms):
        solved = self.solve(G)
        quad = np.einsum("ij,ij->i", solved, G)
        return quad, (np.linalg.norm(solved, axis=1) if norms else None)

"""Inverse-Hessian solvers: apply ``(H + damping * I)^-1`` to gradients.

A solver is built from a *Hessian operator* (provided by a model adapter's
``hessian_operator``, e.g. :class:`skrelatif._adapters._linear.LinearHessian`)
with

- ``n_params``, ``n_outputs``, ``n_design`` (P = n_outputs * n_design), ``n_train``;
- ``dtype``: the dtype of the training data (float32 or float64);
- ``null_space``: an orthonormal P x m basis of directions along which the
  objective is flat by symmetry (the common shift of all softmax intercepts),
  or None. Every gradient is orthogonal to it, so ``H^+ g`` is what we want;
- ``dense(dtype)``, ``matvec(V)``, ``diagonal()``, ``diagonal_blocks()``,
  ``sample_matvec(V, rows)``: the Hessian (without damping) as a dense matrix,
  as products with the rows of V, its diagonal, its per-output diagonal blocks,
  and a minibatch estimate of ``V H``;
- ``remove_null(V)``: the rows of V projected (in place) off the null space.

Gradients come in dense rows (one chunk of examples at a time). Solvers
answer ``solve(G) = G H^-1`` and ``quad_norms(G) = (g^T H^-1 g, ||H^-1 g||)``
per row. Their options are declared in ``option_constraints`` (scikit-learn
parameter constraints) and validated by the core before any work is done.

=================== ============================================================
``"exact"``         dense Hessian, one Cholesky factorisation (O(P^3)).
``"gauss-newton"``  the same on the generalised Gauss-Newton matrix (the
                    adapter's operator with ``curvature="gauss-newton"``).
``"identity"``      ``H = I``: gradient similarity (Barshan et al., Fig. 6).
``"block-diagonal"`` the per-output diagonal blocks of H (cross-class terms
                    dropped; the K-FAC-motivated approximation of Barshan et al.,
                    appendix C): K factorisations of size n_design.
``"cg"``            conjugate gradients on matrix-free Hessian-vector products,
                    Jacobi-preconditioned; exact up to ``tol``.
``"lissa"``         the stochastic Neumann-series estimator of Agarwal et al.
                    (2017), as used by Koh & Liang (2017).
=================== ============================================================
"""

from __future__ import annotations

import os
import warnings
from abc import ABC, abstractmethod
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from scipy import linalg
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_parameter_constraints

from ._utils import log

#: Largest ``kappa * e`` (condition number times the measured relative error of the
#: float32-accumulated Hessian) for which float32 is kept (see CholeskyInverse).
FLOAT32_TOLERANCE = 1.0


def _available_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 16 * 2**30


def _singular_error(rcond: float) -> ValueError:
    return ValueError(
        "The Hessian of the training objective is singular (or numerically so: "
        f"reciprocal condition number {rcond:.1e}), so H^-1 is not defined. This "
        "happens without regularisation (C=np.inf), with duplicated or constant "
        "features, or with examples of zero weight. Pass damping > 0 (for example "
        'damping=1e-3) or use hessian="identity".'
    )


def _cholesky(H: np.ndarray) -> tuple[np.ndarray, float]:
    """Lower Cholesky factor of H (overwritten) and its reciprocal condition number."""
    # 1-norm (largest absolute column sum), in column blocks: no P x P temporary
    anorm = max(
        np.abs(H[:, j : j + 512]).sum(axis=0).max() for j in range(0, len(H), 512)
    )
    try:
        factor = linalg.cholesky(H, lower=True, overwrite_a=True, check_finite=False)
    except linalg.LinAlgError:
        return H, 0.0
    rcond, _ = linalg.lapack.dpocon(factor, anorm, uplo="L")
    return factor, float(rcond)


def _check_rcond(rcond: float, n: int) -> None:
    if not rcond > n * np.finfo(np.float64).eps:
        raise _singular_error(rcond)


class InverseHessian(ABC):
    """Base class: ``H`` is the Hessian of the objective plus ``damping * I``."""

    #: Options accepted through ``InfluenceExplainer(hessian_options=...)``,
    #: with their scikit-learn parameter constraints.
    option_constraints: ClassVar[dict[str, list]] = {}

    def __init__(
        self,
        damping: float = 0.0,
        *,
        options: dict | None = None,
        random_state: Any = None,
        verbose: int = 0,
    ) -> None:
        self.damping = damping
        self.options = self.check_options(options)
        self.random_state = random_state
        self.verbose = verbose

    @classmethod
    def check_options(cls, options: dict | None, name: str = "") -> dict:
        """``options`` checked against :attr:`option_constraints`."""
        options = dict(options or {})
        unknown = set(options) - set(cls.option_constraints)
        if unknown:
            accepted = list(cls.option_constraints) or "none"
            raise ValueError(
                f"Unknown hessian_options {sorted(unknown)} for "
                f"hessian={name or cls.__name__!r}; accepted: {accepted}."
            )
        validate_parameter_constraints(
            {key: cls.option_constraints[key] for key in options},
            options,
            caller_name=f"hessian_options of hessian={name or cls.__name__!r}",
        )
        return options

    @abstractmethod
    def fit(self, operator: Any) -> InverseHessian:
        """Factorise (or otherwise prepare) the Hessian."""

    @abstractmethod
    def solve(self, G: np.ndarray) -> np.ndarray:
        """``G H^-1`` for a (m, P) array of gradients (H is symmetric)."""

    #: dtype for the training-set-sized work (float32 only where accurate enough).
    compute_dtype: np.dtype = np.dtype(np.float64)
    #: True when every solve iterates over the training set (no factorisation).
    iterative: ClassVar[bool] = False
    #: Vectors of length P held per right-hand side while solving (for chunking).
    workspace: ClassVar[int] = 3

    def quad_norms(self, G: np.ndarray, *, norms: bool):
        """Per row g of G: ``g^T H^-1 g`` and, if ``norms``, ``||H^-1 g||``."""
        solved = self.solve(G)
        quad = np.einsum("ij,ij->i", solved, G)
        return quad, (np.linalg.norm(solved, axis=1) if norms else None)

    def gram_blocks(self, J: np.ndarray) -> np.ndarray:
        """``A_i = J_i H^-1 J_i^T`` (n, K, K) for the (n, K, P) blocks ``J``."""
        n, K, P = J.shape
        solved = np.asarray(self.solve(J.reshape(n * K, P))).reshape(n, K, P)
        return np.einsum("nkp,nlp->nkl", J, solved)


def _leading_zeros(G: np.ndarray) -> int:
    """Number of leading columns that are zero in every row of G."""
    nonzero = np.flatnonzero(np.any(G != 0, axis=0))
    return int(nonzero[0]) if nonzero.size else G.shape[1]


class IdentityInverse(InverseHessian):
    """``H = I`` (the "gradient" baseline of Barshan et al., Fig. 6)."""

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

    def fit(self, operator):
        n_params = operator.n_params
        needed = 8 * n_params**2 + 4 * n_params**2 * (operator.dtype == np.float32)
        if needed > 0.6 * _available_memory():
            raise ValueError(
                f'hessian="exact" needs a dense {n_params} x {n_params} Hessian '
                f"({needed / 2**30:.1f} GiB), more than this machine can hold. Use "
                'hessian="block-diagonal", "cg" or "lissa" for this many parameters.'
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
        _check_rcond(rcond, n_params)
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
        return (*_cholesky(H), product)

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

    def fit(self, operator):
        blocks = operator.diagonal_blocks()
        self.n_outputs, self.n_design = blocks.shape[:2]
        self.factors_ = []
        for block in blocks:
            block.flat[:: self.n_design + 1] += self.damping
            factor, rcond = _cholesky(block)
            _check_rcond(rcond, self.n_design)
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


class ConjugateGradientInverse(InverseHessian):
    """Preconditioned conjugate gradients, one system per row, solved together.

    Options: ``tol`` (relative residual, default 1e-8), ``max_iter`` (default
    1000). Each iteration costs one Hessian-vector product per right-hand side
    not yet converged, ``4 n nnz(x) K`` flops, all of them in one pass over
    the training data (one ``matvec``); no P x P matrix is formed. A system
    stops at its own tolerance, not at the slowest one's, so the right-hand
    sides solved with it (how ``working_memory`` batches them) do not change
    its solution beyond rounding. The preconditioner is the Hessian's
    diagonal; both are restricted to the orthogonal complement of the null
    space.
    """

    option_constraints = {
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }
    iterative = True
    workspace = 8

    def fit(self, operator):
        self.operator_ = operator
        self.tol = float(self.options.get("tol", 1e-8))
        self.max_iter = int(self.options.get("max_iter", 1000))
        diagonal = operator.diagonal() + self.damping
        if np.any(diagonal <= 0):
            raise _singular_error(0.0)
        self.inv_diagonal_ = 1.0 / diagonal
        return self

    def solve(self, G):
        op = self.operator_
        B = op.remove_null(np.array(G, dtype=np.float64))
        X = np.zeros_like(B)
        R = B.copy()
        Z = op.remove_null(R * self.inv_diagonal_)
        D = Z.copy()
        rz = np.einsum("ij,ij->i", R, Z)
        target = self.tol * np.linalg.norm(B, axis=1)
        residual = np.linalg.norm(R, axis=1)
        # The systems not yet converged: one Hessian product (one pass over
        # the training set) for all of them per iteration; a converged one is
        # left alone.
        active = np.flatnonzero(residual > target)
        for iteration in range(1, self.max_iter + 1):  # noqa: B007 - read after
            if active.size == 0:
                iteration -= 1
                break
            Da = D[active]
            HD = op.matvec(Da) + self.damping * Da
            curvature = np.einsum("ij,ij->i", Da, HD)
            if np.any(curvature < 0):
                raise _singular_error(0.0)
            alpha = np.divide(
                rz[active], curvature, out=np.zeros_like(curvature), where=curvature > 0
            )
            X[active] += alpha[:, None] * Da
            Ra = R[active] - alpha[:, None] * HD
            R[active] = Ra
            residual[active] = np.linalg.norm(Ra, axis=1)
            going = residual[active] > target[active]
            active, Ra, Da = active[going], Ra[going], Da[going]
            if active.size == 0:
                break
            Za = op.remove_null(Ra * self.inv_diagonal_)
            rz_new = np.einsum("ij,ij->i", Ra, Za)
            rz_old = rz[active]
            beta = np.divide(
                rz_new, rz_old, out=np.zeros_like(rz_new), where=rz_old > 0
            )
            D[active] = Za + beta[:, None] * Da
            rz[active] = rz_new
        else:
            warnings.warn(
                f"Conjugate gradients did not reach tol={self.tol:g} in "
                f"{self.max_iter} iterations (worst relative residual "
                f"{np.max(residual / np.maximum(target / self.tol, 1e-300)):.1e}). "
                "Increase hessian_options['max_iter'] or add damping.",
                UserWarning,
                stacklevel=2,
            )
        log(self.verbose, 2, f"cg: {len(G)} systems solved in {iteration} iterations")
        self.n_iter_ = iteration
        return X


class LissaInverse(InverseHessian):
    """LiSSA (Agarwal, Bullins & Hazan 2017), the estimator of Koh & Liang (2017).

    ``h_0 = v``, ``h_j = v + h_{j-1} - (H_j + damping I) h_{j-1} / scale`` with
    ``H_j`` the Hessian estimated on a random minibatch of ``batch_size``
    examples; ``H^-1 v ~ h_depth / scale``, averaged over ``repeats`` runs.
    Options: ``scale`` (default: 2 x the largest eigenvalue of H, by power
    iteration), ``depth`` (default 1000), ``repeats`` (default 1),
    ``batch_size`` (default 100). Stochastic: fix ``random_state``.
    """

    option_constraints = {
        "scale": [Interval(Real, 0, None, closed="neither"), None],
        "depth": [Interval(Integral, 1, None, closed="left")],
        "repeats": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    }
    iterative = True
    workspace = 5

    def fit(self, operator):
        self.operator_ = operator
        self.depth = int(self.options.get("depth", 1000))
        self.repeats = int(self.options.get("repeats", 1))
        self.batch_size = int(
            min(self.options.get("batch_size", 100), operator.n_train)
        )
        scale = self.options.get("scale")
        self.scale_ = (
            float(scale) if scale is not None else 2.0 * self._top_eigenvalue()
        )
        return self

    def _top_eigenvalue(self, n_iter=30):
        rng = np.random.RandomState(0)
        v = self.operator_.remove_null(
            rng.standard_normal((1, self.operator_.n_params))
        )
        eigenvalue = 0.0
        for _ in range(n_iter):
            v /= np.linalg.norm(v)
            Hv = self.operator_.matvec(v) + self.damping * v
            eigenvalue = float(np.sum(v * Hv))
            v = Hv
        return eigenvalue

    def solve(self, G):
        rng = check_random_state(self.random_state)
        op, n = self.operator_, self.operator_.n_train
        V = np.array(G, dtype=np.float64)
        estimate = np.zeros_like(V)
        for _ in range(self.repeats):
            h = V.copy()
            for _ in range(self.depth):
                rows = np.sort(rng.choice(n, self.batch_size, replace=False))
                h = V + h - (op.sample_matvec(h, rows) + self.damping * h) / self.scale_
            estimate += h / self.scale_
        return estimate / self.repeats


class KFACInverse(InverseHessian):
    """Kronecker-factored per-layer inverse (K-FAC; Martens & Grosse 2015,
    Barshan et al. appendix C): for operators with ``kronecker_factors()``.

    Each layer's block of H is approximated by ``A ⊗ G + diag(p_rows) ⊗ I``
    (``A`` the weighted second moment of the layer's inputs ``[a; 1]``, ``G``
    the summed Gauss-Newton curvature of its pre-activations, ``p_rows`` the
    penalty of each input row); blocks of different layers are dropped. The
    penalty is folded into A as ``diag(p_rows) / g`` (``g = tr(G) / dim G``:
    exact when G is a scalar, e.g. a single-output layer), and damping
    ``lambda`` is split as in Martens & Grosse: ``(A + pi sqrt(lambda) I) ⊗
    (G + sqrt(lambda) / pi I)`` with ``pi = sqrt((tr A / dim A) / (tr G / dim
    G))``. A factor that is singular (e.g. dead ReLU units, whose rows of G are
    0 and along which every gradient is 0) gets ``1e-8 tr / dim`` added to its
    diagonal. ``solve`` is ``A^-1 V G^-1`` per layer; ``quad_norms`` of rows
    that carry their layer factors (``ã ⊗ δ``, see
    :class:`skrelatif._adapters._mlp_curvature.FactoredRows`) costs
    ``O(d_in^2 + d_out^2)`` per layer and row:
    ``g^T H^-1 g = sum_l (ã^T A^-1 ã)(δ^T G^-1 δ)``.
    """

    #: relative jitter of a singular factor
    jitter = 1e-8

    def fit(self, operator):
        self.layers_ = []
        self.n_params = operator.n_params
        for factor in operator.kronecker_factors():
            A = np.array(factor.A, dtype=np.float64)
            G = np.array(factor.G, dtype=np.float64)
            g_mean = max(np.trace(G) / len(G), np.finfo(np.float64).tiny)
            A.flat[:: len(A) + 1] += np.asarray(factor.row_penalty) / g_mean
            if self.damping > 0:
                a_mean = max(np.trace(A) / len(A), np.finfo(np.float64).tiny)
                pi = np.sqrt(a_mean / g_mean)
                A.flat[:: len(A) + 1] += pi * np.sqrt(self.damping)
                G.flat[:: len(G) + 1] += np.sqrt(self.damping) / pi
            self.layers_.append(
                (self._factor(A), self._factor(G), factor.params, len(A), len(G))
            )
        self.compute_dtype = np.dtype(np.float64)
        return self

    def _factor(self, M):
        size = len(M)
        scale = np.trace(M) / size
        factor, rcond = _cholesky(M.copy())
        if not rcond > size * np.finfo(np.float64).eps:
            if not scale > 0:
                raise _singular_error(rcond)
            M = M.copy()
            M.flat[:: size + 1] += self.jitter * scale
            factor, rcond = _cholesky(M)
            _check_rcond(rcond, size)
        return factor

    def solve(self, G):
        G = np.asarray(G, dtype=np.float64)
        m = len(G)
        out = np.empty_like(G)
        for A_factor, G_factor, part, d_in, d_out in self.layers_:
            V = G[:, part].reshape(m, d_in, d_out).transpose(1, 0, 2)
            V = linalg.cho_solve((A_factor, True), V.reshape(d_in, m * d_out))
            V = V.reshape(d_in * m, d_out)  # rows (j, t)
            V = linalg.cho_solve((G_factor, True), V.T).T
            out[:, part] = V.reshape(d_in, m, d_out).transpose(1, 0, 2).reshape(m, -1)
        return out

    def quad_norms(self, G, *, norms):
        factors = getattr(G, "layer_factors", None)
        if factors is None:
            return super().quad_norms(G, norms=norms)
        quad = np.zeros(len(G))
        norm_sq = np.zeros(len(G))
        for (A_factor, G_factor, *_), (design, delta) in zip(self.layers_, factors):
            left = linalg.cho_solve((A_factor, True), design.T)  # A^-1 ã
            right = linalg.cho_solve((G_factor, True), delta.T)  # G^-1 δ
            quad += np.einsum("ji,ji->i", left, design.T) * np.einsum(
                "ki,ki->i", right, delta.T
            )
            if norms:
                norm_sq += np.einsum("ji,ji->i", left, left) * np.einsum(
                    "ki,ki->i", right, right
                )
        return quad, (np.sqrt(norm_sq) if norms else None)


SOLVERS: dict[str, type[InverseHessian]] = {
    "exact": CholeskyInverse,
    # the generalised Gauss-Newton matrix, dense (networks; see the adapter)
    "gauss-newton": CholeskyInverse,
    "identity": IdentityInverse,
    "block-diagonal": BlockDiagonalInverse,
    "cg": ConjugateGradientInverse,
    "lissa": LissaInverse,
    # Kronecker-factored per layer (networks; see KFACInverse)
    "kfac": KFACInverse,
}

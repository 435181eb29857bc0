"""What every solver shares: the base class, the cost estimate, the
factorisation helpers and the typed error for a curvature that cannot be
inverted."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import linalg
from scipy.linalg import blas, lapack
from sklearn.utils._param_validation import validate_parameter_constraints

from ..exceptions import SingularCurvatureError

#: Floating-point rates (flop/s) the cost model converts work with: dense
#: BLAS-3 (GEMM, syrk, trsm, potrf) and sparse or matrix-vector products.
#: Only their ratio decides between solvers; the absolute values are those
#: of ``benchmarks/bench_floor.py`` on a 2-core machine, rounded down.
DENSE_RATE = 2e10
SPARSE_RATE = 1e9


def available_memory() -> int:
    """Bytes this process can still allocate without swapping: Linux's
    ``MemAvailable``, else the physical memory."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        pass
    try:  # pragma: no cover - not Linux
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 16 * 2**30


@dataclass(frozen=True)
class ProblemSize:
    """What the cost model knows of a problem before any work is done.

    Attributes
    ----------
    n_train, n_params, n_outputs : int
        Training examples, parameters (P) and outputs (K).
    n_solves : int
        Right-hand sides the method needs solved (normalisers, Newton rows,
        and the assumed test points).
    dense_flops : float
        Work to form the dense curvature matrix.
    dense_sparse : bool
        Whether that work is sparse (runs at ``SPARSE_RATE``).
    matvec_flops : float
        Work of one curvature-vector product (one right-hand side).
    matvec_sparse : bool
        Whether products run at ``SPARSE_RATE``.
    block_sizes : tuple of int
        Sizes of the curvature's diagonal blocks (per output, or per layer).
    block_flops : float
        Work to form those blocks.
    """

    n_train: int
    n_params: int
    n_outputs: int
    n_solves: int
    dense_flops: float
    dense_sparse: bool
    matvec_flops: float
    matvec_sparse: bool
    block_sizes: tuple[int, ...] = ()
    block_flops: float = 0.0


@dataclass(frozen=True)
class Estimate:
    """A solver's estimated cost for a problem: seconds and peak bytes."""

    seconds: float
    bytes: float


class InverseHessian(ABC):
    """Base class: ``H`` is the curvature matrix plus ``damping * I``.

    A solver declares the operator method it needs (:attr:`requires`, e.g.
    ``"dense"``), whether it inverts ``H`` exactly (:attr:`exact`) and its
    cost (:meth:`estimate`); the core picks one per curvature and method
    from these alone (:mod:`skrelatif._solvers._auto`).
    """

    #: The operator method this solver needs ("dense", "matvec", ...).
    requires: ClassVar[str] = ""
    #: Whether it applies ``H^-1`` exactly (up to rounding or a stated tol).
    exact: ClassVar[bool] = True
    #: Whether ``solver="auto"`` may choose it.
    automatic: ClassVar[bool] = True
    #: Among approximate solvers, a lower rank is more accurate:
    #: ``solver="auto"`` prefers it when about as fast.
    approximation_rank: ClassVar[int] = 1
    #: Options accepted through ``InfluenceExplainer(solver_options=...)``,
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
        name = name or cls.__name__
        unknown = set(options) - set(cls.option_constraints)
        if unknown:
            accepted = list(cls.option_constraints) or "none"
            raise ValueError(
                f"Unknown solver_options {sorted(unknown)} for solver={name!r}; "
                f"accepted: {accepted}."
            )
        validate_parameter_constraints(
            {key: cls.option_constraints[key] for key in options},
            options,
            caller_name=f"solver_options of solver={name!r}",
        )
        return options

    @classmethod
    def estimate(cls, size: ProblemSize) -> Estimate | None:
        """Estimated cost on a problem of ``size`` (None: does not apply)."""
        return None

    @abstractmethod
    def fit(self, operator: Any) -> InverseHessian:
        """Factorise (or otherwise prepare) the curvature."""

    @abstractmethod
    def solve(self, G: np.ndarray) -> np.ndarray:
        """``G H^-1`` for a (m, P) array of gradients (H is symmetric)."""

    #: dtype for the training-set-sized work (float32 only where accurate enough).
    compute_dtype: np.dtype = np.dtype(np.float64)
    #: True when every solve iterates over the training set (no factorisation).
    iterative: ClassVar[bool] = False
    #: Vectors of length P held per right-hand side while solving (for chunking).
    workspace: ClassVar[int] = 3
    #: True when ``quad_norms`` needs only the rows' per-layer factors
    #: (``layer_factors``; :class:`~skrelatif._adapters._mlp_curvature.LayerFactors`).
    layer_factored: ClassVar[bool] = False

    def factored_test(self, layer_factors: list) -> list | None:
        """``H^-1 g_t`` of test gradients given by their per-layer factors
        ``[(ã (m, d_in), δ (m, d_out)), ...]``, as sums of outer products per
        layer ``[(L (m, r, d_in), R (m, r, d_out)), ...]``
        (``sum_r L_r ⊗ R_r``); None when the solver has no such form."""
        return None

    def factored_rank(self) -> int:
        """The largest ``r`` of :meth:`factored_test` (for chunking)."""
        return 0

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


#: Rows of the largest matrix LAPACK's ``dpotrf`` factorises in one call; larger
#: ones are factorised in blocks (:func:`cholesky_lower`). The threaded
#: ``dpotrf`` of OpenBLAS 0.3.30 (SciPy 1.17's) crashes the process on a
#: 20,000 x 20,000 matrix (16,500 rows pass) on this project's machines.
CHOLESKY_BLOCK = 8192


def cholesky_lower(A: np.ndarray) -> tuple[np.ndarray, int]:
    """The lower Cholesky factor of the symmetric matrix A, in place.

    Returns ``(L, info)`` as LAPACK's ``dpotrf`` does (``clean=1``: zeros
    above the diagonal; ``info > 0`` the order of the first leading minor
    that is not positive definite), L a view of A's memory (A's transpose
    for a C-ordered A). Beyond ``CHOLESKY_BLOCK`` rows, right-looking and
    blocked, all of it BLAS-3:

        L11 = chol(A11) (dpotrf),  L21 = A21 L11^-T (dtrsm),
        A22 <- A22 - L21 L21^T     (GEMMs on column blocks of the lower part)
    """
    F = A if A.flags.f_contiguous else A.T  # symmetric: the same matrix
    (potrf,) = lapack.get_lapack_funcs(("potrf",), (F,))
    n = len(F)
    if n <= CHOLESKY_BLOCK:
        return potrf(F, lower=1, clean=1, overwrite_a=1)
    (trsm,) = blas.get_blas_funcs(("trsm",), (F,))
    size = CHOLESKY_BLOCK
    for start in range(0, n, size):
        stop = min(start + size, n)
        diagonal, info = potrf(F[start:stop, start:stop], lower=1, clean=1)
        if info:
            return F, start + info
        F[start:stop, start:stop] = diagonal
        F[:start, start:stop] = 0.0  # above the diagonal (clean=1)
        if stop == n:
            break
        panel = trsm(1.0, diagonal, F[stop:, start:stop], side=1, lower=1, trans_a=1)
        F[stop:, start:stop] = panel
        for column in range(stop, n, size):
            end = min(column + size, n)
            F[column:, column:end] -= (
                panel[column - stop :] @ panel[column - stop : end - stop].T
            )
    return F, 0


def cholesky(H: np.ndarray) -> tuple[np.ndarray, float]:
    """Lower Cholesky factor of H (overwritten) and its reciprocal condition number."""
    # 1-norm (largest absolute column sum), in column blocks: no P x P temporary
    anorm = max(
        np.abs(H[:, j : j + 512]).sum(axis=0).max() for j in range(0, len(H), 512)
    )
    factor, info = cholesky_lower(H)
    if info:
        return H, 0.0
    rcond, _ = linalg.lapack.dpocon(factor, anorm, uplo="L")
    return factor, float(rcond)


def check_rcond(rcond: float, n: int) -> None:
    """``SingularCurvatureError`` unless ``rcond`` is above rounding for size n."""
    if not rcond > n * np.finfo(np.float64).eps:
        raise SingularCurvatureError(rcond)

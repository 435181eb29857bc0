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


def cholesky(H: np.ndarray) -> tuple[np.ndarray, float]:
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


def check_rcond(rcond: float, n: int) -> None:
    """``SingularCurvatureError`` unless ``rcond`` is above rounding for size n."""
    if not rcond > n * np.finfo(np.float64).eps:
        raise SingularCurvatureError(rcond)

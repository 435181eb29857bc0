"""Iterative solvers: conjugate gradients (exact up to ``tol``) and LiSSA
(stochastic), both on matrix-free curvature-vector products."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from scipy import linalg
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from .._utils import caller_stacklevel, log, transposed
from ._base import (
    DENSE_RATE,
    SPARSE_RATE,
    Estimate,
    InverseHessian,
    ProblemSize,
    SingularCurvatureError,
)
from ._pcg import BlockJacobi, Jacobi, column_product, preconditioned_cg

#: A solution whose true relative residual exceeds ``CHECK_FACTOR * tol``
#: (the recursive one having converged) is reported with a warning.
CHECK_FACTOR = 100.0
#: Parameters in the dense block of ``preconditioner="block"`` by default.
BLOCK_SIZE = 4096
#: Iterations the cost model assumes per conjugate-gradient solve (with the
#: Jacobi preconditioner, 30-300 on the Hessians of the test suite).
CG_ITERATIONS = 100


class ConjugateGradientInverse(InverseHessian):
    """Preconditioned conjugate gradients, one system per row, solved together.

    Options: ``tol`` (relative residual, default 1e-8), ``max_iter`` (default
    1000). Each iteration costs one Hessian-vector product per right-hand side
    not yet converged, ``4 n nnz(x) K`` flops, all of them in one pass over the
    training data (the operator's column product ``matmat`` where it has one,
    else ``matvec``); no P x P matrix is formed. A system stops at its own
    tolerance, not at the slowest one's, so the right-hand sides solved with it
    (how ``working_memory`` batches them) do not change its solution beyond
    rounding. The products and the vector updates run on as many threads as BLAS
    may use (:func:`~._pcg.preconditioned_cg`). The preconditioner is the
    Hessian's diagonal; both are restricted to the orthogonal complement of the
    null space. With ``preconditioner="block"`` (what ``"auto"`` picks for a
    linear model more than 4 times larger than the block) the coordinates a
    diagonal misses, every output's intercept and the ``block_size //
    n_outputs`` densest inputs, are preconditioned by their exact dense block
    (:class:`~skrelatif._solvers._pcg.BlockJacobi`); on the 20-class TF-IDF
    model of ``benchmarks/bench_large.py`` it cuts the iterations from 76 to 19.
    After each solve ``residual_`` holds the largest relative residual ``||H x -
    g|| / ||g||`` of the solutions, computed from them with one more product (a
    warning when it exceeds ``CHECK_FACTOR * tol``), and ``n_iter_`` the
    iterations. RelatIF's training normalisers need one solve per training
    example; where that is out of reach, ``normalisers="preconditioner"`` (no
    pass over the data) or ``normalisers=k`` (k passes) approximates them, and
    the explainer measures their error (``normaliser_error_``).
    """

    option_constraints = {
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "preconditioner": [StrOptions({"auto", "jacobi", "block"})],
        "block_size": [Interval(Integral, 1, None, closed="left")],
        "normalisers": [
            StrOptions({"solve", "preconditioner"}),
            Interval(Integral, 1, None, closed="left"),
        ],
    }
    iterative = True
    workspace = 8
    requires = "matvec"

    @classmethod
    def estimate(cls, size: ProblemSize) -> Estimate:
        rate = SPARSE_RATE if size.matvec_sparse else DENSE_RATE
        per_iteration = size.matvec_flops / rate + 10 * size.n_params / SPARSE_RATE
        return Estimate(
            size.n_solves * CG_ITERATIONS * per_iteration,
            8 * cls.workspace * size.n_params * min(size.n_solves, 256),
        )

    def fit(self, operator):
        self.operator_ = operator
        self.tol = float(self.options.get("tol", 1e-8))
        self.max_iter = int(self.options.get("max_iter", 1000))
        diagonal = operator.diagonal()
        damped = diagonal + self.damping
        if np.any(damped <= 0):
            raise SingularCurvatureError(0.0, indefinite=bool(np.any(damped < 0)))
        self.preconditioner_ = self._preconditioner(operator, diagonal)
        # approximate normalisers are measured (``normaliser_error_``)
        self.exact = self.options.get("normalisers", "solve") == "solve"
        return self

    def quad_norms(self, G, *, norms):
        """``g^T H^-1 g`` (and ``||H^-1 g||``) per row: solved to ``tol``, or,
        with ``normalisers="preconditioner"``, ``g^T M g`` and ``||M g||``
        with ``M`` the preconditioner's inverse, or, with ``normalisers=k``,
        from ``k`` conjugate-gradient iterations (``g^T x_k``, the Gauss
        quadrature lower bound, and ``||x_k||``)."""
        how = self.options.get("normalisers", "solve")
        if how == "solve":
            return super().quad_norms(G, norms=norms)
        op = self.operator_
        B = op.remove_null(np.array(G, dtype=np.float64))
        if how == "preconditioner":
            solved = op.remove_null(
                transposed(self.preconditioner_.solve(transposed(B)))
            )
        else:
            solved = preconditioned_cg(
                op, self.damping, self.preconditioner_, B, tol=0.0, max_iter=how
            )[0]
        quad = np.einsum("ij,ij->i", solved, B)
        return quad, (np.linalg.norm(solved, axis=1) if norms else None)

    def _preconditioner(self, operator, diagonal):
        """:class:`Jacobi`, or :class:`BlockJacobi` where asked for (or, with
        ``"auto"``, where the block is under a quarter of the parameters); a
        block that is not positive definite (a non-convex loss) falls back to
        the diagonal, with ``"block"`` asked for a warning."""
        choice = self.options.get("preconditioner", "auto")
        size = int(self.options.get("block_size", BLOCK_SIZE))
        available = callable(getattr(operator, "principal_block", None))
        if choice == "block" and not available:
            raise ValueError(
                "solver_options={'preconditioner': 'block'} needs a linear "
                "model's curvature; use 'jacobi' (or 'auto')."
            )
        if (
            choice == "jacobi"
            or not available
            or (choice == "auto" and 4 * size >= operator.n_params)
        ):
            return Jacobi(operator, self.damping, diagonal)
        try:
            return BlockJacobi(operator, self.damping, size, diagonal)
        except linalg.LinAlgError:
            if choice == "block":
                warnings.warn(
                    "The curvature's principal block is not positive definite; "
                    "conjugate gradients use the diagonal preconditioner.",
                    UserWarning,
                    stacklevel=caller_stacklevel(),
                )
            return Jacobi(operator, self.damping, diagonal)

    def solve(self, G):
        op = self.operator_
        B = op.remove_null(np.array(G, dtype=np.float64))
        X, residual, iteration = preconditioned_cg(
            op, self.damping, self.preconditioner_, B,
            tol=self.tol, max_iter=self.max_iter,
        )  # fmt: skip
        norms = np.linalg.norm(B, axis=1)
        converged = bool(np.all(residual <= self.tol * norms))
        if not converged:
            worst = np.max(residual / np.maximum(norms, 1e-300))
            warnings.warn(
                f"Conjugate gradients did not reach tol={self.tol:g} in "
                f"{self.max_iter} iterations (worst relative residual "
                f"{worst:.1e}). "
                "Increase solver_options['max_iter'] or add damping.",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        # the achieved residual, checked on the solutions themselves (the
        # recursive residual drifts from the true one): one more product
        if iteration:
            true = transposed(column_product(op)(transposed(X), self.damping))
            true -= B
        else:
            true = B
        op.remove_null(true)
        achieved = np.linalg.norm(true, axis=1) / np.maximum(norms, 1e-300)
        achieved[norms == 0] = 0.0
        self.residual_ = float(achieved.max(initial=0.0))
        if converged and self.residual_ > CHECK_FACTOR * self.tol:
            warnings.warn(
                f"Conjugate gradients stopped at tol={self.tol:g}, but the "
                f"solutions' relative residual is {self.residual_:.1e} (rounding "
                "on an ill-conditioned curvature). Add damping, or use an exact "
                'factorisation (solver="cholesky" or "data-space").',
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        log(
            self.verbose,
            2,
            f"cg: {len(G)} systems solved in {iteration} iterations "
            f"(relative residual {self.residual_:.1e})",
        )
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
    requires = "sample_matvec"
    exact = False
    automatic = False  # stochastic, and slower than "cg" for the same accuracy

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

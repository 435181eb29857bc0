"""Solvers: how the curvature matrix is inverted, ``(H + damping * I)^-1``.

Which matrix ``H`` is (the exact Hessian of the training objective, the
generalised Gauss-Newton matrix, the identity) is the *curvature*, chosen by
``hessian=`` and provided by a model adapter as an *operator*
(``hessian_operator``, e.g.
:class:`skrelatif._adapters._linear_curvature.LinearHessian`) with

- ``n_params``, ``n_outputs``, ``n_design`` (P = n_outputs * n_design), ``n_train``;
- ``dtype``: the dtype of the training data (float32 or float64);
- ``null_space``: an orthonormal P x m basis of directions along which the
  objective is flat by symmetry (the common shift of all softmax intercepts),
  or None. Every gradient is orthogonal to it, so ``H^+ g`` is what we want;
- ``remove_null(V)``: the rows of V projected (in place) off the null space;
- and some of the methods the solvers need, as the adapter declares per
  curvature (``ModelAdapter.curvatures``): ``dense(dtype)``, ``matvec(V)``,
  ``diagonal()``, ``diagonal_blocks()``, ``sample_matvec(V, rows)`` (a
  minibatch estimate of ``V H``), ``kronecker_factors()``, ``data_space()``
  (a linear model's factors: X, each example's weighted output curvature and
  the penalty).

How it is inverted is the *solver*, chosen by ``solver=``. Each solver
declares the one operator method it needs (``requires``), whether it is
exact, and its cost (``estimate``), so any curvature works with any solver
whose need it meets; ``solver="auto"`` compares the estimates
(:func:`skrelatif._solvers._auto.choose_solver`).

Gradients come in dense rows (one chunk of examples at a time). Solvers
answer ``solve(G) = G H^-1`` and ``quad_norms(G) = (g^T H^-1 g, ||H^-1 g||)``
per row. Their options are declared in ``option_constraints`` (scikit-learn
parameter constraints) and validated by the core before any work is done.

==================== ==========================================================
``"cholesky"``       dense H, one Cholesky factorisation (O(P^3)); exact.
``"block-diagonal"`` the per-output diagonal blocks of H (cross-class terms
                     dropped; the K-FAC-motivated approximation of Barshan et
                     al., appendix C): K factorisations of size n_design.
``"cg"``             conjugate gradients on matrix-free products,
                     Jacobi-preconditioned; exact up to ``tol``.
``"lissa"``          the stochastic Neumann-series estimator of Agarwal et al.
                     (2017), as used by Koh & Liang (2017).
``"kfac"``           Kronecker-factored per layer (networks' Gauss-Newton).
``"data-space"``     linear models: Woodbury through the n K x n K Gram system,
                     one Cholesky factorisation (O((n K)^3)); exact. Pays when
                     n K < P (wide or sparse data, few classes).
``"ekfac"``          K-FAC's eigenbasis with its diagonal refitted to the
                     data (eigenvalue-corrected K-FAC; networks' Gauss-Newton).
==================== ==========================================================

``hessian="identity"`` needs no solver (:class:`IdentityInverse`).
"""

from ..exceptions import SingularCurvatureError
from ._base import Estimate, InverseHessian, ProblemSize, available_memory
from ._dataspace import DataSpaceInverse
from ._direct import BlockDiagonalInverse, CholeskyInverse, IdentityInverse
from ._ekfac import EKFACInverse
from ._iterative import ConjugateGradientInverse, LissaInverse
from ._kfac import KFACInverse

#: The solvers by their ``solver=`` name.
SOLVERS: dict[str, type[InverseHessian]] = {
    "cholesky": CholeskyInverse,
    "block-diagonal": BlockDiagonalInverse,
    "cg": ConjugateGradientInverse,
    "lissa": LissaInverse,
    "kfac": KFACInverse,
    "data-space": DataSpaceInverse,
    "ekfac": EKFACInverse,
}

__all__ = [
    "SOLVERS",
    "BlockDiagonalInverse",
    "CholeskyInverse",
    "ConjugateGradientInverse",
    "DataSpaceInverse",
    "EKFACInverse",
    "Estimate",
    "IdentityInverse",
    "InverseHessian",
    "KFACInverse",
    "LissaInverse",
    "ProblemSize",
    "SingularCurvatureError",
    "available_memory",
]

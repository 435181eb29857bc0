"""Inverse-Hessian solvers: apply ``(H + damping * I)^-1`` to gradients.

A solver is built from a *Hessian operator* provided by a model adapter, an
object with

- ``n_params``: the number of parameters P;
- ``dense()``: the P x P Hessian of the training objective (exact);
- ``null_space``: an orthonormal P x m basis of directions along which the
  objective is flat by symmetry (e.g. the common shift of all softmax
  intercepts), or ``None``. Every gradient is orthogonal to it, so adding
  ``U U^T`` (scaled) to H makes it invertible without changing ``H^+ g``.

Solvers answer two questions, on *rows* of a matrix of gradients ``G``:
``solve(G) = G H^-1`` and ``quad_norms(G) = (g^T H^-1 g, ||H^-1 g||)`` per row.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from scipy import linalg


class InverseHessian(ABC):
    """Base class: ``H`` is the Hessian of the objective plus ``damping * I``."""

    def __init__(self, damping: float = 0.0) -> None:
        self.damping = damping

    @abstractmethod
    def fit(self, hessian_operator: Any) -> InverseHessian:
        """Factorise (or otherwise prepare) the Hessian."""

    @abstractmethod
    def solve(self, G: np.ndarray) -> np.ndarray:
        """``G H^-1`` for a (m, P) array of gradients (H is symmetric)."""

    def quad_norms(self, G: np.ndarray, *, norms: bool) -> tuple[np.ndarray, Any]:
        """Per row g of ``G``: ``g^T H^-1 g`` and, if ``norms``, ``||H^-1 g||``."""
        solved = self.solve(G)
        quad = np.einsum("ij,ij->i", solved, G)
        return quad, (np.linalg.norm(solved, axis=1) if norms else None)


class IdentityInverse(InverseHessian):
    """``H = I`` (the "gradient" baseline of Barshan et al., Fig. 6)."""

    def fit(self, hessian_operator: Any) -> IdentityInverse:
        return self

    def solve(self, G: np.ndarray) -> np.ndarray:
        return G / (1.0 + self.damping)

    def quad_norms(self, G: np.ndarray, *, norms: bool) -> tuple[np.ndarray, Any]:
        sq = np.einsum("ij,ij->i", G, G)
        return sq / (1.0 + self.damping), (
            np.sqrt(sq) / (1.0 + self.damping) if norms else None
        )


def _available_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 16 * 2**30


class CholeskyInverse(InverseHessian):
    """Exact: one Cholesky factorisation ``H = L L^T`` of the dense Hessian.

    ``g^T H^-1 g = ||L^-1 g||^2`` and ``H^-1 g = L^-T (L^-1 g)``, so both
    normalisers cost one or two triangular solves per chunk of gradients.
    """

    def fit(self, hessian_operator: Any) -> CholeskyInverse:
        n_params = hessian_operator.n_params
        needed = 2 * 8 * n_params**2
        if needed > 0.75 * _available_memory():
            raise ValueError(
                f'hessian="exact" needs a dense {n_params} x {n_params} Hessian '
                f"({needed / 2**30:.1f} GiB), more than this machine's memory. "
                'Use hessian="identity" instead.'
            )
        H = hessian_operator.dense()
        H.flat[:: n_params + 1] += self.damping
        null_space = hessian_operator.null_space
        if null_space is not None:
            # H^+ g for g orthogonal to U equals (H + a U U^T)^-1 g for any a > 0.
            scale = np.trace(H) / n_params
            H += scale * (null_space @ null_space.T)
        anorm = np.abs(H).sum(axis=0).max()
        try:
            self.factor_ = linalg.cholesky(
                H, lower=True, overwrite_a=True, check_finite=False
            )
            rcond, info = linalg.lapack.dpocon(self.factor_, anorm, uplo="L")
        except linalg.LinAlgError:
            rcond = 0.0
        if not rcond > n_params * np.finfo(np.float64).eps:
            raise ValueError(
                "The Hessian of the training objective is singular (or numerically "
                f"so: reciprocal condition number {rcond:.1e}), so H^-1 is not "
                "defined. This happens without regularisation (C=np.inf) or with "
                "duplicated or constant features. Pass damping > 0 (for example "
                'damping=1e-3) or use hessian="identity".'
            )
        return self

    def solve(self, G: np.ndarray) -> np.ndarray:
        return linalg.cho_solve((self.factor_, True), G.T, check_finite=False).T

    def quad_norms(self, G: np.ndarray, *, norms: bool) -> tuple[np.ndarray, Any]:
        half = linalg.solve_triangular(
            self.factor_, G.T, lower=True, check_finite=False
        )  # L^-1 g
        quad = np.einsum("ij,ij->j", half, half)
        if not norms:
            return quad, None
        solved = linalg.solve_triangular(
            self.factor_, half, lower=True, trans="T", check_finite=False
        )  # L^-T L^-1 g
        return quad, np.sqrt(np.einsum("ij,ij->j", solved, solved))


SOLVERS: dict[str, type[InverseHessian]] = {
    "exact": CholeskyInverse,
    "identity": IdentityInverse,
}

"""K-FAC: the Kronecker-factored per-layer inverse of a network's
Gauss-Newton matrix."""

from __future__ import annotations

import numpy as np
from scipy import linalg

from ._base import (
    DENSE_RATE,
    Estimate,
    InverseHessian,
    ProblemSize,
    SingularCurvatureError,
    check_rcond,
    cholesky,
)


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
    ``g^T H^-1 g = sum_l (ã^T A^-1 ã)(δ^T G^-1 δ)``. A test gradient's
    solve is ``A^-1 ã_t ⊗ G^-1 δ_t`` per layer, so its products with the
    training gradients cost ``O(d_in + d_out)`` per pair and layer
    (:meth:`factored_test`).
    """

    #: relative jitter of a singular factor
    jitter = 1e-8
    requires = "kronecker_factors"
    exact = False

    @classmethod
    def estimate(cls, size: ProblemSize) -> Estimate:
        # factors: about one Gauss-Newton product's pass over the data; a
        # solve: two small products per layer, about 2 P^1.5 at most
        P = size.n_params
        work = 2 * size.matvec_flops / DENSE_RATE
        work += size.n_solves * 2 * P**1.5 / DENSE_RATE
        return Estimate(work, 8 * 4 * P)

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
        factor, rcond = cholesky(M.copy())
        if not rcond > size * np.finfo(np.float64).eps:
            if not scale > 0:
                raise SingularCurvatureError(rcond)
            M = M.copy()
            M.flat[:: size + 1] += self.jitter * scale
            factor, rcond = cholesky(M)
            check_rcond(rcond, size)
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

    layer_factored = True

    def factored_test(self, layer_factors):
        # (A^-1 ⊗ G^-1)(ã ⊗ δ) = A^-1 ã ⊗ G^-1 δ: rank 1 per layer, exact
        out = []
        for (A_factor, G_factor, *_), (design, delta) in zip(
            self.layers_, layer_factors
        ):
            left = linalg.cho_solve((A_factor, True), np.asarray(design).T).T
            right = linalg.cho_solve((G_factor, True), np.asarray(delta).T).T
            out.append((left[:, None, :], right[:, None, :]))
        return out

    def factored_rank(self) -> int:
        return 1

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

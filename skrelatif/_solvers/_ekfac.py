"""EK-FAC: eigenvalue-corrected Kronecker-factored inverse of a network's
Gauss-Newton matrix (George et al. 2018; Grosse et al. 2023).

Layer ``l``'s block of the Gauss-Newton matrix (parameters ``Theta_l`` of
shape ``(d_in, d_out)``, ``d_in`` counting the bias row, ravelled row-major)
is ::

    B_l = sum_i w_i ã_i ã_i^T ⊗ M_i + diag(p_rows) ⊗ I

(``ã_i = [a_i; 1]`` the layer's input, ``M_i`` the Gauss-Newton curvature of
its pre-activations, ``p_rows`` the penalty of each input row). K-FAC replaces
it by ``A ⊗ G`` with ``A = sum_i w_i ã ã^T / W`` and ``G = sum_i w_i M_i``
(:class:`~skrelatif._solvers.KFACInverse`). EK-FAC keeps only K-FAC's
*eigenbasis*: with ``A + diag(p_rows) / g = Q_A Λ_A Q_A^T`` (the penalty
folded in as K-FAC does, ``g = tr(G) / d_out``) and ``G = Q_G Λ_G Q_G^T``, it
approximates ::

    B_l ≈ (Q_A ⊗ Q_G) diag(E) (Q_A ⊗ Q_G)^T,
    E[j, k] = ((Q_A ⊗ Q_G)^T B_l (Q_A ⊗ Q_G))_{jk, jk}
            = sum_i w_i (Q_A^T ã_i)_j^2 (Q_G^T M_i Q_G)_kk + (Q_A^T diag(p_rows) Q_A)_jj

the diagonal of ``B_l`` in that basis: of all matrices diagonal in the basis,
the one closest to ``B_l`` in Frobenius norm (K-FAC's own eigenvalues are
``E[j, k] = Λ_A[j] Λ_G[k]`` instead). ``E`` is summed over the training data
in one more pass, from each example's curvature root backpropagated to the
layer (``sum_c δ_c δ_c^T = w_i M_i``, the exact Gauss-Newton expectation, not
a sampled Fisher), without forming any per-example gradient. The trace of
``B_l`` is kept exactly (``sum E = tr B_l``), so the package's
``damping="auto"``, ``0.1 tr(C) / P``, is 0.1 times the mean corrected
eigenvalue over the whole network, the damping kronfluence uses per layer
(``damping_factor=None``: 0.1 times each layer's mean eigenvalue).

With damping ``lambda`` (``H + lambda I`` is diagonal in the same basis)::

    solve:  V_l -> Q_A [(Q_A^T V_l Q_G) / (E + lambda)] Q_G^T
    g^T H^-1 g = sum_jk (Q_A^T ã)_j^2 (Q_G^T δ)_k^2 / (E_jk + lambda)
    ||H^-1 g||^2 = sum_jk (Q_A^T ã)_j^2 (Q_G^T δ)_k^2 / (E_jk + lambda)^2

for a row ``g = ã ⊗ δ`` per layer (the RelatIF normalisers and the
self-influence): ``O(d_in^2 + d_out^2 + d_in d_out)`` per example and layer.
Blocks of different layers are dropped, as in K-FAC.

Test-train products. A test gradient is ``ã_t ⊗ δ_t`` per layer too, so with
``1 / (E + lambda) ≈ sum_r sigma_r u_r v_r^T`` its solve is
``sum_r Q_A (sigma_r u_r ∘ Q_A^T ã_t) ⊗ Q_G (v_r ∘ Q_G^T δ_t)``, and its
product with a training gradient ``ã_i ⊗ δ_i`` costs ``2 r (d_in + d_out)``
flops (:meth:`EKFACInverse.factored_test`). The rank-``r`` approximation is
the truncated SVD of ``diag(l_A) / (E + lambda) diag(l_G)`` (``l_A``, ``l_G``
the factors' eigenvalues), unweighted: a product's term ``jk`` is about
``l_A[j] l_G[k] / (E_jk + lambda)`` in size. A corrected eigenvalue
that stays at 0 after damping (a direction along which every gradient is 0,
e.g. a dead ReLU unit, with ``damping=0``) gets ``1e-8`` times its layer's
mean added, as K-FAC's singular factors do.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval

from ._base import DENSE_RATE, Estimate, InverseHessian, ProblemSize


class EKFACInverse(InverseHessian):
    """Eigenvalue-corrected K-FAC (George et al. 2018) of a network's
    Gauss-Newton matrix: for operators with ``kronecker_factors()`` and
    ``kronecker_eigenvalues(bases)``; the math is in the module docstring.

    Options: ``layer_damping`` (float > 0, default None): instead of the
    explainer's uniform ``damping``, damp each layer by this fraction of its
    own mean corrected eigenvalue (kronfluence's heuristic, 0.1 there). The
    explainer's ``damping_`` is then not the damping used, and
    ``normaliser_error_`` is measured against the uniformly damped matrix.
    ``cross_rank`` (int >= 0, default 8): the rank per layer of the solved
    test vectors (:meth:`factored_test`), a truncated SVD of
    ``diag(l_A) / (E + lambda) diag(l_G)`` (``l_A``, ``l_G`` the K-FAC
    factors' eigenvalues) unweighted afterwards; 0: the full rank, exact.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.neural_network import MLPClassifier
    >>> from skrelatif import InfluenceExplainer
    >>> X, y = load_iris(return_X_y=True)
    >>> model = MLPClassifier((8,), solver="lbfgs", max_iter=2000,
    ...                       random_state=0).fit(X, y)
    >>> ex = InfluenceExplainer(model, method="l-relatif", solver="ekfac")
    >>> ex.fit(X, y).solver_
    'ekfac'
    >>> ex.explain(X[:2], k=3).proponents.shape
    (2, 3)
    """

    #: relative jitter of a corrected eigenvalue left at 0
    jitter = 1e-8
    requires = "kronecker_eigenvalues"
    exact = False
    option_constraints = {
        "layer_damping": [Interval(Real, 0, None, closed="neither")],
        "cross_rank": [Interval(Integral, 0, None, closed="left")],
    }
    layer_factored = True
    #: default rank of the test-train products per layer (0: full, exact)
    cross_rank = 8
    #: Among approximate solvers, preferred by ``solver="auto"`` to those of
    #: a larger rank when about as fast (see :mod:`skrelatif._solvers._auto`).
    approximation_rank = 0

    @classmethod
    def estimate(cls, size: ProblemSize) -> Estimate:
        # factors and corrected eigenvalues: two passes of about one
        # Gauss-Newton product each, and the diagonal's pass of damping
        # "auto"; a solve: four small products per layer, about 3 P^1.5
        P = size.n_params
        work = 3 * size.matvec_flops / DENSE_RATE
        work += size.n_solves * 3 * P**1.5 / DENSE_RATE
        return Estimate(work, 8 * 6 * P)

    def fit(self, operator):
        self.n_params = operator.n_params
        factors = operator.kronecker_factors()
        bases = []
        for factor in factors:
            A = np.array(factor.A, dtype=np.float64)
            G = np.array(factor.G, dtype=np.float64)
            g_mean = max(np.trace(G) / len(G), np.finfo(np.float64).tiny)
            A.flat[:: len(A) + 1] += np.asarray(factor.row_penalty) / g_mean
            bases.append((np.linalg.eigh(A), np.linalg.eigh(G)))
        weights = [(a_values, g_values) for (a_values, _), (g_values, _) in bases]
        bases = [(Q_A, Q_G) for (_, Q_A), (_, Q_G) in bases]
        corrected = operator.kronecker_eigenvalues(bases)
        layer_damping = self.options.get("layer_damping")
        self.layers_ = []
        for factor, (Q_A, Q_G), E in zip(factors, bases, corrected):
            penalty = np.square(Q_A).T @ np.asarray(factor.row_penalty, np.float64)
            E = E + penalty[:, None]
            mean = float(E.mean())
            damped = E + (layer_damping * mean if layer_damping else self.damping)
            floor = E.size * np.finfo(np.float64).eps * max(float(damped.max()), 0.0)
            if not damped.min() > floor:
                damped = damped + self.jitter * max(mean, np.finfo(np.float64).tiny)
            self.layers_.append((Q_A, Q_G, 1.0 / damped, factor.params, E))
        self.compute_dtype = np.dtype(np.float64)
        rank = int(self.options.get("cross_rank", self.cross_rank))
        self.cross_factors_ = [
            _truncate(layer[2], a_values, g_values, rank)
            for layer, (a_values, g_values) in zip(self.layers_, weights)
        ]
        return self

    @property
    def cross_ranks_(self) -> list[int]:
        """Per layer, the rank ``r`` of the test-train products (the full
        rank ``min(d_in, d_out)``: exact)."""
        return [len(sigma) for _, sigma, _ in self.cross_factors_]

    def factored_rank(self) -> int:
        return max(self.cross_ranks_)

    def factored_test(self, layer_factors):
        out = []
        for (Q_A, Q_G, *_), (U, sigma, Vt), (design, delta) in zip(
            self.layers_, self.cross_factors_, layer_factors
        ):
            a = np.asarray(design, dtype=np.float64) @ Q_A  # (m, d_in)
            d = np.asarray(delta, dtype=np.float64) @ Q_G  # (m, d_out)
            m, r = len(a), len(sigma)
            left = a[:, None, :] * (U.T * sigma[:, None])[None]
            right = d[:, None, :] * Vt[None]
            left = (left.reshape(m * r, -1) @ Q_A.T).reshape(m, r, -1)
            right = (right.reshape(m * r, -1) @ Q_G.T).reshape(m, r, -1)
            out.append((left, right))
        return out

    @property
    def eigenvalues_(self) -> list[np.ndarray]:
        """The corrected eigenvalues ``E`` of every layer (penalty included,
        undamped), each ``(d_in, d_out)``."""
        return [layer[4] for layer in self.layers_]

    def solve(self, G):
        G = np.asarray(G, dtype=np.float64)
        m = len(G)
        out = np.empty_like(G)
        for Q_A, Q_G, inverse, part, _ in self.layers_:
            d_in, d_out = inverse.shape
            V = G[:, part].reshape(m * d_in, d_out) @ Q_G  # rows (t, j)
            V = V.reshape(m, d_in, d_out).transpose(1, 0, 2).reshape(d_in, -1)
            V = (Q_A.T @ V).reshape(d_in, m, d_out) * inverse[:, None, :]
            V = (Q_A @ V.reshape(d_in, -1)).reshape(d_in, m, d_out)
            V = V.transpose(1, 0, 2).reshape(m * d_in, d_out) @ Q_G.T
            out[:, part] = V.reshape(m, -1)
        return out

    def quad_norms(self, G, *, norms):
        factors = getattr(G, "layer_factors", None)
        if factors is None:
            return super().quad_norms(G, norms=norms)
        quad = np.zeros(len(G))
        norm_sq = np.zeros(len(G))
        for (Q_A, Q_G, inverse, *_), (design, delta) in zip(self.layers_, factors):
            left = np.square(np.asarray(design, dtype=np.float64) @ Q_A)
            right = np.square(np.asarray(delta, dtype=np.float64) @ Q_G)
            quad += np.einsum("ik,ik->i", left @ inverse, right)
            if norms:
                norm_sq += np.einsum("ik,ik->i", left @ np.square(inverse), right)
        return quad, (np.sqrt(norm_sq) if norms else None)


def _truncate(inverse, a_values, g_values, rank):
    """``1 / (E + lambda)`` as ``U diag(sigma) V^T`` of rank at most
    ``rank`` (0: full rank, exact): the truncated SVD of the matrix weighted
    by the K-FAC factors' eigenvalues, ``S = diag(l_A) inverse diag(l_G)``,
    unweighted. A product ``(a_t ∘ a_i)^T inverse (δ_t ∘ δ_i)`` in the
    eigenbasis has terms of size ``l_A[j] l_G[k] inverse[j, k]``: the
    weighting spends the rank where the gradients are, not on the directions
    they hardly reach (where ``inverse`` is largest, about ``1 / lambda``)."""
    full = min(inverse.shape)
    rank = full if rank == 0 else min(rank, full)
    tiny = np.finfo(np.float64).eps
    left = np.maximum(a_values, tiny * max(float(a_values.max()), tiny))
    right = np.maximum(g_values, tiny * max(float(g_values.max()), tiny))
    U, sigma, Vt = np.linalg.svd(left[:, None] * inverse * right, full_matrices=False)
    return U[:, :rank] / left[:, None], sigma[:rank], Vt[:rank] / right

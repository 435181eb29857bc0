"""Curvature operators of a multi-layer perceptron's training objective (see
:mod:`skrelatif._adapters.mlp` for the objective and the parameter layout).

With ``D_i = d²l/df²`` (``diag(p) - p p^T`` for the
softmax, ``expit(f) expit(-f)`` binary, 1 for the regressor) and ``J_i = df_i /
dtheta``, :class:`MLPHessian` is

- ``"gauss-newton"``: ``sum_i w_i J_i^T D_i J_i + diag(p)`` (the Fisher of the
  log-likelihood; Barshan et al. appendix A);
- ``"exact"``: that plus ``sum_i w_i sum_k r_ik ∇² f_ik`` (``r = dl/df``),
  by exact Hessian-vector products (Pearlmutter's R-operator: a forward pass
  of the directional derivatives followed by their backward pass).

The Hessian of the loss with respect to a layer's pre-activations, ``M_{i,l}``,
is backpropagated exactly (``M_L = D``, ``M_l = φ' ∘ (W M_{l+1} W^T) ∘ φ'^T``
plus, for the exact Hessian, ``diag(φ'' ∘ (W δ_{l+1}))``); layer l's diagonal
block of H is ``sum_i w_i ã ã^T ⊗ M_{i,l+1}``, which gives the diagonal, the
per-layer blocks and the K-FAC factors ``A_l = sum_i w_i ã ã^T / W``,
``G_l = sum_i w_i M_{i,l+1}^GN`` (``W = sum_i w_i``; Martens & Grosse 2015, with
the exact expectation of the Gauss-Newton curvature; see
:class:`skrelatif._solvers.KFACInverse`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._utils import chunk_slices
from ._linear_curvature import _add_gram, _symmetrise_lower
from ._mlp_layers import as_dense, design_dot, sum_outer


def curvature_matrix(a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    D = a[:, :, None] * np.eye(a.shape[1])
    if b is not None:
        D -= b[:, :, None] * b[:, None, :]
    return D


class KroneckerFactor(NamedTuple):
    """Layer ``l``'s block of H approximated as ``A ⊗ G + diag(row_penalty) ⊗ I``
    on the parameters ``params`` (a slice of theta, ``Theta_l`` row-major)."""

    A: np.ndarray
    G: np.ndarray
    params: slice
    row_penalty: np.ndarray


class FactoredRows(np.ndarray):
    """Dense gradient rows that also carry their per-layer factors
    ``layer_factors = [(ã_l (n, d_l + 1), δ_l (n, d_{l+1})), ...]``, so that a
    Kronecker-factored solver can take their quadratic forms in
    ``O(d_l^2 + d_{l+1}^2)`` per row instead of ``O(d_l^2 d_{l+1})``. Any array
    derived from them (a slice, a copy) drops the factors."""

    layer_factors: list | None = None

    def __array_finalize__(self, obj):
        self.layer_factors = None


class LayerFactors:
    """Gradient rows given only by their per-layer factors
    ``layer_factors = [(ã_l (n, d_l + 1), δ_l (n, d_{l+1})), ...]`` (row i's
    gradient in layer l is ``ã_{i,l} ⊗ δ_{i,l}``), for the solvers that
    need nothing else (``InverseHessian.layer_factored``): no n x P array."""

    def __init__(self, layer_factors: list) -> None:
        self.layer_factors = layer_factors

    def __len__(self) -> int:
        return len(self.layer_factors[0][0])


class MLPHessian:
    """The Hessian (``curvature="exact"``) or generalised Gauss-Newton matrix
    (``"gauss-newton"``) of a network's training objective, for the solvers
    (see :mod:`skrelatif._solvers`; computations in float64).

    ``matvec`` uses exact Hessian-vector products (R-operator); ``dense``
    stacks ``sqrt(w_i) R_i J_i`` rows (``R_i^T R_i = D_i``) for the
    Gauss-Newton matrix, and ``P`` Hessian-vector products for the exact
    Hessian (small networks). ``diagonal()`` and ``diagonal_blocks()`` (a list
    of the per-layer blocks) come from the backpropagated pre-activation
    curvature; ``kronecker_factors()`` gives the K-FAC factors of every layer
    (of the Gauss-Newton matrix, whatever ``curvature``: K-FAC approximates the
    Fisher, and the exact curvature's factors need not be positive).
    """

    def __init__(self, adapter, X, y_encoded, weights, curvature, n_jobs=None):
        self.adapter = adapter
        self.X = X
        self.y = y_encoded
        self.weights = np.asarray(weights, dtype=np.float64)
        self.exact = curvature != "gauss-newton"
        self.n_jobs = n_jobs
        self.n_params = adapter.n_params
        self.n_outputs = adapter.n_outputs
        self.n_design = self.n_params // self.n_outputs
        self.n_train = X.shape[0]
        self.dtype = np.dtype(np.float64)
        self.null_space = adapter.null_space()
        self.penalty = adapter.penalty()
        self.widths = [adapter.coefs[0].shape[0]] + [W.shape[1] for W in adapter.coefs]

    def remove_null(self, V):
        if self.null_space is not None:
            K = self.n_outputs
            V[:, -K:] -= V[:, -K:].mean(axis=1, keepdims=True)
        return V

    # -- per-chunk quantities ----------------------------------------------------------
    def _chunks(self, row_bytes, rows=None):
        index = np.arange(self.n_train) if rows is None else np.asarray(rows)
        for part in chunk_slices(index.size, row_bytes):
            yield index[part] if rows is not None else part

    def _local(self, rows):
        """Forward pass, weights, curvature (a, b) and weighted residuals r."""
        adapter = self.adapter
        X = self.X[rows]
        state = adapter.forward(X)
        y = self.y[rows]
        w = self.weights[rows]
        a, b = adapter.output_curvature(state.outputs, y)
        direction, norm = adapter.output_gradients(state.outputs, y)
        residual = (w * norm)[:, None] * direction
        return state, w, a, b, residual

    # -- products ----------------------------------------------------------------------
    def matvec(self, V):
        V = np.atleast_2d(np.asarray(V, dtype=np.float64))
        return self._matvec(V) + V * self.penalty

    def sample_matvec(self, V, rows):
        V = np.atleast_2d(np.asarray(V, dtype=np.float64))
        return (self.n_train / len(rows)) * self._matvec(V, rows) + V * self.penalty

    def _matvec(self, V, rows=None):
        m = V.shape[0]
        out = np.zeros_like(V)
        row_bytes = 8 * 6 * m * max(self.widths)
        for chunk in self._chunks(row_bytes, rows):
            out += self._hvp_chunk(V, chunk)
        return out

    def _hvp_chunk(self, V, rows):
        """``sum_i w_i H_i v`` over a chunk for the rows v of V (R-operator)."""
        adapter = self.adapter
        state, w, a, b, residual = self._local(rows)
        m = V.shape[0]
        L = len(adapter.coefs)
        blocks = [
            V[:, part].reshape(m, W.shape[0] + 1, W.shape[1])
            for W, part in zip(adapter.coefs, adapter.slices)
        ]
        # forward: R(z_{l+1}) = R(a_l) W_l + ã_l V_l, R(a_l) = phi' R(z_l)
        Rz = []
        Ra = None
        for layer, W in enumerate(adapter.coefs):
            d_in, d_out = blocks[layer].shape[1:]
            S = blocks[layer].transpose(1, 0, 2).reshape(d_in, m * d_out)
            Z = design_dot(state.inputs[layer], S).reshape(-1, m, d_out)
            if Ra is not None:
                Z += Ra @ W
            Rz.append(Z)
            if layer < L - 1:
                Ra = state.first[layer][:, None, :] * Z
        # top: R(δ_L) = w D R(f); δ_L = w r
        Rf = Rz[-1]
        Rdelta = a[:, None, :] * Rf
        if b is not None:
            Rdelta -= b[:, None, :] * np.einsum("nmk,nk->nm", Rf, b)[..., None]
        Rdelta *= w[:, None, None]
        deltas = adapter.backward(state, residual) if self.exact else None
        out = np.empty_like(V)
        for layer in range(L - 1, -1, -1):
            W = adapter.coefs[layer]
            part = adapter.slices[layer]
            grad = sum_outer(state.inputs[layer], Rdelta)
            if self.exact and layer:  # R(ã_l) ⊗ δ_l (R(ã_0) = 0)
                Ra_l = state.first[layer - 1][:, None, :] * Rz[layer - 1]
                cross = np.einsum("nmj,nk->mjk", Ra_l, deltas[layer])
                grad = grad.reshape(m, -1, W.shape[1])
                grad[:, :-1] += cross
                grad = grad.reshape(m, -1)
            out[:, part] = grad
            if layer:
                d1 = state.first[layer - 1][:, None, :]
                back = Rdelta @ W.T
                if self.exact:
                    VW = blocks[layer][:, :-1, :]  # (m, d_in, d_out)
                    back += np.einsum("nk,mjk->nmj", deltas[layer], VW)
                    d2 = state.second[layer - 1]
                    if d2 is not None:
                        pre = deltas[layer] @ W.T  # (n, d_in)
                        back_d2 = (d2 * pre)[:, None, :] * Rz[layer - 1]
                        Rdelta = back * d1 + back_d2
                        continue
                Rdelta = back * d1
        return out

    def dense(self, dtype=np.float64):
        P = self.n_params
        if self.exact:
            H = np.empty((P, P))
            block = max(1, min(P, 256))
            for start in range(0, P, block):
                stop = min(start + block, P)
                eye = np.zeros((stop - start, P))
                eye[np.arange(stop - start), np.arange(start, stop)] = 1.0
                H[start:stop] = self._matvec(eye)
            H = 0.5 * (H + H.T)
        else:  # lower triangle by syrk of the rows sqrt(w_i) R_i J_i
            H = np.zeros((P, P), order="F")
            K = self.n_outputs
            for chunk in self._chunks(8 * 2 * K * P):
                state, w, a, b, _ = self._local(chunk)
                root = curvature_root(a, b) * np.sqrt(w)[:, None, None]
                J = self.adapter._rows(state, self.adapter.backward(state, root))
                _add_gram(H, J.reshape(-1, P))
                del J
            H = _symmetrise_lower(H)
        H.flat[:: P + 1] += self.penalty
        return H

    # -- block curvature ---------------------------------------------------------------
    def _preactivation_curvatures(self, rows, exact):
        """Per layer l: the inputs ``a_l``, the weights and ``w_i M_{i,l+1}``,
        the loss's curvature with respect to ``z_{l+1}`` (n, d, d)."""
        adapter = self.adapter
        state, w, a, b, residual = self._local(rows)
        L = len(adapter.coefs)
        M = w[:, None, None] * curvature_matrix(a, b)
        deltas = adapter.backward(state, residual) if exact else None
        result = [None] * L
        for layer in range(L - 1, -1, -1):
            result[layer] = (state.inputs[layer], w, M)
            if layer:
                W = adapter.coefs[layer]
                d1 = state.first[layer - 1]
                M = np.einsum("jk,nkl,ml->njm", W, M, W, optimize=True)
                M *= d1[:, :, None] * d1[:, None, :]
                d2 = state.second[layer - 1]
                if exact and d2 is not None:
                    extra = d2 * (deltas[layer] @ W.T)
                    M[:, np.arange(M.shape[1]), np.arange(M.shape[1])] += extra
        return result

    def _curvature_row_bytes(self):
        return 8 * 3 * max(self.widths) ** 2 + 8 * 4 * sum(self.widths)

    def diagonal(self):
        if not self.exact:  # (ã∘ã) ⊗ sum_c δ_c∘δ_c from the curvature root
            out = np.zeros(self.n_params)
            for designs, deltas, _ in self._root_passes():
                for layer, part in enumerate(self.adapter.slices):
                    own = np.square(deltas[layer]).sum(axis=1)
                    out[part] += (np.square(designs[layer]).T @ own).ravel()
            return out + self.penalty
        out = np.zeros(self.n_params)
        for chunk in self._chunks(self._curvature_row_bytes()):
            for layer, (A, _, M) in enumerate(
                self._preactivation_curvatures(chunk, self.exact)
            ):
                own = np.einsum("njj->nj", M)
                A = as_dense(A)
                block = np.vstack([(A**2).T @ own, own.sum(axis=0)])
                out[self.adapter.slices[layer]] += block.ravel()
        return out + self.penalty

    def diagonal_blocks(self):
        """The per-layer diagonal blocks of H (a list: layer l's is
        ``((d_l + 1) d_{l+1})`` square); for small networks."""
        blocks = [
            np.zeros((part.stop - part.start,) * 2) for part in self.adapter.slices
        ]
        for chunk in self._chunks(self._curvature_row_bytes()):
            for layer, (A, _, M) in enumerate(
                self._preactivation_curvatures(chunk, self.exact)
            ):
                A = as_dense(A)
                design = np.column_stack([A, np.ones(A.shape[0])])
                block = np.einsum("nj,nk,nab->jakb", design, design, M, optimize=True)
                blocks[layer] += block.reshape(blocks[layer].shape)
        for block, part in zip(blocks, self.adapter.slices):
            block.flat[:: block.shape[0] + 1] += self.penalty[part]
        return blocks

    def _root_row_bytes(self) -> int:
        K = self.n_outputs
        return 8 * (3 * K * sum(self.widths[1:]) + 3 * sum(self.widths))

    def _root_passes(self):
        """Per chunk of training rows: the per-layer designs ``ã_l`` (n, d_l + 1)
        and the curvature root backpropagated to ``z_{l+1}``, ``δ_{l,c}``
        (n, K, d_{l+1}), with ``sum_c δ_{l,c} δ_{l,c}^T = w_i M_{i,l+1}`` (the
        Gauss-Newton curvature: ``R_i^T R_i = D_i``); and the chunk's weights."""
        for chunk in self._chunks(self._root_row_bytes()):
            state, w, a, b, _ = self._local(chunk)
            root = curvature_root(a, b) * np.sqrt(w)[:, None, None]
            deltas = self.adapter.backward(state, root)
            designs = [
                np.column_stack([as_dense(A), np.ones(A.shape[0])])
                for A in state.inputs
            ]
            yield designs, deltas, w

    def kronecker_factors(self) -> list[KroneckerFactor]:
        """Per layer ``A_l = sum_i w_i ã ã^T / W`` and ``G_l = sum_i w_i M_{i,l+1}``
        (Gauss-Newton curvature), with the layer's parameters and row penalty.

        ``G_l`` is summed from the K backpropagated rows of each example's
        curvature root, ``sum_{i,c} δ_{i,c} δ_{i,c}^T`` (``2 n K d^2`` flops),
        not from the ``d x d`` matrices ``M_{i,l+1}``."""
        adapter = self.adapter
        L = len(adapter.coefs)
        A_sum = [np.zeros((W.shape[0] + 1,) * 2) for W in adapter.coefs]
        G_sum = [np.zeros((W.shape[1],) * 2) for W in adapter.coefs]
        total = 0.0
        for designs, deltas, w in self._root_passes():
            for layer in range(L):
                design = designs[layer]
                A_sum[layer] += (design * w[:, None]).T @ design
                D = deltas[layer].reshape(-1, deltas[layer].shape[-1])
                G_sum[layer] += D.T @ D
            total += float(w.sum())
        return [
            KroneckerFactor(
                A_sum[layer] / total,
                G_sum[layer],
                adapter.slices[layer],
                adapter.row_penalty(layer),
            )
            for layer in range(L)
        ]

    def kronecker_eigenvalues(self, bases) -> list[np.ndarray]:
        """The Gauss-Newton matrix's diagonal in each layer's Kronecker
        eigenbasis (the penalty excluded), for ``bases = [(Q_A, Q_G), ...]``
        (orthogonal, of the sizes of :meth:`kronecker_factors`' factors):
        layer l's ``(d_l + 1, d_{l+1})`` array ::

            E[j, k] = sum_i w_i (Q_A^T ã_i)_j^2 (Q_G^T M_{i,l+1} Q_G)_kk
                    = sum_i (Q_A^T ã_i)_j^2 sum_c (Q_G^T δ_{i,c})_k^2

        the eigenvalue-corrected K-FAC scaling of George et al. (2018), by one
        pass over the training data (``2 n (d_l^2 + K d_{l+1}^2)`` flops per
        layer); no per-example gradient is formed."""
        E = [np.zeros((Q_A.shape[1], Q_G.shape[1])) for Q_A, Q_G in bases]
        for designs, deltas, _ in self._root_passes():
            for layer, (Q_A, Q_G) in enumerate(bases):
                left = np.square(designs[layer] @ Q_A)
                n, K, d = deltas[layer].shape
                right = np.square(deltas[layer].reshape(n * K, d) @ Q_G)
                E[layer] += left.T @ right.reshape(n, K, d).sum(axis=1)
        return E


def curvature_root(a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``R_i`` (n, K, K) with ``R_i^T R_i = diag(a_i) - b_i b_i^T`` (positive
    semi-definite: the log-loss and squared error are convex in f)."""
    n, K = a.shape
    if b is None:
        return np.sqrt(a)[:, :, None] * np.eye(K)
    if np.array_equal(a, b):  # softmax: rows sqrt(p_k) (e_k - p), sum_k p_k = 1
        return np.sqrt(a)[:, :, None] * (np.eye(K) - a[:, None, :])
    values, vectors = np.linalg.eigh(curvature_matrix(a, b))
    return np.sqrt(np.clip(values, 0, None))[:, :, None] * vectors.transpose(0, 2, 1)

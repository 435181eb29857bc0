"""Influence machinery shared by linear models with a twice-differentiable loss.

For ``f = W x + b`` (W of shape (n_outputs, n_features)) the gradient of an
example's loss with respect to ``theta = [W | b]`` is the outer product ::

    g_i = r_i ⊗ x̃_i,   r_i = dl/df (n_outputs,),   x̃_i = [x_i, 1]

and its Hessian is ``D_i ⊗ x̃_i x̃_i^T`` with ``D_i = d²l/df² = diag(a_i) - b_i b_i^T``.
Every quantity below is computed from these factors in chunks of rows, so no
n x P gradient matrix is ever held in memory:

- the Hessian ``H = C sum_i s_i D_i ⊗ x̃_i x̃_i^T + diag(penalty)``, block (k, l)
  being ``C X̃^T diag(s (a_k δ_kl - b_k b_l)) X̃``: per chunk, K syrk products for
  the ``diag(a)`` part and one syrk of the stacked ``[sqrt(s) b_k x̃]_k`` rows;
- Hessian-vector products for the rows of ``V`` (reshaped (K, d)):
  ``(H v)_k = C X̃^T (s (a ∘ (X̃ V^T) - b (b · X̃ V^T)))_k + penalty v``;
- test/train products ``g_t^T H^-1 g_i = sum_k r_ik (X̃ S_t^T)_ik`` with
  ``S_t = H^-1 g_t`` reshaped to (K, d).

A subclass provides the parameters (``coef``, ``intercept``, the penalty) and
the loss as a function of the outputs ``F`` (n, K): :meth:`output_gradients`,
:meth:`output_curvature`, :meth:`output_losses`.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
from joblib import effective_n_jobs
from scipy import sparse
from scipy.linalg import blas
from sklearn.utils.extmath import row_norms

from .._utils import _add, chunk_slices, outer_rows, parallel_map, parallel_sum
from ._base import ParametricAdapter

#: Bytes of the buffer of scaled rows when the Hessian has no cross terms.
_BLOCK_BYTES = 2**24


def add_intercept_column(X: Any, fit_intercept: bool) -> Any:
    """``X̃ = [X, 1]`` (dense or CSR) when the model has an intercept."""
    if not fit_intercept:
        return X
    ones = np.ones((X.shape[0], 1), dtype=X.dtype)
    if sparse.issparse(X):
        return sparse.hstack([X, ones], format="csr")
    return np.hstack([X, ones])


def _scale_rows(X: Any, factor: np.ndarray) -> Any:
    factor = factor.astype(X.dtype, copy=False)
    if sparse.issparse(X):
        return sparse.csr_matrix(X.multiply(factor[:, None]))
    return X * factor[:, None]


def _add_sparse(out: np.ndarray, product: Any, alpha: float = 1.0) -> None:
    """``out += alpha product`` for a sparse ``product`` of ``out``'s shape (a
    block of the Hessian: its dense temporary is that block's size)."""
    out += alpha * product.toarray()


def _add_gram(out: np.ndarray, X: Any, alpha: float = 1.0) -> None:
    """``out += alpha X^T X``, lower triangle only for dense X (BLAS syrk)."""
    if sparse.issparse(X):
        _add_sparse(out, X.T @ X, alpha)
    elif out.dtype == X.dtype == np.float64 and out.flags.f_contiguous:
        blas.dsyrk(alpha, X.T, beta=1.0, c=out, trans=0, lower=1, overwrite_c=1)
    else:  # float32 products accumulated in float64; np.dot on X^T X uses syrk
        out += alpha * np.dot(X.T, X)


def _hessian_chunks(X, fit_intercept, dtype, chunks, weights, diag_curv, rank_curv):
    """Lower triangle of ``sum_i w_i (diag(a_i) - b_i b_i^T) ⊗ x̃_i x̃_i^T`` over
    the rows of X in a group of chunks (slices)."""
    n_outputs = diag_curv.shape[1]
    n_design = X.shape[1] + int(fit_intercept)
    hessian = np.zeros((n_outputs * n_design,) * 2, order="F")
    for rows in chunks:
        design = add_intercept_column(X[rows].astype(dtype, copy=False), fit_intercept)
        w = weights[rows]
        for k in range(n_outputs):
            block = slice(k * n_design, (k + 1) * n_design)
            gram = np.zeros((n_design, n_design), order="F")
            _add_gram(gram, _scale_rows(design, np.sqrt(w * diag_curv[rows, k])))
            hessian[block, block] += gram
        if rank_curv is None:
            continue
        root = np.sqrt(w)[:, None] * rank_curv[rows]
        if sparse.issparse(design):
            # block (k, l), k >= l: -X̃^T diag(w b_k b_l) X̃, one sparse product
            # each (a product of the stacked rows would hold every block's
            # non-zeros at once)
            design_t = design.T.tocsr()
            for k in range(n_outputs):
                for ell in range(k + 1):
                    product = design_t @ _scale_rows(design, root[:, k] * root[:, ell])
                    rows_k = slice(k * n_design, (k + 1) * n_design)
                    cols_l = slice(ell * n_design, (ell + 1) * n_design)
                    _add_sparse(hessian[rows_k, cols_l], product, -1.0)
        else:  # filled in place: the chunk's only (n_chunk, P) array
            stacked = np.empty((design.shape[0], n_outputs * n_design), design.dtype)
            for k in range(n_outputs):
                np.multiply(
                    design,
                    root[:, k, None].astype(design.dtype),
                    out=stacked[:, k * n_design : (k + 1) * n_design],
                )
            _add_gram(hessian, stacked, alpha=-1.0)
            del stacked  # before the next chunk's is allocated
    return hessian


def _hessian_dense_chunks(X, fit_intercept, chunks, weights, diag_curv, rank_curv):
    """:func:`_hessian_chunks` for dense float64 X with the minimum ``n P^2``
    flops: block (k, l) of the lower triangle is ``X̃^T diag(c_kl) X̃`` with

        c_kk = w (a_k - b_k^2)  (a syrk of the rows sqrt(c_kk) x̃),
        c_kl = -w b_k b_l       (k > l: one GEMM per column block l, of the
                                 stacked rows sqrt(w) b_k x̃ for every k > l
                                 with those of l).

    The rows are scaled into buffers allocated once (no copy of X with its
    intercept column, no allocation per chunk). Without cross terms (one
    output, or no rank-one curvature) the rows are taken in blocks of about
    ``_BLOCK_BYTES``, so the buffer stays small: a fresh page costs more than
    the scaling written into it. (With cross terms, smaller blocks cost more
    in smaller GEMMs and in adding their products to the Hessian than the
    pages they save.) The diagonal blocks are SciPy's syrk, like the Cholesky
    factorisation and triangular solves that follow: a Hessian without cross
    terms (and no negative curvature) stays in SciPy's BLAS thread pool,
    where numpy's idle threads would spin while SciPy's work. The entries
    above the diagonal blocks are left unset (the caller symmetrises from the
    lower triangle)."""
    n_outputs = diag_curv.shape[1]
    n_features = X.shape[1]
    n_design = n_features + int(fit_intercept)
    n_params = n_outputs * n_design
    hessian = np.zeros((n_params, n_params), order="F")
    if not chunks:
        return hessian
    cross_terms = rank_curv is not None and n_outputs > 1
    if not cross_terms:
        block_rows = max(1, _BLOCK_BYTES // (8 * n_design))
        chunks = [
            slice(start, min(start + block_rows, rows.stop))
            for rows in chunks
            for start in range(rows.start, rows.stop, block_rows)
        ]
    n_rows = max(rows.stop - rows.start for rows in chunks)
    scaled = np.empty((n_rows, n_params if cross_terms else n_design))
    gram = np.zeros((n_design, n_design), order="F")
    below = np.empty(((n_outputs - 1) * n_design, n_design)) if cross_terms else None

    def scaled_design(out, x, factor):  # out = diag(factor) [x, 1]
        np.multiply(x, factor[:, None], out=out[:, :n_features])
        if fit_intercept:
            out[:, n_features] = factor
        return out

    for rows in chunks:
        x = np.asarray(X[rows], dtype=np.float64)
        count, w = x.shape[0], weights[rows]
        own = (
            diag_curv[rows]
            if rank_curv is None
            else diag_curv[rows] - rank_curv[rows] ** 2
        )
        for k in range(n_outputs):
            block = slice(k * n_design, (k + 1) * n_design)
            coefficient = w * own[:, k]
            if np.all(coefficient >= 0):
                design = scaled_design(
                    scaled[:count, :n_design], x, np.sqrt(coefficient)
                )
                blas.dsyrk(
                    1.0, design.T, beta=0.0, c=gram, trans=0, lower=1, overwrite_c=1
                )
            else:  # a negative curvature (non-canonical links): a GEMM
                design = scaled_design(scaled[:count, :n_design], x, coefficient)
                gram[...] = design.T @ add_intercept_column(x, fit_intercept)
            hessian[block, block] += gram
        if cross_terms:
            root = np.sqrt(w)[:, None] * rank_curv[rows]
            stacked = scaled[:count]
            for k in range(n_outputs):
                scaled_design(
                    stacked[:, k * n_design : (k + 1) * n_design], x, root[:, k]
                )
            for column in range(n_outputs - 1):
                lower = slice((column + 1) * n_design, None)
                block = slice(column * n_design, (column + 1) * n_design)
                product = below[: n_params - (column + 1) * n_design]
                np.matmul(stacked[:, lower].T, stacked[:, block], out=product)
                hessian[lower, block] -= product
    return hessian


def _symmetrise_lower(H: np.ndarray, block: int = 1024) -> np.ndarray:
    """Copy the lower triangle of H onto the upper one, in column blocks."""
    n = len(H)
    for start in range(0, n, block):
        stop = min(start + block, n)
        H[start:stop, stop:] = H[stop:, start:stop].T
        H[start:stop, start:stop] = (
            np.tril(H[start:stop, start:stop])
            + np.tril(H[start:stop, start:stop], -1).T
        )
    return H


def _hvp_chunk(design, weights, diag_curv, rank_curv, V):
    """``sum_i w_i (D_i ⊗ x̃_i x̃_i^T) v`` for the rows v of V, over one chunk."""
    n_rows, n_outputs = diag_curv.shape
    m = V.shape[0]
    n_design = design.shape[1]
    Vk = V.reshape(m * n_outputs, n_design)
    proj = np.asarray(design @ Vk.T).reshape(n_rows, m, n_outputs)  # x̃_i . v_k
    out = diag_curv[:, None, :] * proj
    if rank_curv is not None:
        out -= (
            rank_curv[:, None, :] * np.einsum("imk,ik->im", proj, rank_curv)[..., None]
        )
    out *= weights[:, None, None]
    return np.asarray(design.T @ out.reshape(n_rows, -1)).T.reshape(m, -1)


def _hvp_rows(X, weights, diag_curv, rank_curv, fit_intercept, V):
    """:func:`_hvp_chunk` over the training rows of ``X`` (one chunk)."""
    design = add_intercept_column(X.astype(np.float64, copy=False), fit_intercept)
    return _hvp_chunk(design, weights, diag_curv, rank_curv, V)


def _diagonal_rows(X, weighted_curvature, fit_intercept):
    """``X̃^2^T (w (a - b^2))`` (n_outputs, n_design) over the rows of ``X``."""
    design = add_intercept_column(X.astype(np.float64, copy=False), fit_intercept)
    squared = design.multiply(design) if sparse.issparse(design) else design**2
    return np.asarray(squared.T @ weighted_curvature).T


def _gradient_sum_chunk(design, weighted_residuals):
    """``sum_i r_i ⊗ x̃_i`` (weighted) over one chunk, shape (n_outputs, n_design)."""
    return np.asarray(design.T @ weighted_residuals).T


class LinearHessian:
    """The Hessian of a linear model's training objective, for the solvers.

    See :mod:`skrelatif._solvers` for the interface. Chunks follow
    ``working_memory``; chunk groups are dispatched with joblib (``n_jobs``).
    """

    def __init__(
        self, adapter: LinearModelAdapter, X, weights, curvature, n_jobs=None
    ) -> None:
        self.adapter = adapter
        self.X = X
        self.n_jobs = n_jobs
        self.n_outputs = adapter.n_outputs
        self.n_design = adapter.n_design
        self.n_params = adapter.n_params
        self.n_train = X.shape[0]
        self.dtype = X.dtype
        self.null_space = adapter.null_space()
        self._unpenalised = adapter.unpenalised_inputs()
        self.penalty = adapter.penalty()
        self.weights = weights
        self.diag_curv, self.rank_curv = curvature

    def remove_null(self, V: np.ndarray) -> np.ndarray:
        """Project the rows of V onto the orthogonal complement of the null
        space, in place: subtract, for each unpenalised input j, the mean over
        the outputs of the coefficients of j (the basis is ``1_K ⊗ e_j``)."""
        if self.null_space is not None:
            blocks = V.reshape(len(V), self.n_outputs, self.n_design)
            columns = self._unpenalised
            blocks[:, :, columns] -= blocks[:, :, columns].mean(axis=1, keepdims=True)
        return V

    def _design_chunks(self, row_bytes, X=None):
        X = self.X if X is None else X
        for chunk in chunk_slices(X.shape[0], row_bytes):
            yield self.adapter.design(X[chunk].astype(np.float64, copy=False)), chunk

    def dense(self, dtype=np.float64) -> np.ndarray:
        """The P x P Hessian (float64, symmetric) from ``dtype`` products."""
        # float64-sized rows even for float32 products: their float32 P x P
        # partial sum (added to the float64 total) needs room too.
        row_bytes = 8 * (self.n_params + 2 * self.n_design)
        chunks = chunk_slices(self.n_train, row_bytes)
        n_groups = max(1, min(len(chunks), effective_n_jobs(self.n_jobs)))
        hessian = None
        if dtype == np.float64 and not sparse.issparse(self.X):
            function, leading = _hessian_dense_chunks, ()
        else:
            function, leading = _hessian_chunks, (dtype,)
        for part in parallel_map(
            function,
            (
                (
                    self.X,
                    self.adapter.fit_intercept,
                    *leading,
                    chunks[g::n_groups],
                    self.weights,
                    self.diag_curv,
                    self.rank_curv,
                )
                for g in range(n_groups)
            ),
            n_jobs=self.n_jobs,
        ):
            hessian = part if hessian is None else _add(hessian, part)
        hessian = _symmetrise_lower(hessian)
        hessian.flat[:: self.n_params + 1] += self.penalty
        return hessian

    def matvec(self, V: np.ndarray) -> np.ndarray:
        """``V H`` (H symmetric) for a (m, P) array, in float64."""
        V = np.atleast_2d(V)
        return self._matvec(V) + V * self.penalty

    def sample_matvec(self, V: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Minibatch estimate ``(n / |rows|) V H_data(rows) + V diag(penalty)``."""
        return (self.n_train / len(rows)) * self._matvec(V, rows) + V * self.penalty

    def _matvec(self, V, rows=None):
        """``V H_data`` over the training rows (or ``rows``): one pass, its
        chunks grouped into about ``n_jobs`` tasks (see :func:`parallel_sum`)."""

        def take(a):
            return a if rows is None or a is None else a[rows]

        X = take(self.X)
        # Each chunk also makes a few dense (m, P) products, so chunks are as
        # large as the (n_chunk, m, K) temporaries allow (a sparse row is small).
        row_bytes = 8 * 3 * V.shape[0] * self.n_outputs
        if not sparse.issparse(X):
            row_bytes += 8 * self.n_design
        return parallel_sum(
            _hvp_rows,
            (X, take(self.weights), take(self.diag_curv), take(self.rank_curv)),
            (self.adapter.fit_intercept, V),
            chunk_slices(X.shape[0], row_bytes),
            n_jobs=self.n_jobs,
        )

    def diagonal(self) -> np.ndarray:
        """The Hessian's diagonal: ``C X̃^2^T (s (a - b^2)) + penalty``."""
        own = (
            self.diag_curv
            if self.rank_curv is None
            else self.diag_curv - self.rank_curv**2
        )
        data = parallel_sum(
            _diagonal_rows,
            (self.X, self.weights[:, None] * own),
            (self.adapter.fit_intercept,),
            chunk_slices(self.n_train, 8 * 2 * self.n_design),
            n_jobs=self.n_jobs,
        )
        return data.ravel() + self.penalty

    def diagonal_blocks(self) -> np.ndarray:
        """The K diagonal blocks ``H_kk`` of shape (n_design, n_design)."""
        own = (
            self.diag_curv
            if self.rank_curv is None
            else self.diag_curv - self.rank_curv**2
        )
        blocks = np.zeros((self.n_outputs, self.n_design, self.n_design))
        for design, chunk in self._design_chunks(8 * 2 * self.n_design):
            for k in range(self.n_outputs):
                weight = self.weights[chunk] * own[chunk, k]
                if np.all(weight >= 0):  # syrk on sqrt-weighted rows
                    block = np.zeros((self.n_design, self.n_design), order="F")
                    _add_gram(block, _scale_rows(design, np.sqrt(weight)))
                    blocks[k] += _symmetrise_lower(block)
                else:  # a negative curvature (non-canonical links): a GEMM
                    product = _scale_rows(design, weight).T @ design
                    blocks[k] += np.asarray(
                        product.toarray() if sparse.issparse(product) else product
                    )
        penalty = self.penalty.reshape(self.n_outputs, self.n_design)
        for k in range(self.n_outputs):
            blocks[k].flat[:: self.n_design + 1] += penalty[k]
        return blocks


class LinearModelAdapter(ParametricAdapter):
    """Base class of the adapters of linear models ``f = W x + b``.

    See the module docstring for the gradient and Hessian structure. A
    subclass provides the parameters and the loss as a function of ``F``.
    """

    # the losses are GLM losses of outputs linear in theta: the Gauss-Newton
    # matrix is the Hessian
    curvatures = dict.fromkeys(
        ("exact", "gauss-newton"),
        frozenset({"dense", "diagonal", "diagonal_blocks", "matvec", "sample_matvec"}),
    )
    curvature_note = "For a linear model 'gauss-newton' is the same matrix as 'exact'."
    singular_advice = (
        "This happens without a penalty (C=np.inf, alpha=0), with duplicated or "
        "constant features, or with examples of zero weight. Pass damping > 0 "
        "(for example damping=1e-3), leave damping='auto', or use "
        "hessian='identity'."
    )
    #: ``f = W x + b``: a Newton removal moves the outputs exactly by ``J delta``.
    outputs_linear_in_params = True

    # -- what a subclass provides ---------------------------------------------------
    @property
    @abstractmethod
    def coef(self) -> np.ndarray:
        """Weights W, shape (n_outputs, n_features)."""

    @property
    def intercept(self) -> np.ndarray:
        """Intercepts b, shape (n_outputs,) (zeros without an intercept)."""
        intercept = np.asarray(self.estimator.intercept_, dtype=float)
        return np.broadcast_to(intercept.ravel(), (self.n_outputs,))

    @property
    def fit_intercept(self) -> bool:
        return bool(self.estimator.fit_intercept)

    @property
    @abstractmethod
    def weight_penalty(self) -> float | np.ndarray:
        """``p`` of the weights (scalar, or one per output); 0 for none."""

    #: Penalty weight on the intercept (0: not penalised).
    intercept_penalty: float = 0.0
    #: True when the loss is invariant to adding a constant to all outputs (softmax).
    shift_invariant: ClassVar[bool] = False

    @abstractmethod
    def output_gradients(
        self, F: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``dl/df`` as (unit direction (n, n_outputs), norm (n,)), computed
        without cancellation, so the direction is exact even when the norm
        underflows."""

    def output_residuals(self, F: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``dl/df`` (n, n_outputs) as a plain array, for sums over examples
        where the careful direction of :meth:`output_gradients` is not needed
        (a family may compute it more cheaply)."""
        direction, norm = self.output_gradients(F, y)
        return direction * norm[:, None]

    @abstractmethod
    def output_curvature(
        self, F: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``d²l/df² = diag(a) - b b^T`` as (a, b); ``b`` is None when zero."""

    @abstractmethod
    def output_losses(self, F: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-example loss ``l(y_i, f_i)``."""

    def predict_from_decision(self, F: np.ndarray) -> np.ndarray:
        """Encoded predictions from the outputs (classifiers: class indices)."""
        if self.is_regressor:
            return F[:, 0]
        if F.shape[1] == 1:
            return (F[:, 0] > 0).astype(np.intp)
        return F.argmax(axis=1)

    # -- derived -----------------------------------------------------------------------
    @property
    def n_outputs(self) -> int:
        return self.coef.shape[0]

    @property
    def n_design(self) -> int:
        return self.coef.shape[1] + int(self.fit_intercept)

    @property
    def n_params(self) -> int:  # type: ignore[override]
        return self.n_outputs * self.n_design

    #: Parameters set by :meth:`at` (None: the estimator's own).
    _theta: np.ndarray | None = None

    @property
    def params(self) -> np.ndarray:
        """theta as (n_outputs, n_design): ``[W | b]``."""
        if self._theta is not None:
            return self._theta
        if self.fit_intercept:
            return np.column_stack([self.coef, self.intercept])
        return np.asarray(self.coef, dtype=float)

    def parameters(self) -> np.ndarray:
        return self.params.ravel()

    def at(self, theta: np.ndarray) -> LinearModelAdapter:
        """The same model with parameters ``theta`` (the estimator untouched)."""
        shifted = copy.copy(self)
        shifted._theta = np.asarray(theta, dtype=float).reshape(
            self.n_outputs, self.n_design
        )
        return shifted

    def penalty(self) -> np.ndarray:
        per_output = np.ones((self.n_outputs, self.n_design))
        per_output *= np.reshape(self.weight_penalty, (-1, 1))
        if self.fit_intercept:
            per_output[:, -1] = self.intercept_penalty
        return per_output.ravel()

    def null_space(self) -> np.ndarray | None:
        """Directions ``1_K ⊗ e_j / sqrt(K)`` for every unpenalised input j of a
        shift-invariant loss: the loss is flat along them and every gradient is
        orthogonal to them (its outputs' residuals sum to zero)."""
        unpenalised = self.unpenalised_inputs()
        if not self.shift_invariant or unpenalised.size == 0:
            return None
        K = self.n_outputs
        basis = np.zeros((K, self.n_design, unpenalised.size))
        basis[:, unpenalised, np.arange(unpenalised.size)] = 1.0 / np.sqrt(K)
        return basis.reshape(self.n_params, -1)

    def unpenalised_inputs(self) -> np.ndarray:
        """Indices j of the design columns whose weights are not penalised in
        every output."""
        penalty = self.penalty().reshape(self.n_outputs, self.n_design)
        return np.flatnonzero(np.all(penalty == 0, axis=0))

    def design(self, X: Any) -> Any:
        return add_intercept_column(X, self.fit_intercept)

    def decision(self, X: Any) -> np.ndarray:
        """``f = X W^T + b`` in float64 (computed in X's dtype)."""
        params = self.params
        n_features = params.shape[1] - int(self.fit_intercept)
        coef = params[:, :n_features].astype(X.dtype, copy=False)
        F = np.asarray(X @ coef.T, dtype=np.float64)
        return F + params[:, n_features] if self.fit_intercept else F

    def outputs(self, X: Any) -> np.ndarray:
        return self.decision(X)

    def loss_curvature(self, X, y_encoded):
        return self.output_curvature(self.decision(X), y_encoded)

    def predict_target(self, X: Any) -> np.ndarray:
        return self.predict_from_decision(self.decision(X))

    def loss_gradients(self, X, y_encoded):
        return self.output_gradients(self.decision(X), y_encoded)

    def prediction_gradients(self, X):
        # d f / d theta = 1 ⊗ x̃ for the (single) output; minus, so that removing
        # an example that pushes f up lowers f: a positive score.
        n = X.shape[0]
        return -np.ones((n, self.n_outputs)), np.ones(n)

    def losses(self, X, y_encoded):
        return self.output_losses(self.decision(X), y_encoded)

    def gradients(self, X, coefficients):
        if sparse.issparse(X):
            return outer_rows(coefficients, self.design(X))
        # r_i ⊗ [x_i, 1] written in one pass (no copy of X with its 1 column)
        n_rows, n_features = X.shape
        dtype = np.result_type(coefficients.dtype, X.dtype)
        grads = np.empty((n_rows, self.n_outputs, self.n_design), dtype=dtype)
        coefficients = coefficients.astype(dtype, copy=False)
        np.multiply(
            coefficients[:, :, None], X[:, None, :], out=grads[:, :, :n_features]
        )
        if self.fit_intercept:
            grads[:, :, n_features] = coefficients
        return grads.reshape(n_rows, -1)

    def gradient_dots(self, solved, X, direction):
        n_rows, n_outputs = direction.shape
        dense64 = X.dtype == np.float64 and not sparse.issparse(X)
        if len(solved) >= n_outputs and dense64:
            # One GEMM S G^T with the chunk's gradient rows g_i = d_i ⊗ x̃_i:
            # the same 2 m n P flops as X̃ S^T below, without its (n, m, K)
            # product array and the reduction over k, and in the (m, n) layout
            # of the scores. SciPy's GEMM, as (G S^T)^T on the Fortran views
            # of G^T and S^T (no copy): the solves for S ran in SciPy's BLAS
            # thread pool, and numpy's would compete with its idle threads.
            grads = self.gradients(X, direction.astype(X.dtype, copy=False))
            return blas.dgemm(1.0, grads.T, solved.T, trans_a=1).T
        solved = solved.reshape(-1, self.n_design)  # (m * n_outputs, n_design)
        # (X̃ S^T)[i, t, k] = x̃_i . (H^-1 g_t)_k ; contract k with ĝ_i's residual.
        products = np.asarray(self.design(X) @ solved.T).reshape(n_rows, -1, n_outputs)
        # in the products' dtype: float32 products are not upcast (a copy as
        # large as the score block times K)
        return np.einsum("itk,ik->ti", products, direction.astype(products.dtype))

    def hessian_operator(self, X, y_encoded, weights, n_jobs=None, curvature="exact"):
        curvature = self.loss_curvature(X, y_encoded)
        return LinearHessian(self, X, weights, curvature, n_jobs)

    def curvature_costs(self, X, curvature):
        K, d = self.n_outputs, self.n_design
        n = X.shape[0]
        if sparse.issparse(X):
            # per row r non-zeros (intercept included): its outer products
            row = np.diff(sparse.csr_matrix(X).indptr).astype(np.float64) + 1
            outer = float(np.sum(row**2))
            return dict(
                dense_flops=K**2 * outer + 3.0 * self.n_params**2,
                dense_sparse=True,
                matvec_flops=4.0 * K * float(np.sum(row)),
                matvec_sparse=True,
                block_sizes=(d,) * K,
                block_flops=K * outer + 3.0 * K * d**2,
            )
        return dict(
            dense_flops=float(n) * self.n_params**2,
            dense_sparse=False,
            matvec_flops=4.0 * K * n * d,
            matvec_sparse=False,
            block_sizes=(d,) * K,
            block_flops=float(n) * K * d**2,
        )

    def objective_gradient(self, X, y_encoded, weights):
        direction, norm = self.loss_gradients(X, y_encoded)
        weighted = (weights * norm)[:, None] * direction
        chunks = chunk_slices(X.shape[0], 8 * self.n_design)
        grad = sum(_gradient_sum_chunk(X[rows], weighted[rows]) for rows in chunks)
        if self.fit_intercept:  # the column of ones of X̃, without copying X
            grad = np.column_stack([grad, weighted.sum(axis=0)])
        # sum_i w_i ||g_i|| = sum_i w_i ||r_i|| ||x̃_i||
        x_norms = np.sqrt(row_norms(X, squared=True) + self.fit_intercept)
        step = self.penalty() * self.parameters()
        size = float(np.sum(weights * norm * x_norms) + np.linalg.norm(step))
        return grad.ravel() + step, size

    def loss_gradients_at(self, X, y_encoded, thetas):
        design = self.design(np.asarray(X.todense() if sparse.issparse(X) else X))
        W = np.asarray(thetas, dtype=np.float64).reshape(len(thetas), -1, self.n_design)
        return self.output_gradients(np.einsum("bd,bkd->bk", design, W), y_encoded)

    def outputs_at(self, X, thetas):
        b, K = len(thetas), self.n_outputs
        W = np.asarray(thetas, dtype=np.float64).reshape(b * K, self.n_design)
        design = self.design(X.astype(np.float64, copy=False))
        F = np.asarray(design @ W.T).reshape(X.shape[0], b, K)
        return F.transpose(1, 0, 2)

    def objective_gradients(self, X, y_encoded, weights, thetas):
        """``dF/dtheta`` at b parameter vectors at once: the outputs of every
        example under every theta by one GEMM, ``X̃ [W_1 | ... | W_b]^T``, the
        loss derivatives on the (n b, K) rows, and ``X̃^T`` times them (a second
        GEMM), chunk by chunk."""
        b, K, d = len(thetas), self.n_outputs, self.n_design
        W = np.asarray(thetas, dtype=np.float64).reshape(b * K, d)
        total = np.zeros((b * K, d))
        y_rows = np.asarray(y_encoded)
        for rows in chunk_slices(X.shape[0], 8 * 4 * b * K):
            design = self.design(X[rows].astype(np.float64, copy=False))
            F = np.asarray(design @ W.T).reshape(-1, b, K)  # (n, b, K)
            n = F.shape[0]
            coefficients = self.output_residuals(
                F.reshape(n * b, K), np.repeat(y_rows[rows], b)
            ).reshape(n, b * K)
            coefficients *= weights[rows, None]
            total += np.asarray(design.T @ coefficients).T
        return total.reshape(b, K * d) + self.penalty() * thetas

    def dot_bytes_per_pair(self) -> int:
        return 8 * (self.n_outputs + 1)

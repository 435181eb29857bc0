"""The curvature operator of a linear model's training objective.

For ``f = W x + b`` (W of shape (n_outputs, n_features), ``theta = [W | b]``)
and an example's loss ``l(y_i, f_i)`` the Hessian of that loss with respect to
theta is ``D_i ⊗ x̃_i x̃_i^T``, with ``x̃_i = [x_i, 1]`` and
``D_i = d²l/df² = diag(a_i) - b_i b_i^T`` (the factors a subclass of
:class:`~skrelatif._adapters._linear.LinearModelAdapter` gives by its
``output_curvature``). :class:`LinearHessian` computes everything the solvers
ask of the objective's Hessian from these factors, in chunks of rows, so no
n x P matrix is ever held in memory:

- the Hessian ``H = C sum_i s_i D_i ⊗ x̃_i x̃_i^T + diag(penalty)``, block (k, l)
  being ``C X̃^T diag(s (a_k δ_kl - b_k b_l)) X̃``: per chunk, K syrk products for
  the ``diag(a)`` part and one syrk of the stacked ``[sqrt(s) b_k x̃]_k`` rows
  (:func:`_hessian_chunks`, and :func:`_hessian_dense_chunks` for dense
  float64 data);
- Hessian-vector products for the rows of ``V`` (reshaped (K, d)), or for
  the columns of a (P, m) array (``matmat``, the conjugate-gradient layout):
  ``(H v)_k = C X̃^T (s (a ∘ (X̃ V^T) - b (b · X̃ V^T)))_k + penalty v``;
- its diagonal, ``C X̃^2^T (s (a - b^2)) + penalty``, and its K diagonal
  blocks ``H_kk = C X̃^T diag(s (a_k - b_k^2)) X̃ + diag(penalty_k)``;
- its factors for the data-space solver (``data_space``): X, the weighted
  output curvature ``C s_i D_i`` (n, K, K) and the penalty;
- its principal block on the coordinates of the densest inputs
  (``principal_block``), every output's weights of the unpenalised inputs
  (the intercept) and of the inputs with the most non-zero values, for the
  block preconditioner of conjugate gradients.

The Gram helpers (:func:`_add_gram`, :func:`_symmetrise_lower`) are shared
with the network curvature of :mod:`skrelatif._adapters._mlp_curvature`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from joblib import effective_n_jobs
from scipy import sparse
from scipy.linalg import blas

from .._utils import (
    _add,
    chunk_slices,
    compute_threads,
    parallel_map,
    parallel_sum,
    thread_map,
    transposed,
)

if TYPE_CHECKING:
    from ._linear import LinearModelAdapter

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


def _hmm_design(
    design, design_t, weights, diag_curv, rank_curv, V, threads, diagonal, out=None
):
    """``sum_i w_i (D_i ⊗ x̃_i x̃_i^T) V (+ diagonal V)`` for the columns of V
    (P, m), over the rows of ``design`` (X̃; ``design_t`` its transpose):
    with ``V_k`` the (d, m) rows of output k, ``U_k = X̃ V_k``, then per
    example ``U_k <- w (a_k U_k - b_k sum_l b_l U_l)``, and ``X̃^T U_k``:
    2K contiguous products (SciPy's sparse ones, on ``threads`` threads:
    they release the GIL; or BLAS's), written into ``out`` if given."""
    n_outputs = diag_curv.shape[1]
    blocks = V.reshape(n_outputs, design.shape[1], -1)
    threads = threads if sparse.issparse(design) else 1
    proj = np.empty((n_outputs, design.shape[0], blocks.shape[2]))

    def forward(k):
        proj[k] = design @ blocks[k]

    thread_map(forward, range(n_outputs), threads)
    if rank_curv is not None:
        coupled = np.einsum("kim,ik->im", proj, rank_curv)
        proj *= diag_curv.T[:, :, None]
        proj -= rank_curv.T[:, :, None] * coupled
    else:
        proj *= diag_curv.T[:, :, None]
    proj *= weights[None, :, None]
    out = np.empty_like(V) if out is None else out
    out_blocks = out.reshape(blocks.shape)

    def backward(k):
        out_blocks[k] = design_t @ proj[k]
        if diagonal is not None:
            out_blocks[k] += diagonal[k] * blocks[k]

    thread_map(backward, range(n_outputs), threads)
    return out


def _hmm_rows(X, weights, diag_curv, rank_curv, fit_intercept, V, threads):
    """:func:`_hmm_design` over the rows of ``X`` (one chunk)."""
    design = add_intercept_column(X.astype(np.float64, copy=False), fit_intercept)
    return _hmm_design(
        design, design.T, weights, diag_curv, rank_curv, V, threads, None
    )


def _hvp_rows(X, weights, diag_curv, rank_curv, fit_intercept, V):
    """:func:`_hmm_rows` for the rows of V (m, P): the same products on
    ``V^T``, transposed back (blocked copies)."""
    columns = _hmm_rows(
        X, weights, diag_curv, rank_curv, fit_intercept, transposed(V), 1
    )
    return transposed(columns)


def _diagonal_rows(X, weighted_curvature, fit_intercept):
    """``X̃^2^T (w (a - b^2))`` (n_outputs, n_design) over the rows of ``X``."""
    design = add_intercept_column(X.astype(np.float64, copy=False), fit_intercept)
    squared = design.multiply(design) if sparse.issparse(design) else design**2
    return np.asarray(squared.T @ weighted_curvature).T


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

    def matmat(self, V: np.ndarray, shift: float = 0.0, out=None) -> np.ndarray:
        """``(H + shift I) V`` for a C-contiguous (P, m) array of columns (the
        conjugate-gradient layout: no transposed copy), in float64 (see
        :func:`_hmm_design`). With one job and one chunk (sparse X), a
        chunk's K sparse products run on as many threads as BLAS may use,
        on X̃ and X̃^T kept as CSR from the first call; otherwise one pass,
        its chunks grouped into about ``n_jobs`` tasks, then the diagonal
        (the same sums in the same order: the result does not depend on
        ``n_jobs``). ``out``, if given, is a (P, m) buffer for the result (a
        conjugate-gradient loop reuses one: no fresh pages each iteration)."""
        K, d, m = self.n_outputs, self.n_design, V.shape[1]
        diagonal = (self.penalty + shift).reshape(K, d, 1)
        one_job = effective_n_jobs(self.n_jobs) == 1
        threads = compute_threads() if one_job else 1
        row_bytes = 8 * 2 * K * m
        if not sparse.issparse(self.X):
            row_bytes += 8 * d
        chunks = chunk_slices(self.n_train, row_bytes)
        if one_job and len(chunks) == 1 and sparse.issparse(self.X):
            design, design_t = self._sparse_design()
            return _hmm_design(
                design, design_t, self.weights, self.diag_curv, self.rank_curv,
                V, threads, diagonal, out,
            )  # fmt: skip
        out = parallel_sum(
            _hmm_rows,
            (self.X, self.weights, self.diag_curv, self.rank_curv),
            (self.adapter.fit_intercept, V, threads),
            chunks,
            n_jobs=self.n_jobs,
        )
        blocks, out_blocks = V.reshape(K, d, m), out.reshape(K, d, m)

        def add_diagonal(k):
            out_blocks[k] += diagonal[k] * blocks[k]

        thread_map(add_diagonal, range(K), threads)
        return out

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_design_pair", None)  # a cache, rebuilt on use
        return state

    def _sparse_design(self):
        """X̃ and X̃^T as float64 CSR, built once (two copies of X's
        non-zeros, for the repeated products of conjugate gradients)."""
        if getattr(self, "_design_pair", None) is None:
            design = add_intercept_column(
                self.X.astype(np.float64, copy=False), self.adapter.fit_intercept
            )
            design = sparse.csr_matrix(design)
            self._design_pair = design, design.T.tocsr()
        return self._design_pair

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

    def data_space(self):
        """The factors ``H = diag(penalty) + sum_i J_i^T (w_i D_i) J_i`` for
        :class:`~skrelatif._solvers._dataspace.DataSpaceInverse`."""
        from .._solvers._dataspace import DataSpace

        a, b = self.diag_curv, self.rank_curv
        curvature = a[:, :, None] * np.eye(self.n_outputs)
        if b is not None:
            curvature -= b[:, :, None] * b[:, None, :]
        curvature *= self.weights[:, None, None]
        scale = np.abs(a).max(axis=1)
        if b is not None:
            scale = np.maximum(scale, np.sum(b**2, axis=1))
        return DataSpace(
            self.X,
            self.adapter.fit_intercept,
            curvature,
            self.penalty,
            bool(self.adapter.shift_invariant),
            self.weights * scale,
        )

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

    def principal_block(self, max_params: int) -> tuple[np.ndarray, np.ndarray]:
        """The coordinates I of the densest inputs and the dense block ``H_II``.

        I holds every output's weights of the unpenalised inputs (the
        intercept) and of as many of the inputs with the most non-zero
        values (dense data: the largest sums of squares) as ``max_params``
        allows. These are the coordinates the others are most coupled to: a
        word in almost every document is nearly collinear with the intercept,
        which makes the Hessian ill-conditioned in a few directions that a
        diagonal preconditioner cannot see. Block (k, l) of ``H_II`` is
        ``C X̃_I^T diag(s (a_k δ_kl - b_k b_l)) X̃_I`` plus the penalty: K
        products and one of the stacked ``[s b_k x̃_I]_k`` rows, in chunks.

        Returns
        -------
        indices : ndarray of shape (m,)
            Sorted parameter indices (``k * n_design + j``).
        block : ndarray of shape (m, m)
            ``H[indices][:, indices]``.
        """
        K, d = self.n_outputs, self.n_design
        fixed = self._unpenalised
        room = max(0, min(max_params // K - fixed.size, d - fixed.size))
        X = self.X
        squares = np.asarray(
            X.multiply(X).sum(axis=0)
            if sparse.issparse(X)
            else np.einsum("ij,ij->j", X, X),
            dtype=np.float64,
        ).ravel()
        strength = squares
        if sparse.issparse(X):  # non-zeros first, the sum of squares breaks ties
            counts = np.bincount(sparse.csr_matrix(X).indices, minlength=X.shape[1])
            strength = counts + squares / (1.0 + squares.max(initial=0.0))
        strength = np.concatenate([strength, np.zeros(d - X.shape[1])])
        strength[fixed] = -np.inf
        dense_inputs = np.argsort(-strength, kind="stable")[:room]
        inputs = np.sort(np.concatenate([fixed, dense_inputs]))
        h = inputs.size
        block = np.zeros((K, h, K, h))
        for design, chunk in self._design_chunks(8 * 3 * K * h):
            columns = design[:, inputs]
            columns = columns.toarray() if sparse.issparse(columns) else columns
            weight = self.weights[chunk]
            for k in range(K):
                block[k, :, k] += (
                    columns * (weight * self.diag_curv[chunk, k])[:, None]
                ).T @ columns
            if self.rank_curv is not None:
                stacked = (
                    self.rank_curv[chunk, :, None] * columns[:, None, :]
                ).reshape(len(columns), K * h)
                block -= ((stacked * weight[:, None]).T @ stacked).reshape(K, h, K, h)
        indices = (np.arange(K)[:, None] * d + inputs[None, :]).ravel()
        block = block.reshape(K * h, K * h)
        block[np.diag_indices_from(block)] += self.penalty[indices]
        return indices, block

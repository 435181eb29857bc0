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

A subclass provides the loss: :meth:`residuals`, :meth:`curvature`,
:meth:`losses`, and the fitted parameters.
"""

from __future__ import annotations

import functools
import time
import warnings
from abc import abstractmethod
from typing import Any

import numpy as np
from scipy import sparse
from scipy.linalg import blas

from .._solvers import SOLVERS
from .._utils import chunk_slices, log, outer_rows, parallel_map
from ._base import ModelAdapter

#: Relative size of the training objective's gradient above which the model is
#: reported as not being at a minimum (see ``LinearModelAdapter.optimality_gap``).
OPTIMALITY_TOLERANCE = 1e-2


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


def _add_gram(out: np.ndarray, X: Any, alpha: float = 1.0) -> None:
    """``out += alpha X^T X``, lower triangle only for dense X (BLAS syrk)."""
    if sparse.issparse(X):
        out += alpha * (X.T @ X).toarray()
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
        if rank_curv is not None:
            root = np.sqrt(w)[:, None] * rank_curv[rows]
            if sparse.issparse(design):
                stacked = sparse.hstack(
                    [_scale_rows(design, root[:, k]) for k in range(n_outputs)],
                    format="csr",
                )
            else:  # filled in place: the chunk's only (n_chunk, P) array
                stacked = np.empty(
                    (design.shape[0], n_outputs * n_design), design.dtype
                )
                for k in range(n_outputs):
                    np.multiply(
                        design,
                        root[:, k, None].astype(design.dtype),
                        out=stacked[:, k * n_design : (k + 1) * n_design],
                    )
            _add_gram(hessian, stacked, alpha=-1.0)
            del stacked  # before the next chunk's is allocated
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


def _gradient_sum_chunk(design, weighted_residuals):
    """``sum_i r_i ⊗ x̃_i`` (weighted) over one chunk, shape (n_outputs, n_design)."""
    return np.asarray(design.T @ weighted_residuals).T


def _normaliser_chunk(solver, design, resid_dir, norms):
    return solver.quad_norms(resid_dir, design, norms=norms)


class LinearHessian:
    """The Hessian of a linear model's training objective, for the solvers.

    See :mod:`skrelatif._solvers` for the interface. Chunks follow
    ``working_memory``; chunk groups are dispatched with joblib (``n_jobs``).
    """

    def __init__(self, adapter: LinearModelAdapter, n_jobs=None) -> None:
        self.adapter = adapter
        self.n_jobs = n_jobs
        self.n_outputs = adapter.n_outputs
        self.n_design = adapter.n_design
        self.n_params = adapter.n_params
        self.n_train = adapter.n_train_
        self.dtype = adapter.X_.dtype
        self.null_space = adapter.null_space()
        self._unpenalised = adapter.unpenalised_inputs()
        self.penalty = adapter._loss_scale * adapter.penalty_diag()
        diag_curv, rank_curv = adapter.curvature_
        self.weights = adapter._loss_scale * adapter.sample_weight_
        self.diag_curv, self.rank_curv = diag_curv, rank_curv

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
        X = self.adapter.X_ if X is None else X
        for chunk in chunk_slices(X.shape[0], row_bytes):
            yield self.adapter.design(X[chunk].astype(np.float64, copy=False)), chunk

    def dense(self, dtype=np.float64) -> np.ndarray:
        """The P x P Hessian (float64, symmetric) from ``dtype`` products."""
        # float64-sized rows even for float32 products: their float32 P x P
        # partial sum (added to the float64 total) needs room too.
        row_bytes = 8 * (self.n_params + 2 * self.n_design)
        chunks = chunk_slices(self.n_train, row_bytes)
        n_groups = max(1, min(len(chunks), _effective_jobs(self.n_jobs)))
        hessian = None
        for part in parallel_map(
            _hessian_chunks,
            (
                (
                    self.adapter.X_,
                    self.adapter.fit_intercept,
                    dtype,
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
        def take(a):
            return a if rows is None or a is None else a[rows]

        X, weights = take(self.adapter.X_), take(self.weights)
        diag_curv, rank_curv = take(self.diag_curv), take(self.rank_curv)
        # Each chunk also makes a few dense (m, P) products, so chunks are as
        # large as the (n_chunk, m, K) temporaries allow (a sparse row is small).
        row_bytes = 8 * 3 * V.shape[0] * self.n_outputs
        if not sparse.issparse(X):
            row_bytes += 8 * self.n_design
        parts = parallel_map(
            _hvp_chunk,
            (
                (
                    design,
                    weights[chunk],
                    diag_curv[chunk],
                    None if rank_curv is None else rank_curv[chunk],
                    V,
                )
                for design, chunk in self._design_chunks(row_bytes, X)
            ),
            n_jobs=self.n_jobs,
        )
        return functools.reduce(_add, parts)

    def diagonal(self) -> np.ndarray:
        """The Hessian's diagonal: ``C X̃^2^T (s (a - b^2)) + penalty``."""
        data = np.zeros((self.n_outputs, self.n_design))
        own = (
            self.diag_curv
            if self.rank_curv is None
            else self.diag_curv - self.rank_curv**2
        )
        for design, chunk in self._design_chunks(8 * 2 * self.n_design):
            squared = design.multiply(design) if sparse.issparse(design) else design**2
            data += np.asarray(squared.T @ (self.weights[chunk, None] * own[chunk])).T
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
                block = np.zeros((self.n_design, self.n_design), order="F")
                _add_gram(
                    block,
                    _scale_rows(design, np.sqrt(self.weights[chunk] * own[chunk, k])),
                )
                blocks[k] += _symmetrise_lower(block)
        penalty = self.penalty.reshape(self.n_outputs, self.n_design)
        for k in range(self.n_outputs):
            blocks[k].flat[:: self.n_design + 1] += penalty[k]
        return blocks


def _add(total, part):
    total += part
    return total


def _effective_jobs(n_jobs) -> int:
    from joblib import effective_n_jobs

    return effective_n_jobs(n_jobs)


class LinearModelAdapter(ModelAdapter):
    """Base class of the adapters of linear models (see the module docstring)."""

    hessian_options = tuple(SOLVERS)

    # -- what a subclass provides ---------------------------------------------------
    @property
    @abstractmethod
    def coef(self) -> np.ndarray:
        """Weights W, shape (n_outputs, n_features)."""

    @property
    @abstractmethod
    def intercept(self) -> np.ndarray:
        """Intercepts b, shape (n_outputs,) (zeros without an intercept)."""

    @property
    @abstractmethod
    def fit_intercept(self) -> bool: ...

    @property
    @abstractmethod
    def inverse_penalty(self) -> float:
        """``C`` of ``F = C sum_i s_i l_i + 1/2 theta^T diag(penalty) theta``;
        ``np.inf`` for no penalty (then ``F = sum_i s_i l_i``)."""

    #: Penalty weight on the intercept (0: not penalised).
    intercept_penalty: float = 0.0
    #: True when the loss is invariant to adding a constant to all outputs (softmax).
    shift_invariant: bool = False

    @abstractmethod
    def residuals(self, F: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``dl/df`` as (unit direction (n, n_outputs), norm (n,)).

        Computed without cancellation, so the direction is exact even when the
        norm underflows."""

    @abstractmethod
    def curvature(self, F: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``d²l/df² = diag(a) - b b^T`` as (a, b); ``b`` is None when zero."""

    @abstractmethod
    def losses(self, F: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-example loss ``l(y_i, f_i)``."""

    @abstractmethod
    def predict_from_decision(self, F: np.ndarray) -> np.ndarray: ...

    # -- shared machinery -------------------------------------------------------------
    @property
    def n_outputs(self) -> int:
        return self.coef.shape[0]

    @property
    def n_design(self) -> int:
        return self.coef.shape[1] + int(self.fit_intercept)

    @property
    def n_params(self) -> int:
        return self.n_outputs * self.n_design

    @property
    def params(self) -> np.ndarray:
        """theta as (n_outputs, n_design): ``[W | b]``."""
        if self.fit_intercept:
            return np.column_stack([self.coef, self.intercept])
        return np.asarray(self.coef, dtype=float)

    @property
    def _loss_scale(self) -> float:
        """The factor C in front of the data term (1 without a penalty)."""
        C = self.inverse_penalty
        return 1.0 if np.isinf(C) else float(C)

    def penalty_diag(self) -> np.ndarray:
        """Diagonal of the penalty's Hessian divided by C, per parameter."""
        if np.isinf(self.inverse_penalty):
            return np.zeros(self.n_params)
        per_output = np.ones(self.n_design)
        if self.fit_intercept:
            per_output[-1] = self.intercept_penalty
        return np.tile(per_output, self.n_outputs) / self.inverse_penalty

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
        """Indices j of the design columns whose weights are not penalised."""
        return np.flatnonzero(self.penalty_diag()[: self.n_design] == 0)

    def design(self, X: Any) -> Any:
        return add_intercept_column(X, self.fit_intercept)

    def decision(self, X: Any) -> np.ndarray:
        """``f = X W^T + b`` in float64 (computed chunk-wise in X's dtype)."""
        coef = self.coef.astype(X.dtype, copy=False)
        return np.asarray(X @ coef.T, dtype=np.float64) + self.intercept

    def predict_encoded(self, X: Any) -> np.ndarray:
        return self.predict_from_decision(self.decision(X))

    def fit(
        self,
        X,
        y_encoded,
        sample_weight,
        *,
        method,
        hessian,
        damping,
        n_jobs,
        verbose=0,
        hessian_options=None,
        random_state=None,
    ):
        self.X_ = X
        self.n_train_ = X.shape[0]
        self.n_jobs = n_jobs
        self.sample_weight_ = (
            np.ones(self.n_train_) if sample_weight is None else sample_weight
        )
        F = self.decision(X)
        self.resid_dir_, self.resid_norm_ = self.residuals(F, y_encoded)
        self.curvature_ = self.curvature(F)
        self._check_optimality()

        start = time.perf_counter()
        self.solver_ = SOLVERS[hessian](
            damping, options=hessian_options, random_state=random_state, verbose=verbose
        ).fit(LinearHessian(self, n_jobs))
        log(
            verbose,
            1,
            f"{hessian} Hessian ready ({self.n_params} parameters, "
            f"{self.solver_.compute_dtype}) in {time.perf_counter() - start:.1f} s",
        )

        self._verbose = verbose
        self._self_influence = None
        self.train_scale_ = self._loss_scale * self.sample_weight_ * self.resid_norm_
        if method != "if" or not self.solver_.iterative:
            quad, norm = self._normalisers(need_norms=method == "theta-relatif")
            if method != "if":
                norm = np.sqrt(quad) if norm is None else norm
                # An example whose gradient direction is zero (x̃_i = 0) scores 0.
                self.train_scale_ = np.divide(
                    1.0, norm, out=np.zeros_like(norm), where=norm > 0
                )
        self.candidates_ = None
        return self

    def _normalisers(self, need_norms):
        """q_i = ĝ_i^T H^-1 ĝ_i (and ||H^-1 ĝ_i|| if ``need_norms``) for every
        training example; also sets the self-influence ``C s_i ||r_i||^2 q_i``."""
        start = time.perf_counter()
        dtype = self.solver_.compute_dtype
        chunks = chunk_slices(self.n_train_, dtype.itemsize * 2 * self.n_params)
        results = list(
            parallel_map(
                _normaliser_chunk,
                (
                    (
                        self.solver_,
                        self.design(self.X_[rows].astype(dtype, copy=False)),
                        self.resid_dir_[rows],
                        need_norms,
                    )
                    for rows in chunks
                ),
                n_jobs=self.n_jobs,
            )
        )
        quad = np.concatenate([q for q, _ in results])
        norm = np.concatenate([n for _, n in results]) if need_norms else None
        log(
            self._verbose,
            1,
            f"normalisers of {self.n_train_} examples in "
            f"{time.perf_counter() - start:.1f} s ({len(chunks)} chunks)",
        )
        self._self_influence = (
            self._loss_scale * self.sample_weight_ * self.resid_norm_**2 * quad
        )
        return quad, norm

    @property
    def self_influence_(self) -> np.ndarray:
        """``C s_i g_i^T H^-1 g_i``; computed on first use with iterative solvers."""
        if self._self_influence is None:
            self._normalisers(need_norms=False)
        return self._self_influence

    def hessian(self) -> np.ndarray:
        """The dense Hessian of the training objective (without damping)."""
        return LinearHessian(self, self.n_jobs).dense()

    def objective_gradient(self) -> np.ndarray:
        """``dF/dtheta`` at the fitted parameters, shape (n_outputs, n_design)."""
        weighted = (
            self.sample_weight_[:, None] * self.resid_dir_ * self.resid_norm_[:, None]
        )
        grad = sum(
            parallel_map(
                _gradient_sum_chunk,
                (
                    (self.design(self.X_[rows]), weighted[rows])
                    for rows in chunk_slices(self.n_train_, 8 * self.n_design)
                ),
                n_jobs=self.n_jobs,
            )
        )
        penalty = self.penalty_diag().reshape(self.n_outputs, self.n_design)
        return self._loss_scale * (grad + penalty * self.params)

    def optimality_gap(self) -> float:
        """``||dF/dtheta||`` relative to the size of its two terms (0 at a minimum).

        The denominator bounds the norm of ``C sum_i s_i g_i`` by the triangle
        inequality, ``C sum_i s_i ||r_i|| ||x̃_i||``, plus ``||C penalty * theta||``.
        """
        X = self.X_
        sq = (
            X.multiply(X).sum(axis=1)
            if sparse.issparse(X)
            else np.einsum("ij,ij->i", X, X)
        )
        row_norms = np.sqrt(
            np.asarray(sq, dtype=np.float64).ravel() + self.fit_intercept
        )
        data_size = np.sum(self.sample_weight_ * self.resid_norm_ * row_norms)
        penalty = self.penalty_diag().reshape(self.n_outputs, self.n_design)
        size = self._loss_scale * (data_size + np.linalg.norm(penalty * self.params))
        return float(np.linalg.norm(self.objective_gradient()) / max(size, 1e-300))

    def _check_optimality(self) -> None:
        gap = self.optimality_gap()
        self.optimality_gap_ = gap
        if gap > OPTIMALITY_TOLERANCE:
            warnings.warn(
                f"{type(self.estimator).__name__} is not at a minimum of its training "
                f"objective on the X, y (and sample_weight) given to fit: the "
                f"objective's gradient is {gap:.1%} of its size. Influence scores "
                "assume a model trained to convergence on exactly these data; check "
                "that they are the training data, or refit with a smaller tol or a "
                "larger max_iter.",
                UserWarning,
                stacklevel=6,
            )

    # -- test side ---------------------------------------------------------------------
    def prepare_test(self, X, y_encoded):
        direction, norm = self.residuals(self.decision(X), y_encoded)
        test_grads = outer_rows(
            direction * norm[:, None], self.design(X).astype(np.float64)
        )
        s_test = self.solver_.solve(test_grads)  # rows: H^-1 g_t
        s_test = s_test.astype(self.solver_.compute_dtype, copy=False)
        return s_test.reshape(-1, self.n_design)  # (n_test * n_outputs, n_design)

    def train_chunk(self, rows):
        X = self.X_[rows].astype(self.solver_.compute_dtype, copy=False)
        return self.design(X), self.resid_dir_[rows]

    @staticmethod
    def cross(s_test, design, resid_dir):
        n_rows, n_outputs = resid_dir.shape
        # (X̃ S^T)[i, t, k] = x̃_i . (H^-1 g_t)_k ; contract k with ĝ_i's residual.
        products = np.asarray(design @ s_test.T).reshape(n_rows, -1, n_outputs)
        # in the products' dtype: float32 products are not upcast (a copy as
        # large as the score block times K)
        return np.einsum("itk,ik->ti", products, resid_dir.astype(products.dtype))

    def test_row_bytes(self) -> int:
        return 8 * self.solver_.workspace * self.n_params

    def cross_bytes_per_pair(self) -> int:
        return 8 * (self.n_outputs + 1)

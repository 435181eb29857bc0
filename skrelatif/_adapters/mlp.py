"""Adapter for :class:`~sklearn.neural_network.MLPClassifier` and
:class:`~sklearn.neural_network.MLPRegressor` (hand-written numpy passes).

Objective (scikit-learn's own, ``_backprop`` of
``sklearn/neural_network/_multilayer_perceptron.py``; ``s_i`` the sample
weight, 1 without, ``S = sum_i s_i``)::

    F(theta) = 1/S sum_i s_i l_i + alpha / (2 S) sum_l ||W_l||^2

so ``c = 1/S`` (``1/n`` without sample weights) and the penalty's Hessian is
``p = alpha / S`` on every weight and 0 on the (unpenalised) biases. The loss
is a function of the *outputs* ``f``, the pre-activation of the output layer:
the log-loss of ``expit(f)`` (binary: one logistic output, ``y`` in {0, 1} for
``classes_[1]``) or of ``softmax(f)`` (multiclass) for the classifier, computed
from ``f`` without cancellation (scikit-learn clips the probabilities at
machine epsilon; the smooth objective does not), and the half squared error
``1/2 (y - f)^2`` for the regressor. Multilabel classifiers and regressors with
several outputs are refused ("explain one output at a time"), as is
``loss="poisson"``.

Network and parameter layout. ``a_0 = x``, ``z_{l+1} = a_l W_l + b_l``,
``a_{l+1} = phi(z_{l+1})`` for the hidden layers, ``f = z_L``. Layer ``l``'s
parameters are ``Theta_l = [W_l; b_l]`` of shape ``(d_l + 1, d_{l+1})``,
ravelled row-major (``coefs_[l].ravel()`` then ``intercepts_[l]``); theta is
the concatenation over layers. With ``ã = [a; 1]`` and ``δ_{i,l} = dl_i/dz_{l+1}``
(backpropagated from ``dl/df``), example i's gradient in layer l is the outer
product ``ã_{i,l} ⊗ δ_{i,l}``: :meth:`MLPAdapter.gradient_dots` contracts the
solved test vectors with ``ã`` and ``δ`` layer by layer and never forms the
training gradients.

Curvature (:class:`MLPHessian`). ``D_i = d²l/df²`` (``diag(p) - p p^T`` for the
softmax, ``expit(f) expit(-f)`` binary, 1 for the regressor) and ``J_i = df_i /
dtheta``:

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

Networks are not convex: the exact Hessian at a fitted network can be
indefinite (then ``hessian="exact"`` asks for ``damping``), and leave-one-out
retraining (:func:`skrelatif.validation.leave_one_out`) refits from the
trained weights, a local answer.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import numpy as np
from scipy import sparse
from scipy.special import expit
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.utils.extmath import safe_sparse_dot

from .._utils import chunk_slices
from ._base import ParametricAdapter
from ._linear import _add_gram, _symmetrise_lower
from .logistic import log_loss_curvature, log_loss_gradients, log_losses


def _activate(name: str, Z: np.ndarray) -> np.ndarray:
    if name == "identity":
        return Z
    if name == "logistic":
        return expit(Z)
    if name == "tanh":
        return np.tanh(Z)
    if name == "relu":
        return np.maximum(Z, 0.0)
    raise ValueError(f"Unknown activation {name!r}.")


def _derivatives(name: str, Z: np.ndarray, A: np.ndarray):
    """``phi'(z)`` and ``phi''(z)`` (None when 0) of the activation ``A = phi(Z)``."""
    if name == "identity":
        return np.ones_like(Z), None
    if name == "logistic":
        first = A * (1.0 - A)
        return first, first * (1.0 - 2.0 * A)
    if name == "tanh":
        first = 1.0 - A**2
        return first, -2.0 * A * first
    # relu: scikit-learn's derivative is 0 where the unit is off (z <= 0)
    return (Z > 0).astype(np.float64), None


def _design_dot(A: Any, S: np.ndarray) -> np.ndarray:
    """``[A, 1] @ S`` for dense or sparse A (S has one more row than A columns)."""
    return np.asarray(safe_sparse_dot(A, S[:-1])) + S[-1]


def _dense(A: Any) -> np.ndarray:
    return A.toarray() if sparse.issparse(A) else np.asarray(A)


def _outer_layer(A: Any, delta: np.ndarray) -> np.ndarray:
    """Rows ``[a, 1] ⊗ δ`` (n, ..., (d_in + 1) d_out) for δ of shape (n, ..., d_out)."""
    A = _dense(A)
    design = np.concatenate([A, np.ones((A.shape[0], 1))], axis=1)
    extra = delta.shape[1:-1]
    shaped = design.reshape((A.shape[0],) + (1,) * len(extra) + (design.shape[1], 1))
    return (shaped * delta[..., None, :]).reshape(delta.shape[:-1] + (-1,))


def _sum_outer(A: Any, delta: np.ndarray) -> np.ndarray:
    """``sum_i [a_i, 1] ⊗ δ_i`` for δ (n, m, d_out): (m, (d_in + 1) d_out)."""
    n, m, d_out = delta.shape
    weights = np.asarray(safe_sparse_dot(A.T, delta.reshape(n, m * d_out)))
    weights = weights.reshape(-1, m, d_out).transpose(1, 0, 2)
    return np.concatenate([weights, delta.sum(axis=0)[:, None, :]], axis=1).reshape(
        m, -1
    )


def _curvature_matrix(a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    D = a[:, :, None] * np.eye(a.shape[1])
    if b is not None:
        D -= b[:, :, None] * b[:, None, :]
    return D


class _Pass(NamedTuple):
    """A forward pass: the layers' inputs ``a_l`` (``a_0 = X``), the hidden
    units' ``phi'`` and ``phi''`` (None when 0), and the outputs f."""

    inputs: list
    first: list
    second: list
    outputs: np.ndarray


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


class MLPAdapter(ParametricAdapter):
    estimator_types = (MLPClassifier, MLPRegressor)
    curvatures = {
        "gauss-newton": frozenset(
            {"dense", "diagonal", "matvec", "sample_matvec", "kronecker_factors"}
        ),
        "exact": frozenset({"dense", "diagonal", "matvec", "sample_matvec"}),
    }
    curvature_note = (
        "Networks: 'gauss-newton' (the generalised Gauss-Newton matrix, the "
        "Fisher; positive semi-definite) or 'exact' (the true Hessian, "
        "indefinite away from a strict minimum; small networks)."
    )
    singular_advice = (
        "A network's exact Hessian is usually indefinite: use "
        "hessian='gauss-newton' (positive semi-definite) or a larger damping. "
        "Dead ReLU units or alpha=0 make the Gauss-Newton matrix singular: "
        "pass damping > 0, or leave damping='auto'."
    )
    convergence_advice = (
        "refit it with solver='lbfgs', a smaller tol and a larger max_iter"
    )
    objective = "1/S sum_i s_i l_i + alpha/(2 S) sum_l ||W_l||^2 (S = sum_i s_i)"
    loss = "log-loss (logistic / softmax output); regressor: 1/2 (y - f)^2"
    notes = (
        "any activation and depth; gauss-newton (default), kfac, exact (small "
        "networks), cg, lissa; single-output regressors, no multilabel"
    )

    #: Not convex: leave-one-out validation refits from the trained weights
    #: instead of Newton iterations (see :func:`skrelatif.validation.leave_one_out`).
    convex = False

    def __init__(self, estimator):
        super().__init__(estimator)
        est = self.estimator
        self.coefs = [np.asarray(W, dtype=np.float64) for W in est.coefs_]
        self.intercepts = [np.asarray(b, dtype=np.float64) for b in est.intercepts_]
        self.activation = est.activation
        self.n_outputs = self.coefs[-1].shape[1]
        sizes = [(W.shape[0] + 1) * W.shape[1] for W in self.coefs]
        ends = np.cumsum(sizes)
        self.slices = [slice(int(e - s), int(e)) for s, e in zip(sizes, ends)]
        self.n_params = int(ends[-1])

    def check_estimator(self) -> None:
        est = self.estimator
        name = type(est).__name__
        if self.is_regressor:
            if getattr(est, "loss", "squared_error") != "squared_error":
                raise ValueError(
                    f"{name} with loss={est.loss!r} is not supported; only "
                    "loss='squared_error' is."
                )
            if est.n_outputs_ != 1:
                raise ValueError(
                    f"{name} was fitted on a 2-d target ({est.n_outputs_} "
                    "outputs); explain one output at a time: fit one model per "
                    "target column."
                )
        elif est.out_activation_ not in ("logistic", "softmax") or (
            est._label_binarizer.y_type_ == "multilabel-indicator"
        ):
            raise ValueError(
                f"A multilabel {name} is not supported (its outputs are "
                "independent logistic losses); explain one label at a time: fit "
                "one binary classifier per label column."
            )

    # -- retraining --------------------------------------------------------------------
    def retraining_updates(self, params, small):
        # L-BFGS from the trained weights reaches a tight tolerance
        # deterministically (a stochastic solver would not)
        return {"solver": "lbfgs"}

    @staticmethod
    def warm_started(estimator, init):
        # a warm start needs every fitted attribute (layers, output activation,
        # label binarizer): start from a copy of the fitted network
        return copy.deepcopy(init).set_params(**estimator.get_params(deep=False))

    # -- the objective -----------------------------------------------------------------
    # 1/S sum_i s_i l_i + alpha/(2S) ||W||^2: both terms scale with 1/S, so a
    # refit on fewer rows needs no penalty renormalisation (mean_over None)
    def _total_weight(self) -> float:
        return self._bound("weight_total_")

    @property
    def loss_scale(self):
        return 1.0 / self._total_weight()

    def parameters(self) -> np.ndarray:
        return np.concatenate(
            [
                np.concatenate([W.ravel(), b])
                for W, b in zip(self.coefs, self.intercepts)
            ]
        )

    def penalty(self) -> np.ndarray:
        rate = float(self.estimator.alpha) / self._total_weight()
        return np.concatenate(
            [
                np.concatenate([np.full(W.size, rate), np.zeros(W.shape[1])])
                for W in self.coefs
            ]
        )

    def row_penalty(self, layer: int) -> np.ndarray:
        """Penalty of layer ``layer``'s rows of ``Theta_l`` (last: the bias)."""
        rate = float(self.estimator.alpha) / self._total_weight()
        rows = np.full(self.coefs[layer].shape[0] + 1, rate)
        rows[-1] = 0.0
        return rows

    def null_space(self):
        """Softmax outputs: the common shift of the output biases."""
        if self.is_regressor or self.n_outputs == 1:
            return None
        basis = np.zeros((self.n_params, 1))
        basis[self.n_params - self.n_outputs :, 0] = 1.0 / np.sqrt(self.n_outputs)
        return basis

    def at(self, theta: np.ndarray) -> MLPAdapter:
        theta = np.asarray(theta, dtype=np.float64)
        moved = copy.copy(self)
        moved.coefs, moved.intercepts = [], []
        for W, part in zip(self.coefs, self.slices):
            block = theta[part].reshape(W.shape[0] + 1, W.shape[1])
            moved.coefs.append(block[:-1].copy())
            moved.intercepts.append(block[-1].copy())
        return moved

    # -- passes ------------------------------------------------------------------------
    def forward(self, X: Any, *, derivatives: bool = True) -> _Pass:
        """Forward pass (float64); ``derivatives``: keep ``phi'``, ``phi''``."""
        inputs, first, second = [X], [], []
        A = X
        last = len(self.coefs) - 1
        for layer, (W, b) in enumerate(zip(self.coefs, self.intercepts)):
            Z = np.asarray(safe_sparse_dot(A, W), dtype=np.float64) + b
            if layer == last:
                return _Pass(inputs, first, second, Z)
            A = _activate(self.activation, Z)
            inputs.append(A)
            if derivatives:
                d1, d2 = _derivatives(self.activation, Z, A)
                first.append(d1)
                second.append(d2)
        raise AssertionError("unreachable")

    def backward(self, state: _Pass, C: np.ndarray) -> list[np.ndarray]:
        """``δ_l`` for every layer l (shape (n, ..., d_{l+1})) backpropagated
        from the output coefficients C (n, ..., K)."""
        deltas = [None] * len(self.coefs)
        delta = C
        for layer in range(len(self.coefs) - 1, -1, -1):
            deltas[layer] = delta
            if layer:
                d1 = state.first[layer - 1]
                d1 = d1.reshape(d1.shape[:1] + (1,) * (delta.ndim - 2) + d1.shape[1:])
                delta = (delta @ self.coefs[layer].T) * d1
        return deltas

    def outputs(self, X):
        return self.forward(X, derivatives=False).outputs

    # -- the loss ----------------------------------------------------------------------
    def output_gradients(self, F, y):
        if not self.is_regressor:
            return log_loss_gradients(F, y)
        residual = F[:, 0] - np.asarray(y, dtype=np.float64)
        return np.where(residual < 0, -1.0, 1.0)[:, None], np.abs(residual)

    def output_curvature(self, F, y):
        if not self.is_regressor:
            return log_loss_curvature(F)
        return np.ones_like(F), None

    def output_losses(self, F, y):
        if not self.is_regressor:
            return log_losses(F, y)
        return 0.5 * (np.asarray(y, dtype=np.float64) - F[:, 0]) ** 2

    def loss_gradients(self, X, y_encoded):
        return self.output_gradients(self.outputs(X), y_encoded)

    def losses(self, X, y_encoded):
        return self.output_losses(self.outputs(X), y_encoded)

    def loss_curvature(self, X, y_encoded):
        return self.output_curvature(self.outputs(X), y_encoded)

    def prediction_gradients(self, X):
        n = X.shape[0]
        return -np.ones((n, self.n_outputs)), np.ones(n)

    def predict_target(self, X):
        F = self.outputs(X)
        if self.is_regressor:
            return F[:, 0]
        if F.shape[1] == 1:
            return (F[:, 0] > 0).astype(np.intp)
        return F.argmax(axis=1)

    # -- gradients ---------------------------------------------------------------------
    def _rows(self, state: _Pass, deltas: list) -> np.ndarray:
        shape = deltas[-1].shape[:-1]
        rows = np.empty(shape + (self.n_params,))
        for layer, part in enumerate(self.slices):
            rows[..., part] = _outer_layer(state.inputs[layer], deltas[layer])
        return rows

    def gradients(self, X, coefficients):
        state = self.forward(X)
        deltas = self.backward(state, np.asarray(coefficients, dtype=np.float64))
        rows = self._rows(state, deltas).view(FactoredRows)
        rows.layer_factors = [
            (
                np.column_stack([_dense(state.inputs[layer]), np.ones(X.shape[0])]),
                deltas[layer],
            )
            for layer in range(len(self.coefs))
        ]
        return rows

    def output_jacobian(self, X):
        state = self.forward(X)
        n, K = X.shape[0], self.n_outputs
        units = np.broadcast_to(np.eye(K), (n, K, K))
        return self._rows(state, self.backward(state, units))

    def gradient_dots(self, solved, X, direction):
        state = self.forward(X)
        deltas = self.backward(state, np.asarray(direction, dtype=np.float64))
        m, n = solved.shape[0], X.shape[0]
        out = np.zeros((m, n))
        for layer, part in enumerate(self.slices):
            d_out = self.coefs[layer].shape[1]
            S = np.asarray(solved[:, part], dtype=np.float64).reshape(m, -1, d_out)
            d_in = S.shape[1]
            A, delta = state.inputs[layer], deltas[layer]
            if d_out <= d_in:  # (ã_i S_t) . δ_i: an (n, m, d_out) temporary
                S = S.transpose(1, 0, 2).reshape(d_in, m * d_out)
                products = _design_dot(A, S).reshape(n, m, d_out)
                out += np.einsum("nmk,nk->mn", products, delta)
            else:  # ã_i . (S_t δ_i): an (n, m, d_in) temporary
                S = S.transpose(2, 0, 1).reshape(d_out, m * d_in)
                products = (delta @ S).reshape(n, m, d_in)
                out += np.einsum("nmj,nj->mn", products[:, :, :-1], _dense(A))
                out += products[:, :, -1].T
        return out

    def dot_bytes_per_pair(self) -> int:
        widths = [min(W.shape[0] + 1, W.shape[1]) for W in self.coefs]
        return 8 * (2 * max(widths) + 1)

    def objective_gradient(self, X, y_encoded, weights):
        total = np.zeros(self.n_params)
        size = 0.0
        widths = sum(W.shape[0] + W.shape[1] for W in self.coefs)
        for rows in chunk_slices(X.shape[0], 8 * 4 * widths):
            state = self.forward(X[rows])
            direction, norm = self.output_gradients(state.outputs, y_encoded[rows])
            coefficient = (weights[rows] * norm)[:, None] * direction
            deltas = self.backward(state, coefficient)
            squared = np.zeros(X[rows].shape[0])
            for layer, part in enumerate(self.slices):
                total[part] += _sum_outer(
                    state.inputs[layer], deltas[layer][:, None, :]
                )[0]
                A = state.inputs[layer]
                a_sq = (
                    np.asarray(A.multiply(A).sum(axis=1)).ravel()
                    if sparse.issparse(A)
                    else np.einsum("ij,ij->i", A, A)
                )
                squared += (a_sq + 1.0) * np.einsum(
                    "ij,ij->i", deltas[layer], deltas[layer]
                )
            size += float(np.sum(np.sqrt(squared)))  # sum_i w_i ||g_i||
        step = self.penalty() * self.parameters()
        return total + step, size + float(np.linalg.norm(step))

    # -- curvature ---------------------------------------------------------------------
    def curvature_costs(self, X, curvature):
        n, P, K = X.shape[0], self.n_params, self.n_outputs
        # Gauss-Newton: a syrk of n K Jacobian rows; exact: P Hessian-vector
        # products. A product: a forward, backward and R-pass (about 6 n P).
        dense = n * K * P**2 if curvature == "gauss-newton" else 6.0 * n * P**2
        return dict(
            dense_flops=float(dense),
            dense_sparse=False,
            matvec_flops=6.0 * n * P,
            matvec_sparse=False,
        )

    def hessian_operator(self, X, y_encoded, weights, n_jobs=None, curvature="exact"):
        return MLPHessian(self, X, y_encoded, weights, curvature, n_jobs)

    def test_row_bytes(self) -> int:
        return 8 * 3 * self.n_params


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
            Z = _design_dot(state.inputs[layer], S).reshape(-1, m, d_out)
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
            grad = _sum_outer(state.inputs[layer], Rdelta)
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
                root = _curvature_root(a, b) * np.sqrt(w)[:, None, None]
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
        M = w[:, None, None] * _curvature_matrix(a, b)
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
        out = np.zeros(self.n_params)
        for chunk in self._chunks(self._curvature_row_bytes()):
            for layer, (A, _, M) in enumerate(
                self._preactivation_curvatures(chunk, self.exact)
            ):
                own = np.einsum("njj->nj", M)
                A = _dense(A)
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
                A = _dense(A)
                design = np.column_stack([A, np.ones(A.shape[0])])
                block = np.einsum("nj,nk,nab->jakb", design, design, M, optimize=True)
                blocks[layer] += block.reshape(blocks[layer].shape)
        for block, part in zip(blocks, self.adapter.slices):
            block.flat[:: block.shape[0] + 1] += self.penalty[part]
        return blocks

    def kronecker_factors(self) -> list[KroneckerFactor]:
        """Per layer ``A_l = sum_i w_i ã ã^T / W`` and ``G_l = sum_i w_i M_{i,l+1}``
        (Gauss-Newton curvature), with the layer's parameters and row penalty."""
        adapter = self.adapter
        L = len(adapter.coefs)
        A_sum = [np.zeros((W.shape[0] + 1,) * 2) for W in adapter.coefs]
        G_sum = [np.zeros((W.shape[1],) * 2) for W in adapter.coefs]
        total = 0.0
        for chunk in self._chunks(self._curvature_row_bytes()):
            for layer, (A, w, M) in enumerate(
                self._preactivation_curvatures(chunk, exact=False)
            ):
                A = _dense(A)
                design = np.column_stack([A, np.ones(A.shape[0])])
                A_sum[layer] += (design * w[:, None]).T @ design
                G_sum[layer] += M.sum(axis=0)
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


def _curvature_root(a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``R_i`` (n, K, K) with ``R_i^T R_i = diag(a_i) - b_i b_i^T`` (positive
    semi-definite: the log-loss and squared error are convex in f)."""
    n, K = a.shape
    if b is None:
        return np.sqrt(a)[:, :, None] * np.eye(K)
    if np.array_equal(a, b):  # softmax: rows sqrt(p_k) (e_k - p), sum_k p_k = 1
        return np.sqrt(a)[:, :, None] * (np.eye(K) - a[:, None, :])
    values, vectors = np.linalg.eigh(_curvature_matrix(a, b))
    return np.sqrt(np.clip(values, 0, None))[:, :, None] * vectors.transpose(0, 2, 1)

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

Curvature: :class:`~skrelatif._adapters._mlp_curvature.MLPHessian` (the
exact Hessian, the Gauss-Newton matrix, their diagonal, per-layer blocks and
K-FAC factors).

Networks are not convex: the exact Hessian at a fitted network can be
indefinite (then ``hessian="exact"`` asks for ``damping``), and leave-one-out
retraining (:func:`skrelatif.validation.leave_one_out`) refits from the
trained weights, a local answer.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.utils.extmath import safe_sparse_dot

from .._utils import chunk_slices
from ._base import ParametricAdapter
from ._mlp_curvature import FactoredRows, LayerFactors, MLPHessian
from ._mlp_layers import (
    ForwardPass,
    activate,
    activation_derivatives,
    as_dense,
    design_dot,
    outer_layer,
    sum_outer,
)
from .logistic import log_loss_curvature, log_loss_gradients, log_losses


class MLPAdapter(ParametricAdapter):
    estimator_types = (MLPClassifier, MLPRegressor)
    curvatures = {
        "gauss-newton": frozenset(
            {
                "dense",
                "diagonal",
                "matvec",
                "sample_matvec",
                "kronecker_factors",
                "kronecker_eigenvalues",
            }
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
        "any activation and depth; gauss-newton (default), kfac, ekfac, exact "
        "(small networks), cg, lissa; single-output regressors, no multilabel"
    )

    #: Not convex: leave-one-out validation refits from the trained weights
    #: instead of Newton iterations (see :func:`skrelatif.validation.leave_one_out`).
    convex = False
    #: The outputs are not linear in theta: Newton removals evaluate the loss
    #: at the updated parameters by forward passes (:mod:`skrelatif._removal`).
    outputs_linear_in_params = False

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
    def forward(self, X: Any, *, derivatives: bool = True) -> ForwardPass:
        """Forward pass (float64); ``derivatives``: keep ``phi'``, ``phi''``."""
        inputs, first, second = [X], [], []
        A = X
        last = len(self.coefs) - 1
        for layer, (W, b) in enumerate(zip(self.coefs, self.intercepts)):
            Z = np.asarray(safe_sparse_dot(A, W), dtype=np.float64) + b
            if layer == last:
                return ForwardPass(inputs, first, second, Z)
            A = activate(self.activation, Z)
            inputs.append(A)
            if derivatives:
                d1, d2 = activation_derivatives(self.activation, Z, A)
                first.append(d1)
                second.append(d2)
        raise AssertionError("unreachable")

    def backward(self, state: ForwardPass, C: np.ndarray) -> list[np.ndarray]:
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

    def _forward_at(self, X: Any, thetas: np.ndarray, paired: bool) -> np.ndarray:
        """Outputs under b parameter vectors at once, (b, n, K): every row of X
        under every theta (``paired=False``: the first layer is one product
        ``X [W_1 | ... | W_b]``), or row j under theta j (``paired=True``,
        n = 1); the other layers are batched matrix products."""
        thetas = np.asarray(thetas, dtype=np.float64)
        b, last = thetas.shape[0], len(self.coefs) - 1
        A = None
        for layer, (W, part) in enumerate(zip(self.coefs, self.slices)):
            d_in, d_out = W.shape
            block = thetas[:, part].reshape(b, d_in + 1, d_out)
            if layer:
                Z = A @ block[:, :-1]
            elif paired:
                Z = (as_dense(X)[:, None, :] @ block[:, :-1]).astype(np.float64)
            else:
                weights = block[:, :-1].transpose(1, 0, 2).reshape(d_in, b * d_out)
                Z = np.asarray(safe_sparse_dot(X, weights), dtype=np.float64)
                Z = Z.reshape(X.shape[0], b, d_out).transpose(1, 0, 2)
            Z = Z + block[:, -1:, :]
            if layer == last:
                return Z
            A = activate(self.activation, Z)
        raise AssertionError("unreachable")

    def outputs_at(self, X, thetas):
        return self._forward_at(X, thetas, paired=False)

    def row_outputs_at(self, X, thetas):
        return self._forward_at(X, thetas, paired=True)[:, 0, :]

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
    def _rows(self, state: ForwardPass, deltas: list) -> np.ndarray:
        shape = deltas[-1].shape[:-1]
        rows = np.empty(shape + (self.n_params,))
        for layer, part in enumerate(self.slices):
            rows[..., part] = outer_layer(state.inputs[layer], deltas[layer])
        return rows

    def gradients(self, X, coefficients):
        state = self.forward(X)
        deltas = self.backward(state, np.asarray(coefficients, dtype=np.float64))
        rows = self._rows(state, deltas).view(FactoredRows)
        rows.layer_factors = self._layer_factors(state, deltas)
        return rows

    def _layer_factors(self, state: ForwardPass, deltas: list) -> list:
        n = state.outputs.shape[0]
        return [
            (np.column_stack([as_dense(A), np.ones(n)]), delta)
            for A, delta in zip(state.inputs, deltas)
        ]

    def layer_factors(self, X, coefficients) -> LayerFactors:
        """The gradients of :meth:`gradients` by their per-layer factors only
        (``ã_l``, ``δ_l``), for the Kronecker-factored solvers."""
        state = self.forward(X)
        deltas = self.backward(state, np.asarray(coefficients, dtype=np.float64))
        return LayerFactors(self._layer_factors(state, deltas))

    def factored_dots(self, test_factors, X, direction):
        """``g_t^T H^-1 ĝ_i`` when the solved test vectors are given per layer
        as sums of outer products, ``H^-1 g_t = sum_r L_{t,r} ⊗ R_{t,r}``
        (``test_factors = [(L (m, r, d_l + 1), R (m, r, d_{l+1})), ...]``):
        with ``ĝ_i = ã_i ⊗ δ_i`` per layer, ``sum_l sum_r (ã_i . L_{t,r})
        (δ_i . R_{t,r})``, ``2 n m r (d_l + d_{l+1})`` flops per layer instead
        of ``2 n m (d_l + 1) d_{l+1}``."""
        state = self.forward(X)
        deltas = self.backward(state, np.asarray(direction, dtype=np.float64))
        n = X.shape[0]
        out = None
        for (L, R), A, delta in zip(test_factors, state.inputs, deltas):
            m, r, d_in = L.shape
            left = design_dot(A, L.reshape(m * r, d_in).T)  # (n, m r)
            left *= delta @ R.reshape(m * r, -1).T
            layer = left.reshape(n, m, r).sum(axis=2).T
            out = layer if out is None else out + layer
        return out

    def n_design_width(self) -> int:
        """``sum_l (d_l + 1 + d_{l+1})``: the numbers a gradient's layer
        factors hold."""
        return sum(W.shape[0] + 1 + W.shape[1] for W in self.coefs)

    def factored_bytes_per_pair(self, rank: int) -> int:
        return 8 * (2 * rank + 2)

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
                products = design_dot(A, S).reshape(n, m, d_out)
                out += np.einsum("nmk,nk->mn", products, delta)
            else:  # ã_i . (S_t δ_i): an (n, m, d_in) temporary
                S = S.transpose(2, 0, 1).reshape(d_out, m * d_in)
                products = (delta @ S).reshape(n, m, d_in)
                out += np.einsum("nmj,nj->mn", products[:, :, :-1], as_dense(A))
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
                total[part] += sum_outer(
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

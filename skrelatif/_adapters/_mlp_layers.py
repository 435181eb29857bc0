"""The layer algebra of a multi-layer perceptron shared by its adapter
(:mod:`skrelatif._adapters.mlp`) and its curvature operators
(:mod:`skrelatif._adapters._mlp_curvature`): activations and their
derivatives, the design ``[a, 1]`` of a layer and the outer products
``[a, 1] ⊗ δ`` that make up the per-example gradients."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import sparse
from scipy.special import expit
from sklearn.utils.extmath import safe_sparse_dot


def activate(name: str, Z: np.ndarray) -> np.ndarray:
    if name == "identity":
        return Z
    if name == "logistic":
        return expit(Z)
    if name == "tanh":
        return np.tanh(Z)
    if name == "relu":
        return np.maximum(Z, 0.0)
    raise ValueError(f"Unknown activation {name!r}.")


def activation_derivatives(name: str, Z: np.ndarray, A: np.ndarray):
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


def design_dot(A: Any, S: np.ndarray) -> np.ndarray:
    """``[A, 1] @ S`` for dense or sparse A (S has one more row than A columns)."""
    return np.asarray(safe_sparse_dot(A, S[:-1])) + S[-1]


def as_dense(A: Any) -> np.ndarray:
    return A.toarray() if sparse.issparse(A) else np.asarray(A)


def outer_layer(A: Any, delta: np.ndarray) -> np.ndarray:
    """Rows ``[a, 1] ⊗ δ`` (n, ..., (d_in + 1) d_out) for δ of shape (n, ..., d_out)."""
    A = as_dense(A)
    design = np.concatenate([A, np.ones((A.shape[0], 1))], axis=1)
    extra = delta.shape[1:-1]
    shaped = design.reshape((A.shape[0],) + (1,) * len(extra) + (design.shape[1], 1))
    return (shaped * delta[..., None, :]).reshape(delta.shape[:-1] + (-1,))


def sum_outer(A: Any, delta: np.ndarray) -> np.ndarray:
    """``sum_i [a_i, 1] ⊗ δ_i`` for δ (n, m, d_out): (m, (d_in + 1) d_out)."""
    n, m, d_out = delta.shape
    weights = np.asarray(safe_sparse_dot(A.T, delta.reshape(n, m * d_out)))
    weights = weights.reshape(-1, m, d_out).transpose(1, 0, 2)
    return np.concatenate([weights, delta.sum(axis=0)[:, None, :]], axis=1).reshape(
        m, -1
    )


class ForwardPass(NamedTuple):
    """A forward pass: the layers' inputs ``a_l`` (``a_0 = X``), the hidden
    units' ``phi'`` and ``phi''`` (None when 0), and the outputs f."""

    inputs: list
    first: list
    second: list
    outputs: np.ndarray

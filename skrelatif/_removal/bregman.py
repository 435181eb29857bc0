"""The proximal Bregman response function (PBRF) of Bae et al. (NeurIPS 2022).

Bae, Ng, Lo, Ghassemi & Grosse, "If influence functions are the answer, then
what is the question?" show that in networks, where influence estimates
often match leave-one-out retraining poorly (from scratch or from a warm
start, both depend on the optimiser's path), they approximate well the
minimiser of the PBRF, a well-defined local objective around the trained
parameters ``theta*``.

With the objective of a parametric adapter (see :mod:`skrelatif._adapters._base`)
``F(theta) = sum_j w_j l_j(theta) + 1/2 theta^T diag(p) theta`` (``w_j = c s_j``,
``l_j`` the loss of the outputs ``f_j(theta)``, ``p`` the penalty, 0 on
unpenalised intercepts), removing the examples ``G`` with damping ``lambda``
minimises::

    PBRF_G(theta) = sum_j w_j D_l(f_j(theta), f_j(theta*), y_j)
                    - sum_{i in G} w_i (l_i(theta) - l_i(theta*))
                    + 1/2 (theta - theta*)^T diag(p + lambda) (theta - theta*)

where ``D_l(f, f*, y) = l(f, y) - l(f*, y) - r*^T (f - f*)`` is the Bregman
divergence of the loss in output space (``r* = dl/df`` at ``f*``). This is the
paper's equation (with ``epsilon = w_i``, the removed example's weight in F,
``1/N`` without sample weights) written for the training objective as
scikit-learn minimises it: the Bregman divergence of the L2 penalty
``1/2 theta^T diag(p) theta`` is ``1/2 (theta - theta*)^T diag(p) (theta -
theta*)``, so the penalty enters as a proximity term beside the damping. The
sum over ``j`` runs over *all* training examples (the removed ones included),
as in the paper. ``PBRF_{}`` is minimised at ``theta*`` itself, whether or not
``theta*`` minimises ``F``: the response is defined around the trained
parameters.

Its gradient, with ``r_j(theta) = dl_j/df`` and ``J_j`` the output Jacobian::

    grad = sum_j J_j(theta)^T (a_j r_j(theta) - w_j r*_j)
           + (p + lambda) (theta - theta*)

``a_j = w_j`` for kept examples and 0 for removed ones (the removal term's
gradient cancels theirs). Writing ``l_i - l*_i = r*_i^T (f_i - f*_i) + D_i``,
the value is ``sum_j a_j D_j - sum_{i in G} w_i r*_i^T (f_i - f*_i) + 1/2
||theta - theta*||^2_{p + lambda}``, without differences of nearly equal
losses (see :meth:`ProximalBregman.divergences`).
At ``theta*`` the Hessian of the data term is the Gauss-Newton matrix, so the
first Newton step of ``PBRF_G`` is the Newton step of ``method="newton"``
(with the Gauss-Newton curvature; for a network up to the removed examples'
own ``w_i r_i^T d²f_i/dtheta²``) and its linearisation the ``"if"`` change:
influence functions estimate the PBRF's minimiser to first order. It is
minimised by scipy's L-BFGS-B, with the adapter's own forward passes and
gradients (no automatic differentiation).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize

from .._utils import chunk_slices

#: The relative gradient L-BFGS reaches at worst: its line search compares
#: values of the PBRF, whose rounding (outputs that moved by ``s`` carry
#: errors of ``eps |f|``, the divergence is of order ``s^2``) limits the
#: gradient to about 1e-8 to 1e-5 of its start (measured on logistic
#: regression and a small network).
TOL_FLOOR = 1e-5
#: ... and, for removals whose gradient is itself tiny (confidently fitted
#: examples), the absolute floor: this fraction of the gradients' size
#: ``sum_j w_j ||g_j|| + ||p theta*||``.
ABSOLUTE_FLOOR = 1e-11

#: Gauss-Legendre nodes on [0, 1] and weights for the weight ``1 - t``.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(16)
_NODES = (_NODES + 1.0) / 2.0
_WEIGHTS = _WEIGHTS / 2.0 * (1.0 - _NODES)


class ProximalBregman:
    """The PBRF of a bound parametric adapter around its parameters.

    Parameters
    ----------
    adapter : ParametricAdapter
        Bound to its training data; ``theta*`` is its :meth:`parameters`.
    X, y_encoded : training data (the final estimator's input) and labels.
    weights : ndarray of shape (n_train,)
        ``w_j = c s_j``.
    damping : float
        ``lambda >= 0``.
    """

    def __init__(
        self,
        adapter: Any,
        X: Any,
        y_encoded: np.ndarray,
        weights: np.ndarray,
        damping: float,
    ) -> None:
        self.adapter, self.X, self.y = adapter, X, y_encoded
        self.weights = np.asarray(weights, dtype=np.float64)
        self.theta0 = adapter.parameters()
        self.proximity = adapter.penalty() + float(damping)
        self.rows = chunk_slices(
            X.shape[0], 8 * 4 * max(adapter.n_params, adapter.n_outputs)
        )
        F0 = adapter.outputs(X)
        self.F0 = F0
        self.losses0 = adapter.output_losses(F0, y_encoded)
        self.residuals0 = self._residuals(F0, y_encoded)
        _, self.size = adapter.objective_gradient(X, y_encoded, self.weights)

    def _residuals(self, F: np.ndarray, y: np.ndarray) -> np.ndarray:
        direction, norm = self.adapter.output_gradients(F, y)
        return direction * norm[:, None]

    def divergences(self, F: np.ndarray, rows: slice) -> np.ndarray:
        """``D_l(f_j, f*_j, y_j)`` for the training rows ``rows`` at outputs F.

        A difference of nearly equal losses loses the digits that L-BFGS's
        line search needs near the optimum, so rows whose outputs moved by at
        most 1 use ``D = int_0^1 (1 - t) s^T l''(f* + t s) s dt`` (``s = f -
        f*``, the loss's curvature in output space, Gauss-Legendre with
        :data:`_NODES` nodes: exact to rounding at these distances); the
        others the difference itself, which is accurate there."""
        F0, y = self.F0[rows], self.y[rows]
        shift = F - F0
        direct = (
            self.adapter.output_losses(F, y)
            - self.losses0[rows]
            - np.einsum("nk,nk->n", self.residuals0[rows], shift)
        )
        near = np.abs(shift).max(axis=1) <= 1.0
        if not near.any():
            return direct
        s, F0 = shift[near], F0[near]
        integral = np.zeros(s.shape[0])
        for t, weight in zip(_NODES, _WEIGHTS):
            a, b = self.adapter.output_curvature(F0 + t * s, y[near])
            quadratic = np.einsum("nk,nk->n", a * s, s)
            if b is not None:
                quadratic -= np.einsum("nk,nk->n", b, s) ** 2
            integral += weight * quadratic
        direct[near] = integral
        return direct

    def value_and_gradient(
        self, theta: np.ndarray, kept: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """``PBRF_G`` and its gradient at ``theta``; ``kept`` (n_train,) is
        ``w_j`` for kept examples, 0 for removed ones (``a_j``)."""
        moved = self.adapter.at(theta)
        value, gradient = 0.0, np.zeros_like(self.theta0)
        for rows in self.rows:
            X, y = self.X[rows], self.y[rows]
            F = moved.outputs(X)
            # sum_j w_j D_j - sum_G w_i (l_i - l*_i), with l_i - l*_i = r*_i^T
            # (f_i - f*_i) + D_i: the removed rows' divergences cancel
            linear = np.einsum("nk,nk->n", self.residuals0[rows], F - self.F0[rows])
            removed = self.weights[rows] - kept[rows]
            value += kept[rows] @ self.divergences(F, rows) - removed @ linear
            coefficients = (
                kept[rows, None] * self._residuals(F, y)
                - self.weights[rows, None] * self.residuals0[rows]
            )
            gradient += np.asarray(moved.gradients(X, coefficients)).sum(axis=0)
        step = theta - self.theta0
        scaled = self.proximity * step
        return float(value + 0.5 * step @ scaled), gradient + scaled

    def minimise(
        self, removed: np.ndarray, *, tol: float, max_iter: int
    ) -> tuple[np.ndarray, bool]:
        """The minimiser of ``PBRF_G`` for ``G = removed`` (indices), from
        ``theta*``, by L-BFGS-B until the gradient's largest entry is ``tol``
        times its value at ``theta*`` (``-sum_G w_i g_i``) or the line search
        stalls; converged when it is at most ``max(tol, TOL_FLOOR)`` times
        that, or ``ABSOLUTE_FLOOR`` times the gradients' size."""
        kept = self.weights.copy()
        kept[removed] = 0.0
        _, start = self.value_and_gradient(self.theta0, kept)
        scale = float(np.abs(start).max())
        if scale == 0.0:  # removing examples with zero gradient changes nothing
            return self.theta0.copy(), True

        # scaled so that the first gradient has unit size: tolerances relative
        def fun(theta):
            value, gradient = self.value_and_gradient(theta, kept)
            return value / scale, gradient / scale

        result = minimize(
            fun,
            self.theta0,
            jac=True,
            method="L-BFGS-B",
            options={
                "maxiter": int(max_iter),
                "maxfun": 2 * int(max_iter),
                "gtol": max(float(tol), 1e-2 * TOL_FLOOR),
                "ftol": 0.0,
                "maxcor": 30,
            },
        )
        _, gradient = fun(result.x)
        reached = np.abs(gradient).max()
        floor = max(max(tol, TOL_FLOOR), ABSOLUTE_FLOOR * self.size / scale)
        return result.x, bool(reached <= floor)

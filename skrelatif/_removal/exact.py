"""Exact removal: the minimum of the training objective without a group of
examples, by Newton iterations from the fitted parameters (see
:mod:`skrelatif._removal`), for :func:`skrelatif.validation.leave_one_out`
and the verification of flip sets."""

from __future__ import annotations

import numpy as np

from .._solvers import CholeskyInverse
from .._utils import chunk_slices
from .groups import GroupRemoval
from .newton import curvature_matrices, inverse_jacobian, solve_small


def objective_gradient(adapter, X, y_encoded, weights) -> np.ndarray:
    """``dF/dtheta`` (flat) of the objective with data weights ``weights``."""
    return adapter.objective_gradient(X, y_encoded, weights)[0]


def exact_removal(
    adapter,
    solver,
    X,
    y_encoded,
    weights,
    rows,
    *,
    tol: float = 1e-10,
    max_iter: int = 100,
    hessian=None,
    shares=None,
):
    """Parameters minimising the objective without ``rows``, by Newton
    iterations from ``theta*`` (the adapter's parameters).

    ``solver`` applies ``H^-1`` at ``theta*``; ``hessian(adapter, weights)``
    returns a fitted exact solver at other parameters (used when the
    leave-one-out Hessian at ``theta*`` converges slowly). Returns
    ``(theta, converged)``.
    """
    theta0 = adapter.parameters()
    kept = weights.copy()
    kept[np.asarray(rows)] = 0.0
    group = GroupRemoval(adapter, solver, X, y_encoded, weights, rows, shares)
    theta = theta0 + group.step()
    penalty = adapter.penalty()
    # below this, a step is rounding noise of the gradient, not a change
    floor = 1e3 * np.finfo(np.float64).eps * np.linalg.norm(theta0)
    last, fresh = np.inf, False
    for _ in range(max_iter):
        moved = adapter.at(theta)
        gradient = objective_gradient(moved, X, y_encoded, kept)
        gradient -= group.share * penalty * theta  # the renormalised penalty
        if fresh:
            step = -np.asarray(hessian(moved, kept).solve(gradient[None, :]))[0]
        else:
            step = -group.inverse(gradient)
        theta = theta + step
        size = np.linalg.norm(step)
        # linear convergence at rate r: what remains is about size r / (1 - r)
        rate = min(size / last, 0.5) if np.isfinite(last) else 0.5
        remaining = size * rate / (1 - rate)
        if remaining <= max(tol * np.linalg.norm(theta - theta0), floor):
            return theta, True
        # the Hessian at theta* converges slowly: true Newton steps from here
        fresh = fresh or (hessian is not None and size > 0.5 * last)
        last = size
    return theta, False


def exact_removals(
    adapter,
    solver,
    X,
    y_encoded,
    weights,
    rows: np.ndarray,
    *,
    tol: float = 1e-10,
    max_iter: int = 100,
    shares=None,
):
    """:func:`exact_removal` of each single training example of ``rows``,
    iterated together: each iteration evaluates the b objective gradients
    (:meth:`ModelAdapter.objective_gradients`, two GEMMs for a linear model)
    and applies the b leave-one-out inverses (one multi-right-hand-side solve
    and b Woodbury corrections of rank K). Returns ``(thetas (b, P), done
    (b,))``; a removal whose iterations converge slowly is left undone, for
    the caller to finish with fresh Hessians (:func:`exact_removal`)."""
    rows = np.asarray(rows)
    b = rows.size
    theta0 = adapter.parameters()
    Xr, yr, wr = X[rows], y_encoded[rows], weights[rows]
    J = adapter.output_jacobian(Xr)  # (b, K, P)
    K = J.shape[1]
    solved = inverse_jacobian(solver, J)  # H^-1 J_i^T, (b, K, P)
    M = wr[:, None, None] * curvature_matrices(*adapter.loss_curvature(Xr, yr))
    capacitance = np.eye(K) - M @ np.einsum("bkp,blp->bkl", J, solved)
    share = np.zeros(b) if shares is None else shares[rows]
    penalty = adapter.penalty()

    def step(idx, thetas):
        """``-(H - J_i^T M_i J_i)^-1 dF_i/dtheta`` for the removals ``idx``."""
        # dF_i = dF(all data) - w_i g_i (its own loss, at its theta) - rho_i p theta
        direction, norm = adapter.loss_gradients_at(Xr[idx], yr[idx], thetas)
        own = adapter.gradients(Xr[idx], (wr[idx] * norm)[:, None] * direction)
        Z = adapter.objective_gradients(X, y_encoded, weights, thetas)
        Z -= own + share[idx, None] * penalty * thetas
        # the Woodbury inverse, per removal
        HZ = np.asarray(solver.solve(Z), dtype=np.float64)
        t = np.einsum("bkl,bl->bk", M[idx], np.einsum("bkp,bp->bk", solved[idx], Z))
        t = solve_small(capacitance[idx], t[:, :, None], "a training example")
        return -(HZ + np.einsum("bkp,bk->bp", solved[idx], t[..., 0]))

    thetas = np.tile(theta0, (b, 1))
    done = np.zeros(b, dtype=bool)
    active = np.ones(b, dtype=bool)
    last = np.full(b, np.inf)
    floor = 1e3 * np.finfo(np.float64).eps * np.linalg.norm(theta0)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        delta = step(idx, thetas[idx])
        thetas[idx] += delta
        size = np.linalg.norm(delta, axis=1)
        # linear convergence at rate r: what remains is about size r / (1 - r)
        rate = np.where(np.isfinite(last[idx]), np.minimum(size / last[idx], 0.5), 0.5)
        change = np.linalg.norm(thetas[idx] - theta0, axis=1)
        finished = size * rate / (1 - rate) <= np.maximum(tol * change, floor)
        slow = ~finished & (size > 0.5 * last[idx])
        done[idx[finished]] = True
        active[idx[finished | slow]] = False
        last[idx] = size
    return thetas, done


def newton_reference(
    adapter, X, y_encoded, weights, hessian, *, solver=None, tol=1e-10, max_iter=50
):
    """The exact minimum of the full objective by Newton-type iterations from
    the adapter's parameters: ``(theta, solver, converged)``. ``solver`` (the
    exact ``H^-1`` at those parameters, if known) is kept while the steps
    shrink fast (a fitted model is close to the minimum) and recomputed at the
    current parameters otherwise; the returned solver is the last one used."""
    theta = adapter.parameters()
    solver = hessian(adapter, weights) if solver is None else solver
    last = np.inf
    for _ in range(max_iter):
        gradient = objective_gradient(adapter.at(theta), X, y_encoded, weights)
        step = -np.asarray(solver.solve(gradient[None, :]))[0]
        theta = theta + step
        size = np.linalg.norm(step)
        if size <= tol * max(np.linalg.norm(theta), 1e-300):
            return theta, solver, True
        if size > 1e-3 * last:  # not yet near: Newton steps with fresh Hessians
            solver = hessian(adapter.at(theta), weights)
        last = size
    return theta, solver, False


def exact_solver(adapter, X, y_encoded, weights):
    """``H^-1`` of the model's own objective (no damping), exact, in float64."""
    X = X.astype(np.float64, copy=False)
    return CholeskyInverse(0.0).fit(adapter.hessian_operator(X, y_encoded, weights))


class ExactRemoval:
    """Exact minima of the training objective without groups of examples.

    The full objective is first minimised exactly (Newton's method from the
    fitted parameters: the *reference*); each removal then iterates from it
    (:func:`exact_removal`).
    """

    def __init__(
        self,
        adapter,
        X,
        y_encoded,
        weights,
        shares=None,
        *,
        solver=None,
        tol=1e-10,
        max_iter=100,
    ) -> None:
        self.X = X.astype(np.float64, copy=False)
        self.y, self.weights, self.shares = y_encoded, weights, shares
        self.tol, self.max_iter = tol, max_iter
        theta, self.solver, self.converged = newton_reference(
            adapter,
            self.X,
            y_encoded,
            weights,
            self._hessian,
            solver=solver,
            tol=tol,
            max_iter=max_iter,
        )
        self.adapter = adapter.at(theta)

    def _hessian(self, adapter, weights):
        return exact_solver(adapter, self.X, self.y, weights)

    def remove_each(self, rows) -> list[tuple[np.ndarray, bool]]:
        """:meth:`remove` of each single example of ``rows``, iterated in
        batches (:func:`exact_removals`)."""
        rows = np.asarray(rows)
        K, P = self.adapter.n_outputs, self.adapter.n_params
        results = []
        for batch in chunk_slices(rows.size, 8 * 4 * K * max(P, 1)):
            thetas, done = exact_removals(
                self.adapter,
                self.solver,
                self.X,
                self.y,
                self.weights,
                rows[batch],
                tol=self.tol,
                max_iter=self.max_iter,
                shares=self.shares,
            )
            for row, theta, ok in zip(rows[batch], thetas, done):
                results.append((theta, True) if ok else self.remove([row]))
        return results

    def remove(self, rows) -> tuple[np.ndarray, bool]:
        """Parameters minimising the objective without ``rows``, converged."""
        return exact_removal(
            self.adapter,
            self.solver,
            self.X,
            self.y,
            self.weights,
            rows,
            tol=self.tol,
            max_iter=self.max_iter,
            hessian=self._hessian,
            shares=self.shares,
        )

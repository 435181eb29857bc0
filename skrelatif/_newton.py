"""Beyond first order: Newton leave-one-out, group removal and exact removal.

Core code over what a parametric adapter declares (outputs ``f`` (K per
example), their Jacobian ``J_i = df_i/dtheta`` (K x P), the loss gradient
``r_i = dl/df`` and curvature ``D_i = d²l/df²``). With ``w_i = c s_i``:

Removing a group ``G`` of training examples leaves the objective
``F_G = F - sum_{i in G} w_i l_i``. At the fitted ``theta*`` its gradient is
``-sum_{i in G} w_i g_i = -J_G^T v`` (``v`` the stacked ``w_i r_i``) and its
Hessian ``H - J_G^T M J_G`` (``M = blockdiag(w_i D_i)``). One Newton step
from ``theta*`` is, by the Woodbury identity
``(H - J^T M J)^-1 J^T = H^-1 J^T (I - M A)^-1`` with ``A = J H^-1 J^T``
(the K x K blocks ``x̃_i^T (H^-1)_{kl} x̃_j`` for a linear model)::

    delta_G = H^-1 J_G^T u_G,   u_G = (I - M_G A_G)^-1 v_G           (1)

a rank ``|G| K`` update that never forms a P x P matrix per group. For one
example, ``u_i = w_i (I - w_i D_i A_i)^-1 r_i`` (a K x K solve), and the
outputs of any point move by ``J_t delta_i = (J_t H^-1 J_i^T) u_i``: the
test loss is evaluated *exactly* at the moved outputs (not linearised), and
the example's own loss at ``f_i + A_i u_i`` is its approximate leave-one-out
loss. For a quadratic objective (squared loss) the step is the exact
leave-one-out solution.

Any vector: ``(H - J^T M J)^-1 z = H^-1 z + H^-1 J^T (I - M A)^-1 M J H^-1 z``.

Objectives normalised by the total weight (GLMs: ``1/sum(s)``; SGD and
networks: ``1/n``) are renormalised by scikit-learn when it refits on fewer
rows. Minimising ``1/(S - s_G) sum_{j not in G} s_j l_j + R`` is minimising
``F - c sum_G s_i l_i - rho_G R`` with ``rho_G = sum_G rho_i`` (the adapter's
``penalty_shares``, e.g. ``s_i / S``): the penalty gains relative weight. Its
gradient adds ``rho_G p theta*`` to the right-hand side of the step, so with
``z = H^-1 p theta*``::

    delta_G = H^-1 J_G^T (I - M_G A_G)^-1 (v_G + rho_G M_G J_G z) + rho_G z  (2)

(the Woodbury inverse applied to ``rho_G p theta*``). The Hessian's own
change ``-rho_G diag(p)`` is left out of the step: a relative error of at most
``rho_G / (1 - rho_G)`` (``1/(n-1)`` for one example), which the exact
removal's iterations then remove.

Exact removal iterates ``theta <- theta - (H_G)^-1 grad F_G(theta)`` from
``theta*``: first with the leave-one-out Hessian at ``theta*`` (the Woodbury
form above; each step costs one gradient pass and one solve), then with
fresh Hessians if that converges slowly, until the step is at most ``tol``
times the parameter change.

With softmax intercepts ``H`` is singular along the common shift of the
outputs; ``D_i 1 = 0`` and every ``r_i`` sums to 0, so every vector above
stays orthogonal to that direction and ``H^-1`` is the solver's inverse on
its complement.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from joblib import effective_n_jobs
from scipy import linalg
from threadpoolctl import threadpool_limits

from ._utils import chunk_slices


def curvature_matrices(a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``D_i = diag(a_i) - b_i b_i^T`` as an (n, K, K) array."""
    D = a[:, :, None] * np.eye(a.shape[1])
    if b is not None:
        D -= b[:, :, None] * b[:, None, :]
    return D


def _inverse_jacobian(solver, J: np.ndarray) -> np.ndarray:
    """``H^-1 J^T`` as rows: (n, K, P) for the (n, K, P) Jacobian rows ``J``."""
    n, K, P = J.shape
    return np.asarray(solver.solve(J.reshape(n * K, P)), dtype=np.float64).reshape(
        n, K, P
    )


def _solve_small(matrix: np.ndarray, rhs: np.ndarray, what: str) -> np.ndarray:
    try:
        return np.linalg.solve(matrix, rhs)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"Removing {what} makes the Hessian of the training objective singular "
            "(the remaining data do not determine the parameters). Pass damping > 0."
        ) from None


def penalty_direction(adapter, solver) -> np.ndarray:
    """``z = H^-1 p theta*`` of (2) (zeros without a penalty)."""
    gradient = adapter.penalty() * adapter.parameters()
    if not np.any(gradient):
        return np.zeros_like(gradient)
    return np.asarray(solver.solve(gradient[None, :]), dtype=np.float64)[0]


def newton_chunk(adapter, solver, X, y_encoded, weights, shares, z):
    """Per training example of a chunk: the coefficients ``u_i`` of (2),
    ``(I - M_i A_i)^-1 (w_i r_i + rho_i M_i J_i z)`` (n, K), and the example's
    loss after its Newton leave-one-out step, at ``f_i + A_i u_i + rho_i J_i z``."""
    J = adapter.output_jacobian(X)
    A = solver.gram_blocks(J)
    M = weights[:, None, None] * curvature_matrices(
        *adapter.loss_curvature(X, y_encoded)
    )
    direction, norm = adapter.loss_gradients(X, y_encoded)
    v = (weights * norm)[:, None] * direction
    penalty_shift = shares[:, None] * (J @ z)  # rho_i J_i z, (n, K)
    v = v + np.einsum("nkl,nl->nk", M, penalty_shift)
    K = v.shape[1]
    u = _solve_small(np.eye(K) - M @ A, v[:, :, None], "a training example")[..., 0]
    moved = adapter.outputs(X) + np.einsum("nkl,nl->nk", A, u) + penalty_shift
    return u, adapter.output_losses(moved, y_encoded)


def newton_test_state(adapter, solver, X, y_encoded, z):
    """Per test batch: ``H^-1 J_t^T`` (rows, (n_test * K, P)), ``J_t z``, the
    outputs and the targets (None: a regressor's prediction is explained)."""
    J = adapter.output_jacobian(X)
    solved = _inverse_jacobian(solver, J).reshape(-1, J.shape[2])
    return adapter, solved, J @ z, adapter.outputs(X), y_encoded


def output_shifts(state, X, u, shares) -> np.ndarray:
    """How the test outputs move when each training example of the chunk is
    removed: ``J_t H^-1 J_i^T u_i + rho_i J_t z``, shape (n_test, K, n_rows)."""
    adapter, solved, Jz, F, _ = state
    n_test, K = F.shape
    shift = adapter.gradient_dots(solved, X, u).reshape(n_test, K, u.shape[0])
    return shift + Jz[:, :, None] * shares


def newton_cross(state, X, u, shares):
    """Newton leave-one-out change of the test losses, (n_test, n_rows): the
    loss at the moved outputs minus the loss at ``f_t`` (2); for a regressor's
    prediction, minus the change of the prediction."""
    adapter, _, _, F, y_encoded = state
    n_test, K = F.shape
    n_rows = u.shape[0]
    shift = output_shifts(state, X, u, shares)
    if y_encoded is None:
        return -shift[:, 0, :]
    moved = F[:, :, None] + shift  # (n_test, K, n_rows)
    moved = moved.transpose(0, 2, 1).reshape(-1, K)
    after = adapter.output_losses(moved, np.repeat(y_encoded, n_rows))
    return after.reshape(n_test, n_rows) - adapter.output_losses(F, y_encoded)[:, None]


class GroupRemoval:
    """One Newton step (1) for removing a group of training examples.

    Parameters
    ----------
    adapter, solver
        The model's mathematics at ``theta*`` and ``H^-1`` at ``theta*``.
    X, y_encoded, weights
        The training data and ``w = c s``.
    rows : ndarray of int
        The group.
    """

    def __init__(
        self, adapter, solver, X, y_encoded, weights, rows, shares=None
    ) -> None:
        rows = np.asarray(rows)
        Xg, yg, wg = X[rows], y_encoded[rows], weights[rows]
        J = adapter.output_jacobian(Xg)  # (g, K, P)
        g, K, P = J.shape
        self.J = J.reshape(g * K, P)
        self.solved = _inverse_jacobian(solver, J).reshape(g * K, P)  # H^-1 J^T
        self.A = self.J @ self.solved.T
        D = curvature_matrices(*adapter.loss_curvature(Xg, yg))
        self.M = np.zeros((g * K, g * K))
        for j in range(g):  # block-diagonal, g small blocks
            self.M[j * K : (j + 1) * K, j * K : (j + 1) * K] = wg[j] * D[j]
        direction, norm = adapter.loss_gradients(Xg, yg)
        self.v = ((wg * norm)[:, None] * direction).ravel()
        self.capacitance = np.eye(g * K) - self.M @ self.A
        self.solver = solver
        self._lu = None
        # rho_G of (2) and z = H^-1 p theta*
        self.share = 0.0 if shares is None else float(np.sum(shares[rows]))
        self.z = penalty_direction(adapter, solver) if self.share else None
        if self.share:
            self.v = self.v + self.share * (self.M @ (self.J @ self.z))

    def _solve(self, rhs: np.ndarray) -> np.ndarray:
        """``(I - M A)^-1 rhs``, the LU factors computed once."""
        if self._lu is None:
            self._lu = linalg.lu_factor(self.capacitance, check_finite=False)
            if not np.all(np.abs(np.diagonal(self._lu[0])) > 0):
                _solve_small(np.zeros((1, 1)), np.zeros(1), "this group")
        return linalg.lu_solve(self._lu, rhs, check_finite=False)

    def step(self) -> np.ndarray:
        """``delta_G`` of (2): the Newton step from ``theta*``, flat (P,)."""
        step = self.solved.T @ self._solve(self.v)
        return step + self.share * self.z if self.share else step

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """``(H - J^T M J)^-1 z`` for a flat vector z (the Woodbury form)."""
        Hz = np.asarray(self.solver.solve(z[None, :]), dtype=np.float64)[0]
        return Hz + self.solved.T @ self._solve(self.M @ (self.solved @ z))


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
    solved = _inverse_jacobian(solver, J)  # H^-1 J_i^T, (b, K, P)
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
        t = _solve_small(capacitance[idx], t[:, :, None], "a training example")
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


def newton_rows(adapter, solver, X, y_encoded, weights, shares, z, row_bytes: int):
    """``u`` (n, K) and the Newton leave-one-out losses of every training
    example, chunk by chunk."""
    parts = [
        newton_chunk(
            adapter, solver, X[rows], y_encoded[rows], weights[rows], shares[rows], z
        )
        for rows in chunk_slices(X.shape[0], row_bytes)
    ]
    return np.vstack([u for u, _ in parts]), np.concatenate([loss for _, loss in parts])


def exact_solver(adapter, X, y_encoded, weights):
    """``H^-1`` of the model's own objective (no damping), exact, in float64."""
    from ._solvers import CholeskyInverse

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


def group_step(adapter, solver, X, y_encoded, weights, rows, shares) -> np.ndarray:
    """The Newton step (2) of removing ``rows`` (flat, (P,))."""
    return GroupRemoval(adapter, solver, X, y_encoded, weights, rows, shares).step()


def removal_change(adapter, theta, X_test, y_test) -> np.ndarray:
    """Change of the test losses (``y_test`` None: minus the change of the
    prediction) when the parameters move from the adapter's to ``theta``."""
    moved = adapter.at(theta)
    if y_test is None:
        return -(moved.outputs(X_test)[:, 0] - adapter.outputs(X_test)[:, 0])
    return moved.losses(X_test, y_test) - adapter.losses(X_test, y_test)


def _margin(F: np.ndarray, label: int) -> np.ndarray:
    """How far the outputs ``F`` (m, K) are from predicting another label than
    ``label`` (positive: ``label`` is predicted)."""
    if F.shape[1] == 1:
        return (2 * label - 1) * F[:, 0]
    others = np.delete(F, label, axis=1)
    return F[:, label] - others.max(axis=1)


def flip_set(influence, X_row, label: int, max_size: int, exact) -> tuple:
    """The smallest greedy set of training examples whose removal changes the
    predicted label of one test point; ``(indices, verified)``.

    Candidates are ranked by the margin after their own Newton removal step;
    prefixes of that ranking are evaluated with the group Newton step (1)
    (one (s K)-sized solve each, from precomputed blocks) until the label
    flips; ``exact`` (an :class:`ExactRemoval` or None) then confirms the set
    by refitting without it, moving to longer prefixes if the refit does not
    flip, and to shorter ones while they still flip.
    """
    adapter, solver = influence.adapter, influence.solver_
    X, y, weights = influence.X_, influence.y_, influence.weights_
    shares = influence.penalty_share_
    state = newton_test_state(adapter, solver, X_row, None, influence.penalty_z_)
    F = state[3]
    K = F.shape[1]
    margin = _margin(F, label)[0]
    moved = np.empty((influence.n_train_, K))
    for rows in chunk_slices(influence.n_train_, 8 * 4 * K * max(adapter.n_params, 1)):
        shift = output_shifts(state, X[rows], influence.newton_u_[rows], shares[rows])
        moved[rows] = F[0] + shift[0].T
    new_margin = _margin(moved, label)
    order = np.argsort(new_margin, kind="stable")
    order = order[new_margin[order] < margin][:max_size]
    if order.size == 0:
        return np.zeros(0, dtype=np.intp), False
    group = GroupRemoval(adapter, solver, X, y, weights, order)  # (1) blocks
    B = adapter.output_jacobian(X_row)[0] @ group.solved.T  # J_t H^-1 J_G^T
    Jz_train = group.J @ influence.penalty_z_  # (2): J_i z, then J_t z
    Jz_test = state[2][0]

    def predicted_flip(s):
        n = s * K
        rho = float(np.sum(shares[order[:s]]))
        v = group.v[:n] + rho * (group.M[:n, :n] @ Jz_train[:n])
        u = _solve_small(group.capacitance[:n, :n], v, "this group")
        return _margin(F + B[:, :n] @ u + rho * Jz_test, label)[0] < 0

    def exact_flip(s):
        theta, _ = exact.remove(order[:s])
        return _margin(exact.adapter.at(theta).outputs(X_row), label)[0] < 0

    for s in range(1, order.size + 1):
        if not predicted_flip(s):
            continue
        if exact is None:
            return order[:s], False
        if exact_flip(s):
            while s > 1 and exact_flip(s - 1):
                s -= 1
            return order[:s], True
    return np.zeros(0, dtype=np.intp), False


def check_groups(groups: Any, n_train: int, *, unique: bool = True) -> list[np.ndarray]:
    """Groups of training indices as int arrays; ``ValueError`` otherwise
    (``unique``: no index twice in a group)."""
    if isinstance(groups, np.ndarray) and groups.ndim == 1 and groups.dtype != object:
        groups = [groups]  # one group
    try:
        groups = [np.asarray(g) for g in groups]
    except TypeError:
        raise ValueError(
            "groups must be a list of arrays of training indices."
        ) from None
    if not groups:
        raise ValueError("groups must contain at least one group.")
    for group in groups:
        if group.ndim != 1 or group.size == 0:
            raise ValueError(
                "Each group must be a non-empty 1-d array of training indices; "
                f"got shape {group.shape}."
            )
        if not np.issubdtype(group.dtype, np.integer):
            raise ValueError(f"Training indices must be integers; got {group.dtype}.")
        if group.min() < 0 or group.max() >= n_train:
            raise ValueError(
                f"Training indices must be between 0 and {n_train - 1}; got values "
                f"from {group.min()} to {group.max()}."
            )
        if unique and np.unique(group).size != group.size:
            raise ValueError("A group lists the same training index twice.")
    return groups


def _removal_chunk(influence, X_test, y_test, groups, method):
    adapter, solver = influence.adapter, influence.solver_
    X, y, weights = influence.X_, influence.y_, influence.weights_
    if method != "newton":  # sum of the "if" scores: g_t^T H^-1 sum_i c s_i g_i
        summed = np.empty((len(groups), adapter.n_params))
        for j, group in enumerate(groups):
            coefficients = (weights[group] * influence.grad_norm_[group])[:, None]
            summed[j] = adapter.gradients(
                X[group], coefficients * influence.direction_[group]
            ).sum(axis=0)
        solved = np.asarray(solver.solve(summed))  # all the groups at once
        return influence.test_gradients(X_test, y_test) @ solved.T
    columns = []
    for group in groups:
        step = group_step(
            adapter, solver, X, y, weights, group, influence.penalty_share_
        )
        columns.append(
            removal_change(adapter, adapter.parameters() + step, X_test, y_test)
        )
    return np.column_stack(columns)


def predict_removal(influence, X_test, y_test, groups, method, *, n_jobs=None):
    """(n_test, n_groups) predicted test-loss changes (see the explainer)."""
    from ._utils import parallel_map

    solver = influence.solver_
    if solver.iterative:
        # batches run here, as large as the solver's workspace allows: each
        # of its iterations is a pass over the training set, itself
        # dispatched in about n_jobs tasks
        row_bytes = 8 * solver.workspace * influence.adapter.n_params
        batches = [groups[rows] for rows in chunk_slices(len(groups), row_bytes)]
        n_jobs = 1
    else:
        size = max(1, len(groups) // max(1, 4 * effective_n_jobs(n_jobs)))
        batches = [groups[i : i + size] for i in range(0, len(groups), size)]
    parts = parallel_map(
        _removal_chunk,
        ((influence, X_test, y_test, batch, method) for batch in batches),
        n_jobs=n_jobs,
    )
    return np.hstack(list(parts))


def _flip_chunk(influence, X_test, labels, max_size, verify):
    with threadpool_limits(limits=1, user_api="blas"):  # many small solves
        return _flip_sets(influence, X_test, labels, max_size, verify)


def _flip_sets(influence, X_test, labels, max_size, verify):
    exact = None
    if verify:
        exact = ExactRemoval(
            influence.adapter,
            influence.X_,
            influence.y_,
            influence.weights_,
            influence.penalty_share_,
            solver=influence.exact_solver_,
        )
    return [
        flip_set(influence, X_test[t : t + 1], int(labels[t]), max_size, exact)
        for t in range(X_test.shape[0])
    ]


def flip_sets(influence, X_test, labels, max_size, verify, *, n_jobs=None):
    """:meth:`InfluenceExplainer.flip_sets` over batches of test points."""
    from sklearn.utils import Bunch

    from ._utils import parallel_map

    if getattr(influence, "newton_u_", None) is None:
        influence._newton_rows()
    n_test = X_test.shape[0]
    size = max(1, -(-n_test // max(1, effective_n_jobs(n_jobs))))
    batches = [slice(i, min(i + size, n_test)) for i in range(0, n_test, size)]
    results = [
        found
        for part in parallel_map(
            _flip_chunk,
            ((influence, X_test[b], labels[b], max_size, verify) for b in batches),
            n_jobs=n_jobs,
        )
        for found in part
    ]
    indices = [np.asarray(found, dtype=np.intp) for found, _ in results]
    return Bunch(
        size=np.array([len(i) if len(i) else -1 for i in indices]),
        indices=indices,
        verified=np.array([bool(v) for _, v in results]),
    )

"""The mathematics of gradient-boosted trees replayed with their structure
fixed (used by :mod:`skrelatif._adapters.boosting`).

A fitted ensemble of ``n_iter`` iterations with ``K`` trees each (one per
output; ``K = 1`` for binary classification and regression) is, with its
splits held fixed, a function of its leaf values ``theta`` (``P`` leaves of
the ``T = n_iter K`` trees, ordered by iteration, then output, then leaf).
Tree ``(m, k)`` was fitted on the training rows' raw outputs before iteration
``m``, ``F_j^(m) = baseline + sum_{m' < m} theta[leaf_{m'}(j)]``, and every
leaf value is a Newton step of the loss ::

    theta_p = -a G_p / (H_p + lam),  G_p = sum_{j in p} w_j g_jk(F_j^(m)),
                                      H_p = sum_{j in p} w_j h_jk(F_j^(m))

with ``g``, ``h`` the loss's gradient and (diagonal) Hessian in output
``k``, ``w_j`` the sample weight the model was trained with (0 for rows it
was not trained on), ``a`` the learning rate (times ``(K - 1) / K`` for the
multinomial ``GradientBoostingClassifier``) and ``lam`` the L2 penalty
(``HistGradientBoosting*``: ``l2_regularization + 1e-15``; ``GradientBoosting*``:
0). A leaf whose rows all have weight 0 (emptied by a removal) has the value 0.

Replay (:meth:`Replay.run`)
    recomputes every ``theta_p`` from the baseline, for any weights (one
    column per removal): the fitted weights reproduce the model's leaf values
    (``HistGradientBoosting*`` stores ``w g`` and ``w h`` in float32, which the
    replay does too), weights set to 0 remove rows with the structure fixed.

Linearisation (:meth:`Replay.linearise`)
    With ``v_p = -G_p / (H_p + lam)`` (so ``theta_p = a v_p``) ::

        d theta_p / d w_j      = -a (g_jk + v_p h_jk) / (H_p + lam)           (B)
        d theta_p / d F_jk'    = -a w_j (dg_jk/dF_k' + v_p dh_jk/dF_k') / (H_p + lam)

    and ``dF_jk' = sum_{q of an earlier tree of output k'} [j in q] d theta_q``,
    so ``d theta = A d theta + B d w`` with ``A[p, q] = sum_{j in p and q}
    d theta_p / d F_jk'`` strictly lower triangular in iteration order:
    ``d theta / d w = (I - A)^-1 B``. ``A`` is accumulated tree by tree as
    ``Z_p^T diag(c) Z_q`` of the one-hot leaf matrices, a weighted bincount
    of leaf pairs (``n T^2 / 2`` operations, no loop over rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.linalg import solve_triangular
from scipy.special import expit, softmax

#: Largest number of leaves whose dense ``(I - A)`` (``8 P^2`` bytes) the
#: propagated methods ("if", RelatIF) build: 1 GB.
MAX_DENSE_LEAVES = 11_000


class SmoothLoss:
    """The smooth losses of scikit-learn's boosted trees (``model._loss``):
    gradients and diagonal Hessians as scikit-learn computes them, and the
    derivative of the Hessian the linearisation needs."""

    def __init__(self, loss, n_outputs: int) -> None:
        self.loss = loss
        self.K = n_outputs
        self.kind = type(loss).__name__

    def _call(self, method, y, F):
        """``method(y, F)`` on (n, K, b) outputs, batched: (n, K, b) results."""
        n, K, b = F.shape
        raw = F.transpose(0, 2, 1).reshape(n * b, K)
        yy = np.repeat(y, b)
        if K == 1:
            raw = raw[:, 0]
        out = method(yy, raw)
        if isinstance(out, tuple):
            return tuple(o.reshape(n, b, K).transpose(0, 2, 1) for o in out)
        return out.reshape(n, b, -1).transpose(0, 2, 1)

    def gradient_hessian(self, y, F):
        """``g, h`` (n, K, b) at outputs ``F`` (n, K, b)."""
        return self._call(
            lambda yy, raw: self.loss.gradient_hessian(yy, np.ascontiguousarray(raw)),
            y,
            F,
        )

    def gradient(self, y, F2):
        """``dl/dF`` (n, K) at outputs ``F2`` (n, K) (float64, no cancellation)."""
        raw = F2[:, 0] if self.K == 1 else np.ascontiguousarray(F2)
        return np.asarray(self.loss.gradient(y, raw)).reshape(len(y), self.K)

    def losses(self, y, F2):
        """The per-example loss at ``F2`` (n, K), with the constant that makes
        it a (half) deviance (0 at a perfect fit for regressors)."""
        raw = F2[:, 0] if self.K == 1 else np.ascontiguousarray(F2)
        out = self.loss.loss(y, raw) + self.loss.constant_to_optimal_zero(y)
        return np.asarray(out, dtype=np.float64)

    def couplings(self, y, F, v):
        """``dg_k/dF_k' + v dh_k/dF_k'`` for each row: (n, K, K) with ``v``
        (n, K) the unshrunk value of each row's leaf in output ``k``."""
        n, K = F.shape
        if self.kind == "HalfMultinomialLoss":
            p = softmax(F, axis=1)
            jac = p[:, :, None] * (np.eye(K)[None] - p[:, None, :])  # dp_k/dF_k'
            return jac * (1.0 + v * (1.0 - 2.0 * p))[:, :, None]
        f = F[:, 0]
        if self.kind == "HalfSquaredError":
            h, dh = np.ones(n), np.zeros(n)
        elif self.kind == "HalfBinomialLoss":
            h = expit(f) * expit(-f)
            dh = h * (expit(-f) - expit(f))
        elif self.kind == "HalfPoissonLoss":
            h = dh = np.exp(f)
        elif self.kind == "HalfGammaLoss":
            h = y * np.exp(-f)
            dh = -h
        else:  # ExponentialLoss: h = y e^-f + (1 - y) e^f, dh/df = g
            h = y * np.exp(-f) + (1 - y) * np.exp(f)
            dh = -y * np.exp(-f) + (1 - y) * np.exp(f)
        return (h + v[:, 0] * dh)[:, None, None]


@dataclass
class Ensemble:
    """A fitted ensemble's structure and stored leaf values (see the module
    docstring): ``offsets`` (T + 1,) leaf ranges per tree, ``fitted`` (P,) the
    stored leaf contributions, ``learned`` (T,) False for a tree whose leaves
    are constants (a root that was never split holds 0), ``scale`` ``a``,
    ``lam``, ``float32`` (gradient sums as HistGradientBoosting stores them)."""

    baseline: np.ndarray
    offsets: np.ndarray
    fitted: np.ndarray
    learned: np.ndarray
    scale: float
    lam: float
    float32: bool
    loss: SmoothLoss

    @property
    def K(self) -> int:
        return self.loss.K

    @property
    def T(self) -> int:
        return len(self.offsets) - 1

    @property
    def P(self) -> int:
        return int(self.offsets[-1])

    @property
    def tree_of_leaf(self) -> np.ndarray:
        return np.repeat(np.arange(self.T), np.diff(self.offsets))

    def outputs(self, leaves: np.ndarray, theta: np.ndarray | None = None):
        """Raw outputs (n, K) of rows with ``leaves`` (n, T) under leaf values
        ``theta`` (P,) (default: the fitted ones), summed tree by tree in the
        model's order."""
        theta = self.fitted if theta is None else theta
        F = np.tile(self.baseline, (leaves.shape[0], 1))
        for tau in range(self.T):
            F[:, tau % self.K] += theta[leaves[:, tau]]
        return F

    def staged_outputs(self, leaves: np.ndarray) -> np.ndarray:
        """Raw outputs before each iteration: (n, n_iter, K)."""
        n, K = leaves.shape[0], self.K
        contrib = self.fitted[leaves].reshape(n, -1, K)
        staged = np.cumsum(contrib, axis=1) - contrib
        return staged + self.baseline

    def leaf_matrix(self, leaves: np.ndarray, values: np.ndarray) -> sparse.csr_matrix:
        """(n, P) rows with ``values`` (n, T) at their leaves."""
        n, T = leaves.shape
        return sparse.csr_matrix(
            (values.ravel(), leaves.ravel(), np.arange(0, n * T + 1, T)),
            shape=(n, self.P),
        )


class Replay:
    """The training of an :class:`Ensemble` on its training rows: ``leaves``
    (n, T) global leaf indices, encoded ``y``, fitted weights ``w`` and
    optional in-bag masks ``bags`` (n, n_iter) (``GradientBoosting*`` with
    ``subsample < 1``: row j counts in iteration m with weight ``w_j``
    where ``bags[j, m]``, else 0)."""

    def __init__(self, ensemble: Ensemble, leaves, y, w, bags=None) -> None:
        self.ens, self.leaves, self.y, self.w, self.bags = ensemble, leaves, y, w, bags
        n = leaves.shape[0]
        self._Zt = []  # per tree: (L, n) one-hot, transposed
        for tau in range(ensemble.T):
            local = leaves[:, tau] - ensemble.offsets[tau]
            L = int(ensemble.offsets[tau + 1] - ensemble.offsets[tau])
            self._Zt.append(
                sparse.csr_matrix((np.ones(n), (local, np.arange(n))), shape=(L, n))
            )

    def _round(self, values):
        if self.ens.float32:  # HistGradientBoosting keeps w g and w h in float32
            return values.astype(np.float32).astype(np.float64)
        return values

    def _weights(self, W, m):
        return W if self.bags is None else W * self.bags[:, m, None]

    def iterate(self, weights: np.ndarray | None = None):
        """Replay with training weights ``weights`` (n, b) (default: the
        fitted ones, b = 1). Yields per iteration ``(m, F, g, h, W)`` (before
        its trees) and ``(m, theta)`` after; ``F`` (n, K, b) is updated in
        place and holds the final outputs at the end."""
        ens, K = self.ens, self.ens.K
        W0 = self.w[:, None] if weights is None else weights
        n, b = W0.shape
        F = np.broadcast_to(ens.baseline[None, :, None], (n, K, b)).copy()
        theta = np.zeros((ens.P, b))
        for m in range(ens.T // K):
            W = self._weights(W0, m)
            g, h = ens.loss.gradient_hessian(self.y, F)
            yield m, F, g, h, W
            for k in range(K):
                tau = m * K + k
                lo, hi = ens.offsets[tau], ens.offsets[tau + 1]
                if not ens.learned[tau]:
                    theta[lo:hi] = ens.fitted[lo:hi, None]
                    continue
                G = self._Zt[tau] @ self._round(W * g[:, k])
                H = self._Zt[tau] @ self._round(W * h[:, k]) + ens.lam
                theta[lo:hi] = -ens.scale * G / _safe(H)
            for k in range(K):
                F[:, k] += theta[self.leaves[:, m * K + k]]
        yield theta

    def run(self, weights: np.ndarray | None = None):
        """Leaf values (P, b) and final training outputs (n, K, b) replayed
        with training weights ``weights`` (n, b) (see :meth:`iterate`)."""
        F = None
        for step in self.iterate(weights):
            if isinstance(step, np.ndarray):
                return step, F
            F = step[1]

    def state(self) -> dict:
        """The fitted replay: ``theta`` (P,), final outputs ``F`` (n, K),
        ``coef`` (n, T) ``d theta / d w_j`` of each row's leaf per tree,
        ``share`` (n, T) each row's term of its leaf value (the
        decomposition), ``grad`` (n, T) each row's gradient in the tree's
        output before its iteration."""
        ens, K = self.ens, self.ens.K
        n = self.leaves.shape[0]
        coef, share, grad = (np.zeros((n, ens.T)) for _ in range(3))
        pending = []
        for step in self.iterate():
            if isinstance(step, np.ndarray):
                theta = step[:, 0]
                break
            m, F, g, h, W = step
            for k in range(K):
                tau = m * K + k
                grad[:, tau] = g[:, k, 0]
                pending.append((tau, g[:, k, 0], h[:, k, 0], W[:, 0]))
        for tau, g, h, Wm in pending:
            lo = ens.offsets[tau]
            if not ens.learned[tau]:
                continue
            local = self.leaves[:, tau] - lo
            H = _safe(self._Zt[tau] @ self._round(Wm * h) + ens.lam)[local]
            v = theta[self.leaves[:, tau]] / ens.scale  # -G / (H + lam)
            inbag = Wm > 0 if self.bags is not None else 1.0
            coef[:, tau] = -ens.scale * inbag * (g + v * h) / H
            share[:, tau] = -ens.scale * self._round(Wm * g) / H
        return dict(theta=theta, F=F[:, :, 0], coef=coef, share=share, grad=grad)

    def linearise(self) -> np.ndarray:
        """``-A`` (P, P), dense and strictly lower triangular (the unit
        diagonal of ``I - A`` implied; see the module docstring)."""
        ens, K, leaves, y = self.ens, self.ens.K, self.leaves, self.y
        n, P = leaves.shape[0], ens.P
        if P > MAX_DENSE_LEAVES:
            raise ValueError(
                f"The ensemble has {P} leaves; the propagated methods ('if', "
                f"RelatIF) build a dense {P} x {P} matrix and support at most "
                f"{MAX_DENSE_LEAVES}. Use method='boostin', or fewer or smaller trees."
            )
        theta = self.run()[0][:, 0]
        negA = np.zeros((P, P))
        for step in self.iterate():
            if isinstance(step, np.ndarray):
                break
            m, F, g, h, W = step
            if m == 0:
                continue
            Fm, Wm = F[:, :, 0], W[:, 0]
            for k in range(K):
                tau = m * K + k
                lo, hi = ens.offsets[tau], ens.offsets[tau + 1]
                if not ens.learned[tau]:
                    continue
                local = leaves[:, tau] - lo
                H = _safe(self._Zt[tau] @ self._round(Wm * h[:, k, 0]) + ens.lam)
                v = np.zeros((n, K))
                v[:, k] = theta[lo:hi][local] / ens.scale
                # dg_k/dF_k' + v dh_k/dF_k' of this tree's output k, per row
                coupling = ens.loss.couplings(y, Fm, v)[:, k, :]
                for kk in range(K):
                    c = -ens.scale * Wm * coupling[:, kk] / H[local]
                    earlier = leaves[:, kk : m * K : K]  # (n, m): output kk's trees
                    # Z_tau^T diag(c) Z_earlier as a weighted bincount of leaf pairs
                    index = (local.astype(np.int64)[:, None] * P + earlier).ravel()
                    block = np.bincount(
                        index, weights=np.repeat(c, m), minlength=(hi - lo) * P
                    )
                    negA[lo:hi] -= block.reshape(hi - lo, P)
        return negA

    @staticmethod
    def solve_adjoint(negA: np.ndarray, Gt: np.ndarray) -> np.ndarray:
        """``(I - A)^-T`` applied to the columns of ``Gt`` (P, b)."""
        return solve_triangular(
            negA, Gt, lower=True, trans="T", unit_diagonal=True, check_finite=False
        )

    @staticmethod
    def inverse(negA: np.ndarray) -> np.ndarray:
        """``(I - A)^-1`` (P, P), lower triangular."""
        return solve_triangular(
            negA, np.eye(len(negA)), lower=True, unit_diagonal=True, check_finite=False
        )


def _safe(H: np.ndarray) -> np.ndarray:
    """``H`` with the sums of emptied leaves (``|H| < 1e-150``) made infinite,
    so that their values are 0 (scikit-learn's ``_safe_divide``)."""
    return np.where(np.abs(H) > 1e-150, H, np.inf)

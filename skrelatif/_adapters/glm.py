"""Adapter for generalised linear models:
:class:`~sklearn.linear_model.PoissonRegressor`,
:class:`~sklearn.linear_model.GammaRegressor` and
:class:`~sklearn.linear_model.TweedieRegressor` (every ``power``, link
``"auto"``, ``"log"`` or ``"identity"``).

Objective (scikit-learn's own, ``s_i`` = sample weight)::

    F(theta) = 1/(sum_j s_j) sum_i s_i l_i + alpha/2 ||w||^2,   eta_i = w . x_i + b

with ``l_i = l(y_i, h(eta_i))`` the **half** unit deviance of the family
(scikit-learn's ``HalfPoissonLoss``, ``HalfGammaLoss``, ``HalfTweedieLoss``,
``HalfTweedieLossIdentity``), ``h`` the inverse link (``exp`` or the
identity) and the intercept ``b`` unpenalised. So ::

    c = 1 / sum_j s_j,   p = alpha on the weights, 0 on the intercept.

The objective is a mean (``mean_over = "weights"``): the base class keeps
``c`` and, for removals, the renormalisation of a refit on fewer rows.

With ``mu = h(eta)`` and the Tweedie power ``q`` (Poisson: ``q = 1``, Gamma:
``q = 2``), the half deviance's derivative with respect to the mean is
``dl/dmu = (mu - y) / mu^q``. By the chain rule, per example ::

    log link       dl/deta = mu^(1-q) (mu - y)
                   d²l/deta² = mu^(1-q) ((2 - q) mu - (1 - q) y)
    identity link  dl/deta = (mu - y) / mu^q
                   d²l/deta² = ((1 - q) mu + q y) / mu^(q+1)

(Poisson: ``mu - y`` and ``mu``; Gamma: ``1 - y/mu`` and ``y/mu``.) They are
taken from the fitted model's own loss object ``_base_loss``
(``gradient_hessian``), so they are exactly what scikit-learn minimised; the
loss adds ``constant_to_optimal_zero`` to give the half deviance itself.
The gradient of ``l_i`` with respect to ``theta = [w, b]`` is
``dl/deta x̃_i`` (``x̃_i = [x_i, 1]``) and ::

    H = c sum_i s_i d²l_i/deta² x̃_i x̃_i^T + diag(p).

The curvature ``d²l/deta²`` is independent of ``y`` only for the canonical
links (Poisson with the log link, the normal ``q = 0`` with the identity
link), and it is never negative only for ``1 <= q <= 2`` with the log link
and ``0 <= q <= 1`` with the identity link. Elsewhere it is negative for the
examples whose ``y`` is far from ``mu``: log link, ``y < (q-2)/(q-1) mu`` for
``q > 2`` and ``y > (2-q)/(1-q) mu`` for ``q < 1``; identity link,
``y < (q-1)/q mu`` for ``q > 1`` and ``y > (1-q)/(-q) mu`` for ``q < 0``.
The Hessian of ``F`` is usually still positive definite at the optimum;
when it is not, the exact solvers raise the singular-Hessian error that asks
for ``damping`` (never NaN scores). A negative curvature ``d`` is passed to
the linear machinery as ``max(d, 0) - b^2`` with ``b = sqrt(max(-d, 0))``,
whose factors are real.

Without given targets the explanation is of the **linear predictor**
``eta(x_t) = w . x_t + b`` (``log mu`` for a log link): ``g_t = -x̃_t``, so a
positive score means the example pushes the prediction up (spec section 5),
and :attr:`Explanation.target` holds ``eta``.

Removal. The scores follow the package's convention: removing example ``i``
leaves ``F - c s_i l_i``, with ``c`` kept. scikit-learn's refit without ``i``
renormalises instead (``c' = 1/(sum_j s_j - s_i)``), which is that objective
with ``alpha`` scaled by ``sum_j s_j / (sum_j s_j - s_i)``. To first order
the refit's test-loss change is ``"if"`` plus ``c s_i g_t^T H^-1 p theta*``,
a term that depends on ``i`` only through ``s_i``; it is small for a small
``alpha`` (Poisson, n = 200, ``alpha = 1e-2``: Pearson r 0.9996 between
``"if"`` and scikit-learn refits; ``alpha = 1``: 0.998).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn._loss.link import IdentityLink
from sklearn.linear_model import GammaRegressor, PoissonRegressor, TweedieRegressor

from ._linear import LinearModelAdapter


class GLMAdapter(LinearModelAdapter):
    """Influence of the training examples of a Poisson, Gamma or Tweedie GLM.

    Parameters
    ----------
    estimator : PoissonRegressor, GammaRegressor or TweedieRegressor
        The fitted model (never modified).
    """

    estimator_types = (PoissonRegressor, GammaRegressor, TweedieRegressor)
    mean_over = "weights"  # c = 1 / sum(s)
    objective = "1/sum(s) sum_i s_i l_i + alpha/2 ||w||^2"
    loss = (
        "half unit deviance of the family (scikit-learn's Half*Loss), "
        "of the linear predictor eta"
    )
    notes = (
        "every Tweedie power and link; solvers lbfgs and newton-cholesky; "
        "without y: explains the linear predictor eta (log of the mean for a "
        "log link)"
    )

    def check_estimator(self) -> None:
        est = self.estimator
        if not hasattr(est, "_base_loss"):  # pragma: no cover - scikit-learn < 1.1
            raise ValueError(
                f"{type(est).__name__} has no fitted loss (_base_loss); refit it "
                "with scikit-learn >= 1.6."
            )
        if np.ndim(est.coef_) != 1:  # pragma: no cover - GLMs have one output
            raise ValueError(
                f"{type(est).__name__} has several outputs; explain one at a time."
            )

    # -- parameters and objective -----------------------------------------------------
    @property
    def _loss(self) -> Any:
        """scikit-learn's half-deviance loss object the model was fitted with."""
        return self.estimator._base_loss

    @property
    def coef(self) -> np.ndarray:
        return np.atleast_2d(np.asarray(self.estimator.coef_, dtype=float))

    @property
    def intercept(self) -> np.ndarray:
        if not self.fit_intercept:
            return np.zeros(1)
        return np.asarray(self.estimator.intercept_, dtype=float).reshape(1)

    @property
    def weight_penalty(self) -> float:
        return float(self.estimator.alpha)

    # -- the target --------------------------------------------------------------------
    def encode_target(self, y: Any, *, what: str = "y") -> np.ndarray:
        """Float targets, checked against the family's range (e.g. ``y >= 0``
        for Poisson, ``y > 0`` for Gamma)."""
        encoded = super().encode_target(y, what=what)
        if not self._loss.in_y_true_range(encoded):
            interval = self._loss.interval_y_true
            low = "[" if interval.low_inclusive else "("
            high = "]" if interval.high_inclusive else ")"
            raise ValueError(
                f"{what} contains values outside the range of "
                f"{type(self.estimator).__name__}'s deviance "
                f"({type(self._loss).__name__}): {low}{interval.low}, "
                f"{interval.high}{high}."
            )
        return encoded

    # -- the loss as a function of the linear predictor ------------------------------
    def _arrays(self, F: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Contiguous float64 ``y`` and ``eta``; ``ValueError`` when the mean
        ``mu = eta`` of an identity link is outside the deviance's domain."""
        eta = np.ascontiguousarray(F[:, 0], dtype=np.float64)
        loss = self._loss
        if isinstance(loss.link, IdentityLink) and not loss.in_y_pred_range(eta):
            interval = loss.interval_y_pred
            raise ValueError(
                f"{type(self.estimator).__name__} with an identity link predicts "
                f"a mean outside ({interval.low}, {interval.high}) for some rows, "
                "where its deviance is not defined."
            )
        return np.ascontiguousarray(y, dtype=np.float64), eta

    def output_gradients(
        self, F: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``dl/deta`` as (sign (n, 1), absolute value (n,))."""
        y, eta = self._arrays(F, y)
        gradient, _ = self._loss.gradient_hessian(y, eta)
        return np.sign(gradient)[:, None], np.abs(gradient)

    def output_curvature(
        self, F: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``d²l/deta² = a - b^2``: ``(d, None)`` when no curvature ``d`` is
        negative, otherwise ``a = max(d, 0)``, ``b = sqrt(max(-d, 0))``."""
        y, eta = self._arrays(F, y)
        _, curvature = self._loss.gradient_hessian(y, eta)
        if np.all(curvature >= 0):
            return curvature[:, None], None
        return (
            np.maximum(curvature, 0.0)[:, None],
            np.sqrt(np.maximum(-curvature, 0.0))[:, None],
        )

    def output_losses(self, F: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The half unit deviance ``l(y_i, h(eta_i))`` (0 where ``mu = y``)."""
        y, eta = self._arrays(F, y)
        return self._loss.loss(y, eta) + self._loss.constant_to_optimal_zero(y)

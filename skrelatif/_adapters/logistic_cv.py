"""Adapter for :class:`sklearn.linear_model.LogisticRegressionCV` (L2 penalty).

With ``refit=True`` (the default) the cross-validation only chooses ``C``: the
final model is a :class:`~sklearn.linear_model.LogisticRegression` refit on all
of ``X, y`` at the chosen ``C_``, so it minimises the same objective (with
``s_i`` = sample weight x class weight) ::

    F(theta) = C_ sum_i s_i l(y_i, f_i) + 1/2 ||W||^2,   f_i = W x_i + b

with ``l = log(1 + exp(f)) - y f`` (binary, ``y`` in {0, 1}, one output) or
``l = -log p_y`` (multinomial softmax over K outputs), the intercept
unpenalised (liblinear: penalised through ``intercept_scaling``, as for
``LogisticRegression``). Hence ``c = C_``, and every derivative is the one of
:class:`~skrelatif._adapters.logistic.LogisticRegressionAdapter` ::

    dl/df = p - e_y,   d²l/df² = diag(p) - p p^T

``C_`` is an array with one (equal) entry per class, or a single one (a float
with ``use_legacy_attributes=False``); its value is the ``C`` used.

``refit=False`` averages the coefficients of the folds' best models: that
average is not a minimum of any objective on ``X, y``, so it is rejected. L1
and elastic-net penalties (``l1_ratios`` with a non-zero entry, or
``penalty="l1"``) are not twice differentiable and are rejected as for
``LogisticRegression``. ``"balanced"`` class weights count the sample weights,
as scikit-learn computes them for the refit.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegressionCV

from .logistic import LogisticRegressionAdapter, check_multinomial


def _l1_ratios_are_zero(l1_ratios: object) -> bool:
    """Whether ``l1_ratios`` (None, the ``"warn"`` default or an array-like)
    makes an L2 penalty: None, or every entry 0 (as scikit-learn decides)."""
    if l1_ratios is None or isinstance(l1_ratios, str):
        return True
    return bool(np.all(np.asarray(l1_ratios, dtype=float) == 0))


class LogisticRegressionCVAdapter(LogisticRegressionAdapter):
    """The refit ``LogisticRegressionCV``: a ``LogisticRegression`` at ``C = C_``."""

    estimator_types = (LogisticRegressionCV,)
    objective = "C_ sum_i s_i l_i + 1/2 ||W||^2 (C_ the cross-validated C, refit)"
    loss = "log-loss (binary: logistic; multiclass: multinomial softmax)"
    notes = (
        "refit=True only; L2 only (l1_ratios None or all 0); class_weight; "
        "liblinear's penalised intercept; multinomial intercept null direction "
        "handled exactly"
    )

    def check_estimator(self) -> None:
        est = self.estimator
        if not est.refit:
            raise ValueError(
                "LogisticRegressionCV with refit=False averages the coefficients "
                "of the folds' best models, which is not a minimum of any training "
                "objective, so influence functions are not defined for it. Refit "
                "it with refit=True (the default)."
            )
        penalty = getattr(est, "penalty", "deprecated")
        l1_ratios = getattr(est, "l1_ratios", None)
        smooth = penalty == "l2" or (
            penalty in ("deprecated", "elasticnet") and _l1_ratios_are_zero(l1_ratios)
        )
        if not smooth:
            shown = f"penalty={penalty!r}, " if penalty != "deprecated" else ""
            raise ValueError(
                f"LogisticRegressionCV with {shown}l1_ratios={l1_ratios!r} has an "
                "L1 (or elastic-net) penalty, which is not twice differentiable, "
                "so influence functions are not defined for it. Only the L2 "
                "penalty (l1_ratios=(0,)) is supported."
            )
        values = np.unique(np.ravel(np.asarray(est.C_, dtype=float)))
        if values.size != 1:
            raise ValueError(
                "LogisticRegressionCV was fitted with a different C per class "
                f"(C_={list(values)}), i.e. one-vs-rest; only one C for all "
                "classes (a binary or multinomial model) is supported."
            )
        check_multinomial(est)

    @property
    def inverse_penalty(self) -> float:
        """``C_``, the cross-validated ``C`` of the refit (``np.inf``: no penalty)."""
        return float(np.ravel(np.asarray(self.estimator.C_, dtype=float))[0])

"""skrelatif: explain scikit-learn predictions with training examples.

Influence functions (Koh & Liang, 2017) and RelatIF (Barshan, Brunet &
Dziugaite, 2020) for logistic regression, kernel SVMs and pipelines ending in
them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

# The public names are imported on first use (PEP 562), so that the command
# line (``skrelatif --help``) starts without importing numpy and scikit-learn.
_EXPORTS = {
    "Explanation": "._explanation",
    "ExplanationBarDisplay": "._plot",
    "ExplanationGridDisplay": "._plot",
    "InfluenceExplainer": "._explainer",
    "LeaveOneOutDisplay": "._plot",
    "LinearDatamodelingDisplay": "._plot",
    "NearestNeighborExplainer": "._neighbors",
    "RemovalCurveDisplay": "._plot",
}

__all__ = [
    "Explanation",
    "ExplanationBarDisplay",
    "ExplanationGridDisplay",
    "InfluenceExplainer",
    "LeaveOneOutDisplay",
    "LinearDatamodelingDisplay",
    "NearestNeighborExplainer",
    "RemovalCurveDisplay",
    "__version__",
]

if TYPE_CHECKING:
    from ._explainer import InfluenceExplainer
    from ._explanation import Explanation
    from ._neighbors import NearestNeighborExplainer
    from ._plot import (
        ExplanationBarDisplay,
        ExplanationGridDisplay,
        LeaveOneOutDisplay,
        LinearDatamodelingDisplay,
        RemovalCurveDisplay,
    )


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

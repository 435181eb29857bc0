"""skrelatif: explain scikit-learn predictions with training examples.

Influence functions (Koh & Liang, 2017) and RelatIF (Barshan, Brunet &
Dziugaite, 2020) for logistic regression, kernel SVMs and pipelines ending in
them.
"""

from ._explainer import InfluenceExplainer
from ._explanation import Explanation
from ._neighbors import NearestNeighborExplainer
from ._plot import ExplanationGridDisplay, LeaveOneOutDisplay

__version__ = "0.1.0.dev0"

__all__ = [
    "Explanation",
    "ExplanationGridDisplay",
    "InfluenceExplainer",
    "LeaveOneOutDisplay",
    "NearestNeighborExplainer",
    "__version__",
]

"""Plots, following scikit-learn's Display pattern (``from_...`` then ``plot``).

Everything is computed when a display is built (its ``from_*`` class methods
or its constructor) and :meth:`plot` only draws, with a keyword-only ``ax``, as
scikit-learn's displays do. Matplotlib is an optional dependency (the ``plot``
extra); it is imported only when a plot is drawn.

One module per display: ``_grid`` (:class:`ExplanationGridDisplay`, images),
``_bar`` (:class:`ExplanationBarDisplay`, bars with the training rows) and
``_leave_one_out`` (:class:`LeaveOneOutDisplay`), ``_removal_curve``
(:class:`RemovalCurveDisplay`) and ``_datamodeling``
(:class:`LinearDatamodelingDisplay`); ``_common`` holds what they
share (the colours, the matplotlib check, label texts, rows as images).
"""

from ._bar import ExplanationBarDisplay
from ._common import MATCH_COLOR, MISMATCH_COLOR, OPPONENT_COLOR, PROPONENT_COLOR
from ._common import _is_images as _is_images
from ._datamodeling import LinearDatamodelingDisplay
from ._grid import ExplanationGridDisplay
from ._grid import _grid_figsize as _grid_figsize
from ._leave_one_out import LeaveOneOutDisplay
from ._removal_curve import RemovalCurveDisplay

__all__ = [
    "ExplanationBarDisplay",
    "ExplanationGridDisplay",
    "LeaveOneOutDisplay",
    "LinearDatamodelingDisplay",
    "MATCH_COLOR",
    "MISMATCH_COLOR",
    "OPPONENT_COLOR",
    "PROPONENT_COLOR",
    "RemovalCurveDisplay",
]

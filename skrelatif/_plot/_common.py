"""What the displays share: the colour palette, the matplotlib check, the
texts of labels, and rows of data as images.

Colours are from Okabe & Ito's palette, told apart with the common
colour-vision deficiencies. Labels are compared (and coloured) only when they
are class labels; a regressor's targets are written as numbers.
"""

from __future__ import annotations

from math import isqrt
from typing import Any

import numpy as np

# Where scikit-learn's own displays import it from (1.6 to 1.9 at least);
# ``sklearn.utils`` itself no longer exports it (1.9 does not).
from sklearn.utils._optional_dependencies import (
    check_matplotlib_support as check_matplotlib_support,
)

#: Colours of proponent labels (Okabe & Ito's palette, told apart with the
#: common colour-vision deficiencies): the explained label, or another one.
MATCH_COLOR = "#0072B2"  # blue
MISMATCH_COLOR = "#E69F00"  # orange

#: Colours of the bars (Okabe & Ito's palette): proponents and opponents.
PROPONENT_COLOR = "#009E73"  # bluish green
OPPONENT_COLOR = "#D55E00"  # vermillion


def _as_images(X: Any, image_shape: tuple[int, ...] | None, what: str) -> np.ndarray:
    """Rows of ``X`` as images: (n, h, w) or (n, h, w, channels)."""
    X = np.asarray(X)
    if image_shape is not None:
        image_shape = tuple(int(s) for s in image_shape)
        if int(np.prod(image_shape)) * X.shape[0] != X.size:
            raise ValueError(
                f"{what} with {X.size // max(X.shape[0], 1)} values per row cannot be "
                f"shown as images of shape {image_shape}."
            )
        return X.reshape((X.shape[0], *image_shape))
    if X.ndim in (3, 4):
        return X
    if X.ndim != 2:
        raise ValueError(f"{what} must be 2-d (one image per row) or 3-d/4-d images.")
    side = isqrt(X.shape[1])
    if side * side != X.shape[1]:
        raise ValueError(
            f"{what} has {X.shape[1]} features per row, which is not a square image; "
            "pass image_shape=(height, width)."
        )
    return X.reshape(X.shape[0], side, side)


def _is_images(X: Any) -> bool:
    """Whether the rows of ``X`` look like images: 3-d or 4-d, or flat rows
    that are square images of at least 8 x 8 pixels (not a DataFrame, whose
    named columns are a table's)."""
    if hasattr(X, "columns"):
        return False
    shape = np.shape(X) if not hasattr(X, "shape") else X.shape
    if len(shape) in (3, 4):
        return True
    if len(shape) != 2:
        return False
    side = isqrt(shape[1])
    return side >= 8 and side * side == shape[1]


def _are_classes(labels: np.ndarray) -> bool:
    """Whether ``labels`` are class labels, to compare, rather than regression
    values: anything but floats, or floats that are all whole numbers."""
    if labels.dtype.kind != "f":
        return True
    return bool(np.isfinite(labels).all() and (labels == np.round(labels)).all())


def _label_text(value: Any, classes: bool) -> str:
    return str(value) if classes else f"{float(value):.3g}"


def _test_caption(
    target: Any, classes: bool, *, given: bool = False, true: Any = None
) -> str:
    """What a test point is labelled with: the label explained, said to be the
    prediction (or given), then the true label when known."""
    text = f"{'explained' if given else 'predicted'}: {_label_text(target, classes)}"
    if true is not None:
        text += f"\ntrue: {_label_text(true, classes)}"
    return text

"""The contract between :class:`~skrelatif.InfluenceExplainer` and a model family.

An adapter knows the mathematics of one kind of fitted estimator (its loss
gradients, Hessian, kernel, ...). The explainer only ever sees the quantities
below; adding a model means adding one module to this package that subclasses
:class:`ModelAdapter` and lists the estimator classes it handles.

Every supported influence score factorises as ::

    score[t, i] = cross(t, i) * train_scale[i]

where ``cross(t, i) = g_t^T H^-1 ĝ_i`` pairs the test point with the *unit*
gradient direction ``ĝ_i`` of training example ``i`` and ``train_scale``
depends on the method only (see :meth:`ModelAdapter.fit`). The scoring
machinery (:mod:`skrelatif._scoring`) streams over training chunks, calling
the picklable static :meth:`ModelAdapter.cross` on the payloads returned by
:meth:`ModelAdapter.train_chunk`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

METHODS = ("if", "theta-relatif", "l-relatif")


class ModelAdapter(ABC):
    """Base class of the model adapters; subclasses register themselves.

    Parameters
    ----------
    estimator : estimator instance
        The fitted final estimator (never modified).

    Attributes set by :meth:`fit`
    -----------------------------
    classes_ : ndarray of shape (n_classes,)
    n_train_ : int
    train_scale_ : ndarray of shape (n_train,)
        Per-example factor that turns ``cross`` into the method's score.
    self_influence_ : ndarray of shape (n_train,) or None
    candidates_ : ndarray of int or None
        Training indices that can have a non-zero score, sorted ascending
        (``None``: all). Only these are ever scored.
    """

    #: Estimator classes this adapter handles.
    estimator_types: ClassVar[tuple[type, ...]] = ()
    #: Hessian options this adapter understands (``None``: the option is ignored).
    hessian_options: ClassVar[tuple[str, ...] | None] = None
    _registry: ClassVar[list[type[ModelAdapter]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.estimator_types:
            ModelAdapter._registry.append(cls)

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self.check_estimator()

    @classmethod
    def supports(cls, estimator: Any) -> bool:
        return isinstance(estimator, cls.estimator_types)

    def check_estimator(self) -> None:  # noqa: B027 - an optional hook
        """Raise ``ValueError`` when the estimator's options are unsupported."""

    @property
    def classes_(self) -> np.ndarray:
        return self.estimator.classes_

    def encode_labels(self, y: np.ndarray, *, what: str = "y") -> np.ndarray:
        """Indices of ``y`` in ``classes_``; unknown labels raise ``ValueError``."""
        return encode_labels(self.classes_, y, what=what)

    @abstractmethod
    def predict_encoded(self, X: Any) -> np.ndarray:
        """Indices in ``classes_`` of the model's predictions for ``X``."""

    @abstractmethod
    def fit(
        self,
        X: Any,
        y_encoded: np.ndarray,
        sample_weight: np.ndarray | None,
        *,
        method: str,
        hessian: str,
        damping: float,
        n_jobs: int | None,
        verbose: int = 0,
        hessian_options: dict | None = None,
        random_state: Any = None,
    ) -> ModelAdapter:
        """Compute everything that depends on the training set only."""

    @abstractmethod
    def prepare_test(self, X: Any, y_encoded: np.ndarray) -> Any:
        """Per-test-batch state, e.g. ``H^-1 g_t`` (the "s_test" vectors)."""

    @abstractmethod
    def train_chunk(self, rows: np.ndarray | slice) -> tuple:
        """Picklable payload with what :meth:`cross` needs of training ``rows``."""

    @staticmethod
    @abstractmethod
    def cross(test_state: Any, *payload: Any) -> np.ndarray:
        """``g_t^T H^-1 ĝ_i`` for the test batch and one training chunk.

        Returns an array of shape (n_test_batch, n_chunk_rows).
        """

    def test_row_bytes(self) -> int:
        """Bytes of ``prepare_test`` state per test point (for chunking)."""
        return 8

    def cross_bytes_per_pair(self) -> int:
        """Temporary bytes :meth:`cross` needs per (test, train) pair."""
        return 8


def encode_labels(classes: np.ndarray, y: Any, *, what: str = "y") -> np.ndarray:
    """Indices of ``y`` in the sorted ``classes``; unknown labels: ``ValueError``."""
    y = np.asarray(y)
    try:
        position = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
        # object comparison: elementwise even for mixed str/int labels
        known = np.asarray(
            classes[position].astype(object) == y.astype(object), dtype=bool
        )
    except TypeError:  # labels not comparable with classes_
        position, known = None, np.zeros(len(y), dtype=bool)
    if not np.all(known):
        unknown = np.unique(y[~known].astype(object))[:5]
        raise ValueError(
            f"{what} contains labels the model does not know: "
            f"{list(unknown)}. The model was trained on classes {list(classes)}."
        )
    return position


def find_adapter(estimator: Any) -> type[ModelAdapter]:
    """Adapter class for ``estimator``; ``TypeError`` lists the supported ones."""
    for adapter in ModelAdapter._registry:
        if adapter.supports(estimator):
            return adapter
    supported = sorted(
        {
            t.__name__
            for adapter in ModelAdapter._registry
            for t in adapter.estimator_types
        }
    )
    raise TypeError(
        f"{type(estimator).__name__} is not supported. InfluenceExplainer explains "
        f"{', '.join(supported)}, or a Pipeline whose last step is one of them."
    )

"""The contract between the core and a model family: :class:`ModelAdapter`.

An adapter is the mathematics of one family of fitted estimators and nothing
else. The core (:mod:`skrelatif._influence`) owns everything that is not
model-specific: which inverse-Hessian solver, the validation of ``hessian``,
``damping`` and ``hessian_options``, the method's scale, ``self_influence_``,
streaming, top-k and the :class:`~skrelatif.Explanation`.

A model trained by minimising its own objective ::

    F(theta) = c sum_i s_i l_i(theta) + 1/2 theta^T diag(p) theta

(``c`` the objective's constant, ``s_i`` sample x class weight, ``p`` the
penalty per parameter, 0 for unpenalised intercepts) is described by

- the target: :meth:`encode_target`, :meth:`decode_target`,
  :meth:`predict_target` (classifiers: indices into ``classes_``; regressors:
  float targets);
- the objective: :attr:`loss_scale` (``c``), :meth:`sample_weights`,
  :meth:`penalty`, :meth:`parameters`, :meth:`null_space`;
- per-example quantities on a chunk of rows (the final estimator's input):
  :meth:`loss_gradients` (``dl/df`` per output as a unit direction and a norm,
  computed without cancellation), :meth:`prediction_gradients` (regressors:
  the test "gradient" that explains the prediction itself), :meth:`losses`;
- the geometry of its gradients: :meth:`gradients` (dense rows for a chunk),
  :meth:`gradient_dots` (products with solved test vectors, without forming
  the training gradients), :meth:`hessian_operator` (dense blocks, matvec,
  diagonal, diagonal blocks: see :mod:`skrelatif._solvers`).

Kernel machines (``kernel_space = True``) have an identity Hessian in an
implicit feature space: they answer :meth:`gradient_dots` with kernel
evaluations and never form parameters.

Dispatch is on exact types (:func:`find_adapter`): a subclass of a supported
estimator can change the objective, so it gets the clear ``TypeError``.
Adding a model family means adding one module to this package that
subclasses :class:`ModelAdapter`; it registers itself.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from sklearn.base import is_regressor
from sklearn.utils.class_weight import compute_class_weight

from .._utils import chunk_slices

#: The scoring methods of :class:`~skrelatif.InfluenceExplainer`.
METHODS = ("if", "theta-relatif", "l-relatif", "newton")


class ModelAdapter(ABC):
    """Base class of the model adapters; concrete subclasses register themselves.

    Parameters
    ----------
    estimator : estimator instance
        The fitted final estimator (never modified).
    """

    #: Estimator classes this adapter handles (exact types).
    estimator_types: ClassVar[tuple[type, ...]] = ()
    #: The ``hessian`` options that apply to this family; the first is the one
    #: ``hessian="auto"`` means.
    hessians: ClassVar[tuple[str, ...]] = ("exact",)
    #: Whether ``damping`` applies (False: only 0 is accepted).
    accepts_damping: ClassVar[bool] = True
    #: Why other ``hessian`` / ``damping`` values do not apply (error messages).
    hessian_note: ClassVar[str] = ""
    #: True for kernel machines (identity Hessian in an implicit feature space).
    kernel_space: ClassVar[bool] = False
    #: Objectives that are a mean over the training set: ``"weights"`` for
    #: ``c = 1/sum(s)`` (GLMs), ``"rows"`` for ``c = 1/n`` (SGD, networks),
    #: None otherwise. It sets :attr:`loss_scale` and :meth:`penalty_shares`.
    mean_over: ClassVar[str | None] = None
    #: True when the outputs ``f`` are linear in theta (linear models): a
    #: Newton removal then moves them exactly by ``J delta``; otherwise
    #: (networks) the loss after it is evaluated at the updated parameters by
    #: :meth:`outputs_at` and :meth:`row_outputs_at`.
    outputs_linear_in_params: ClassVar[bool] = False
    #: False for non-convex objectives (networks): leave-one-out validation
    #: then refits from the trained weights instead of Newton iterations.
    convex: ClassVar[bool] = True
    #: What to do when the model is not at a minimum (ends the warning's sentence).
    convergence_advice: ClassVar[str] = "refit with a smaller tol or a larger max_iter"
    #: For the "Supported models" table: the objective, the loss, notes.
    objective: ClassVar[str] = ""
    loss: ClassVar[str] = ""
    notes: ClassVar[str] = ""

    _registry: ClassVar[list[type[ModelAdapter]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "estimator_types" in cls.__dict__ and cls.estimator_types:
            ModelAdapter._registry.append(cls)

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self.check_estimator()

    @classmethod
    def supports(cls, estimator: Any) -> bool:
        return type(estimator) in cls.estimator_types

    def check_estimator(self) -> None:  # noqa: B027 - an optional hook
        """Raise ``ValueError`` when the estimator's options are unsupported."""

    # -- the target ------------------------------------------------------------------
    @property
    def is_regressor(self) -> bool:
        """True for regressors (float targets; no ``classes_``), as scikit-learn
        tags the estimator."""
        return bool(is_regressor(self.estimator))

    @property
    def classes_(self) -> np.ndarray | None:
        return None if self.is_regressor else self.estimator.classes_

    def encode_target(self, y: Any, *, what: str = "y") -> np.ndarray:
        """Classifiers: indices of ``y`` in ``classes_``; regressors: floats."""
        if self.is_regressor:
            y = np.asarray(y)
            try:
                encoded = y.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{what} must be numeric for a regressor; got dtype {y.dtype}."
                ) from None
            if not np.all(np.isfinite(encoded)):
                raise ValueError(f"{what} contains NaN or infinity.")
            return encoded
        return encode_labels(self.classes_, y, what=what)

    def decode_target(self, y_encoded: np.ndarray) -> np.ndarray:
        """The labels (or target values) of encoded ``y``."""
        return y_encoded if self.is_regressor else self.classes_[y_encoded]

    @abstractmethod
    def predict_target(self, X: Any) -> np.ndarray:
        """The model's encoded predictions for ``X`` (labels or values)."""

    # -- per-example mathematics -------------------------------------------------------
    def check_training_data(self, X: Any, y_encoded: np.ndarray) -> None:  # noqa: B027
        """Raise ``ValueError`` when ``X, y`` cannot be the training data."""

    def candidates(self, X: Any, y_encoded: np.ndarray, sample_weight) -> Any:
        """Training indices that can have a non-zero score (None: all)."""
        return None

    @abstractmethod
    def loss_gradients(
        self, X: Any, y_encoded: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``dl/df`` per example as (direction (n, K), norm (n,))."""

    def prediction_gradients(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Regressors: minus the gradient of the prediction ``f(x)`` per output,
        as (direction (n, K), norm (n,)), so that a positive score means the
        training example pushes the prediction up (spec section 5)."""
        raise NotImplementedError

    @abstractmethod
    def losses(self, X: Any, y_encoded: np.ndarray) -> np.ndarray:
        """Per-example loss ``l(y_i, f(x_i))`` as the objective writes it."""

    # -- what Newton steps need (parametric families) ---------------------------
    n_outputs: int = 1

    def outputs(self, X: Any) -> np.ndarray:
        """The outputs ``f(x)`` (n, K) the loss is a function of."""
        raise NotImplementedError

    def output_losses(self, F: np.ndarray, y_encoded: np.ndarray) -> np.ndarray:
        """Per-example loss at outputs ``F`` (n, K)."""
        raise NotImplementedError

    def loss_curvature(
        self, X: Any, y_encoded: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``d²l/df² = diag(a) - b b^T`` per example, as (a, b) of shape (n, K)."""
        raise NotImplementedError

    def output_jacobian(self, X: Any) -> np.ndarray:
        """``df_k/dtheta`` per example and output: dense (n, K, P)."""
        n, K = X.shape[0], self.n_outputs
        one_hot = np.eye(K)
        return np.stack(
            [self.gradients(X, np.tile(one_hot[k], (n, 1))) for k in range(K)], axis=1
        )

    def at(self, theta: np.ndarray) -> ModelAdapter:
        """The same model with parameters ``theta`` (the estimator untouched)."""
        raise NotImplementedError

    # -- the objective -----------------------------------------------------------------
    #: The total the data term is averaged over (set by :meth:`sample_weights`).
    _mean_total: float | None = None

    @property
    def loss_scale(self) -> float:
        """``c``, the objective's constant in front of its data term: 1, or
        ``1 / sum(s)`` or ``1 / n`` for a mean (known once
        :meth:`sample_weights` has seen the training set)."""
        if self.mean_over is None:
            return 1.0
        if self._mean_total is None:
            raise RuntimeError(
                f"{type(self).__name__}.loss_scale is a mean over the training "
                "set: call sample_weights(y, sample_weight) first."
            )
        return 1.0 / self._mean_total

    def sample_weights(self, y_encoded: np.ndarray, sample_weight) -> np.ndarray:
        """``s_i``: sample weight (times class weight, where the model has one);
        records the total of a mean objective for :attr:`loss_scale`."""
        weights = (
            np.ones(len(y_encoded))
            if sample_weight is None
            else np.asarray(sample_weight, dtype=np.float64)
        )
        if self.mean_over is not None:
            self._mean_total = float(
                np.sum(weights) if self.mean_over == "weights" else len(weights)
            )
            if not self._mean_total > 0:
                raise ValueError(
                    f"The sample weights of {type(self.estimator).__name__} must "
                    f"have a positive sum; got {self._mean_total!r}."
                )
        return weights

    def penalty_shares(self, y_encoded: np.ndarray, sample_weight) -> np.ndarray | None:
        """``rho_i``: for a mean objective, removing examples ``G`` and refitting
        as scikit-learn does (averaging over the remaining rows) scales the
        penalty relative to the data term by ``1 / (1 - sum_G rho_i)``:
        ``rho_i = s_i / sum(s)`` or ``1 / n``. None for other objectives (see
        :mod:`skrelatif._removal`)."""
        if self.mean_over is None:
            return None
        if self.mean_over == "rows":
            return np.full(len(y_encoded), 1.0 / len(y_encoded))
        weights = ModelAdapter.sample_weights(self, y_encoded, sample_weight)
        return weights / weights.sum()

    # -- gradients (parametric families) ----------------------------------------
    n_params: int = 0

    def parameters(self) -> np.ndarray:
        """theta, flat, in the layout of :meth:`gradients`."""
        raise NotImplementedError

    def penalty(self) -> np.ndarray:
        """``p``: the penalty's Hessian diagonal per parameter (0: unpenalised)."""
        raise NotImplementedError

    def null_space(self) -> np.ndarray | None:
        """Orthonormal (P, m) directions along which every loss is flat and
        which are unpenalised (e.g. the common shift of softmax intercepts)."""
        return None

    def gradients(self, X: Any, coefficients: np.ndarray) -> np.ndarray:
        """Rows ``coefficients_i ⊗ (df_i/dtheta)``: dense (n, P) gradients of a
        chunk, ``coefficients`` (n, K) being ``dl/df`` (or a direction of it)."""
        raise NotImplementedError

    def gradient_dots(self, solved: Any, X: Any, direction: np.ndarray) -> np.ndarray:
        """``solved_t . ĝ_i`` for the rows of ``solved`` (m, P) and the chunk's
        training gradients ``ĝ_i = direction_i ⊗ df_i/dtheta``, shape (m, n)."""
        raise NotImplementedError

    def hessian_operator(
        self,
        X: Any,
        y_encoded: np.ndarray,
        weights: np.ndarray,
        n_jobs=None,
        curvature: str = "exact",
    ) -> Any:
        """The Hessian of ``F`` with data weights ``weights = c s`` (see
        :mod:`skrelatif._solvers` for the operator's interface);
        ``curvature="gauss-newton"``: the generalised Gauss-Newton matrix
        ``sum_i w_i J_i^T D_i J_i + diag(p)`` (the same for linear models)."""
        raise NotImplementedError

    def objective_gradient(
        self, X: Any, y_encoded: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, float]:
        """``dF/dtheta = sum_i w_i g_i + p theta`` (flat) and a size to compare
        its norm with, ``sum_i w_i ||g_i|| + ||p theta||`` (weights ``w = c s``)."""
        total = np.zeros(self.n_params)
        size = 0.0
        for rows in chunk_slices(X.shape[0], 8 * 2 * max(self.n_params, 1)):
            direction, norm = self.loss_gradients(X[rows], y_encoded[rows])
            G = self.gradients(X[rows], direction * norm[:, None])
            total += weights[rows] @ G
            size += weights[rows] @ np.linalg.norm(G, axis=1)
        step = self.penalty() * self.parameters()
        return total + step, size + float(np.linalg.norm(step))

    def loss_gradients_at(
        self, X: Any, y_encoded: np.ndarray, thetas: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``dl/df`` of each row of X at its own parameters (a row of
        ``thetas``), as :meth:`loss_gradients` gives them."""
        parts = [
            self.at(theta).loss_gradients(X[j : j + 1], y_encoded[j : j + 1])
            for j, theta in enumerate(thetas)
        ]
        return np.vstack([d for d, _ in parts]), np.concatenate([n for _, n in parts])

    def outputs_at(self, X: Any, thetas: np.ndarray) -> np.ndarray:
        """The outputs of every row of X under each row of ``thetas``:
        (b, n, K). A family can batch this (one GEMM for a linear model)."""
        return np.stack([self.at(theta).outputs(X) for theta in thetas])

    def row_outputs_at(self, X: Any, thetas: np.ndarray) -> np.ndarray:
        """The outputs of row j of X under row j of ``thetas``: (n, K). A
        family can batch this."""
        return np.vstack(
            [self.at(theta).outputs(X[j : j + 1]) for j, theta in enumerate(thetas)]
        )

    def objective_gradients(
        self,
        X: Any,
        y_encoded: np.ndarray,
        weights: np.ndarray,
        thetas: np.ndarray,
    ) -> np.ndarray:
        """``dF/dtheta`` at each row of ``thetas`` (b, P): (b, P). A family can
        batch this (the linear one makes it two GEMMs)."""
        return np.stack(
            [
                self.at(theta).objective_gradient(X, y_encoded, weights)[0]
                for theta in thetas
            ]
        )

    # -- kernel machines -------------------------------------------------------------
    def kernel_norms(self, X: Any, rows: np.ndarray) -> np.ndarray:
        """Kernel machines: ``g_i^T g_i`` of the candidates ``rows`` (may be
        negative for a kernel that is not positive semi-definite)."""
        raise NotImplementedError

    # -- chunk sizes -----------------------------------------------------------------
    def test_row_bytes(self) -> int:
        """Bytes of solved test state per test point (for chunking)."""
        return 8 * 3 * max(self.n_params, 1)

    def dot_bytes_per_pair(self) -> int:
        """Temporary bytes :meth:`gradient_dots` needs per (test, train) pair."""
        return 8


def class_weights(
    estimator: Any, y_encoded: np.ndarray, sample_weight: Any = None
) -> np.ndarray | float:
    """Each example's class weight under ``estimator.class_weight`` (1.0 when
    it has none), as scikit-learn's ``compute_class_weight`` gives it; pass
    ``sample_weight`` for the estimators whose ``"balanced"`` weights count
    sample weights (``LogisticRegression``)."""
    class_weight = getattr(estimator, "class_weight", None)
    if class_weight is None:
        return 1.0
    classes = estimator.classes_
    kwargs = {}
    if sample_weight is not None and (
        "sample_weight" in inspect.signature(compute_class_weight).parameters
    ):
        kwargs["sample_weight"] = sample_weight
    weights = compute_class_weight(
        class_weight, classes=classes, y=classes[y_encoded], **kwargs
    )
    return weights[y_encoded]


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


def supported_estimators() -> list[str]:
    """Names of every supported estimator class, sorted."""
    return sorted(
        {
            t.__name__
            for adapter in ModelAdapter._registry
            for t in adapter.estimator_types
        }
    )


def find_adapter(estimator: Any) -> type[ModelAdapter]:
    """Adapter class for ``estimator``; ``TypeError`` lists the supported ones."""
    for adapter in ModelAdapter._registry:
        if adapter.supports(estimator):
            return adapter
    raise TypeError(
        f"{type(estimator).__name__} is not supported. InfluenceExplainer explains "
        f"{', '.join(supported_estimators())}, or a Pipeline whose last step is "
        "one of them."
    )

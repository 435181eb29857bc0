"""The contract between the core and a model family.

An adapter is the mathematics of one family of fitted estimators and nothing
else. The core (:mod:`skrelatif._influence`) owns everything that is not
model-specific: the curvature, solver and damping (:mod:`skrelatif._curvature`),
the method's scale, ``self_influence_``, streaming, top-k and the
:class:`~skrelatif.Explanation`.

Every adapter (:class:`ModelAdapter`) knows the target (:meth:`encode_target`,
:meth:`decode_target`, :meth:`predict_target`: classifiers' indices into
``classes_``, regressors' floats), the per-example loss (:meth:`losses`), the
sample weights ``s_i`` and what the family declares for the documentation,
errors, the command line and retraining. It is **bound** once to its training
data (:meth:`ModelAdapter.bind`, which returns a copy: the weights, the
objective's constant and the training examples that can score are fixed
then) and never changes afterwards. It follows one of two protocols, chosen
once by the core:

- :class:`ParametricAdapter`, for a model trained by minimising its own
  objective ::

      F(theta) = c sum_i s_i l_i(theta) + 1/2 theta^T diag(p) theta

  (``c`` the objective's constant, ``p`` the penalty per parameter, 0 for
  unpenalised intercepts): gradients, curvature operators and what Newton
  steps need;
- :class:`SumAdapter`, for a model whose output is a sum over training
  examples (kernel SVMs; trees, forests, neighbours and kernel ridge next):
  the products ``g_t^T g_i`` of that sum, with an identity curvature.

Dispatch is on exact types (:func:`find_adapter`): a subclass of a supported
estimator can change the objective, so it gets the clear ``TypeError``.
Adding a model family means adding one module to this package that
subclasses one protocol; it registers itself.
"""

from __future__ import annotations

import copy
import inspect
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from sklearn.base import is_regressor
from sklearn.utils.class_weight import compute_class_weight

from .._utils import chunk_slices

#: The scoring methods of :class:`~skrelatif.InfluenceExplainer` (each family
#: answers those of its :attr:`ModelAdapter.methods`).
METHODS = ("if", "theta-relatif", "l-relatif", "newton", "boostin")


class ModelAdapter(ABC):
    """What every model adapter declares; concrete subclasses of a protocol
    (:class:`ParametricAdapter`, :class:`SumAdapter`) register themselves.

    Parameters
    ----------
    estimator : estimator instance
        The fitted final estimator (never modified).
    """

    #: Estimator classes this adapter handles (exact types).
    estimator_types: ClassVar[tuple[type, ...]] = ()
    #: The curvature matrices (``hessian=``) of this family, each mapped to
    #: the operator methods its ``hessian_operator`` provides (what the
    #: solvers need, see :mod:`skrelatif._solvers`); the first is the one
    #: ``hessian="auto"`` means. ``"identity"`` needs none and is implied.
    #: Empty for models explained as a sum over training examples.
    curvatures: ClassVar[dict[str, frozenset[str]]] = {}
    #: A note on the family's curvature for error messages.
    curvature_note: ClassVar[str] = ""
    #: What to do when the curvature cannot be inverted (ends the error).
    singular_advice: ClassVar[str] = (
        "Pass damping > 0 (for example damping=1e-3) or hessian='identity'."
    )
    #: False for non-convex objectives (networks): leave-one-out validation
    #: then refits from the trained weights instead of Newton iterations.
    convex: ClassVar[bool] = True
    #: What the training examples that can score are called (errors).
    candidate_name: ClassVar[str] = "training examples"
    #: What to do when the model is not at a minimum (ends the warning's sentence).
    convergence_advice: ClassVar[str] = "refit with a smaller tol or a larger max_iter"
    #: The methods this family answers (the core refuses the others before
    #: any work).
    methods: ClassVar[tuple[str, ...]] = ("if", "theta-relatif", "l-relatif", "newton")
    #: What :meth:`decompose` sums to, in words (e.g. ``"decision_function"``);
    #: empty when the family offers no decomposition over training examples.
    decomposes: ClassVar[str] = ""
    #: True: validation retrains a clone set to converge tightly from the
    #: fitted model (``tol``, ``max_iter``, ``warm_start``,
    #: :meth:`retraining_updates`); False: a plain clone with the same
    #: parameters (trees, forests, neighbours: their fit has no tolerance).
    tight_retraining: ClassVar[bool] = True
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

    @abstractmethod
    def losses(self, X: Any, y_encoded: np.ndarray) -> np.ndarray:
        """Per-example loss ``l(y_i, f(x_i))`` as the objective writes it."""

    # -- the training data -------------------------------------------------------------
    def check_training_data(self, X: Any, y_encoded: np.ndarray) -> None:  # noqa: B027
        """Raise ``ValueError`` when ``X, y`` cannot be the training data."""

    def sample_weights(self, y_encoded: np.ndarray, sample_weight) -> np.ndarray:
        """``s_i``: sample weight (times class weight, where the model has one)."""
        if sample_weight is None:
            return np.ones(len(y_encoded))
        return np.asarray(sample_weight, dtype=np.float64)

    def bind(self, X: Any, y_encoded: np.ndarray, sample_weight: Any) -> ModelAdapter:
        """A copy of this adapter bound to its training data (this one is left
        as it is). The bound copy holds ``X_``, ``y_``, ``sample_weight_``
        (``s_i``), ``weight_total_`` (``sum_i s_i``), ``n_train_`` and
        ``candidates_`` (the training indices that can score; None: all), and
        whatever the protocol fixes then (:meth:`_bind`); nothing changes them
        afterwards."""
        self.check_training_data(X, y_encoded)
        bound = copy.copy(self)
        bound.X_, bound.y_, bound.n_train_ = X, y_encoded, X.shape[0]
        bound.sample_weight_ = self.sample_weights(y_encoded, sample_weight)
        bound.weight_total_ = float(np.sum(bound.sample_weight_))
        bound.candidates_ = None
        bound._bind(X, y_encoded, sample_weight)
        return bound

    def _bind(self, X: Any, y_encoded: np.ndarray, sample_weight: Any) -> None:  # noqa: B027
        """Protocol hook of :meth:`bind` (on the bound copy)."""

    def _bound(self, name: str) -> Any:
        """The bound attribute ``name``; ``RuntimeError`` before :meth:`bind`."""
        try:
            return self.__dict__[name]
        except KeyError:
            raise RuntimeError(
                f"{type(self).__name__}.{name} is known once the adapter is bound "
                "to its training data: call bind(X, y_encoded, sample_weight)."
            ) from None

    # -- retraining (skrelatif.validation) -------------------------------------------
    def retraining_updates(self, params: dict, small: bool) -> dict:
        """Parameter updates beyond ``tol``, ``max_iter`` and ``warm_start``
        that make a clone of the estimator retrain to a tight optimum of the
        same objective (``params``: its ``get_params()``; ``small``: few
        enough parameters for Newton-type solvers)."""
        return {}

    @staticmethod
    def warm_started(estimator: Any, init: Any) -> Any:
        """``estimator`` (an unfitted clone) set to start from the fitted
        ``init``: its ``coef_`` and ``intercept_`` copied."""
        for name in ("coef_", "intercept_"):
            if hasattr(init, name):
                setattr(estimator, name, np.array(getattr(init, name), copy=True))
        return estimator

    # -- decomposition (spec section 9) ------------------------------------------
    def decompose(self, X: Any) -> np.ndarray:
        """Contributions (n_test, n_train) or (n_test, n_train, K) whose sum
        over training examples plus ``baseline_`` is the raw output named by
        :attr:`decomposes`; only where that attribute is set."""
        raise NotImplementedError

    # -- chunk sizes -----------------------------------------------------------------
    def test_row_bytes(self) -> int:
        """Bytes of test state per test point (for chunking)."""
        return 8 * 64

    def dot_bytes_per_pair(self) -> int:
        """Temporary bytes of a cross product per (test, train) pair."""
        return 8


class ParametricAdapter(ModelAdapter):
    """A model trained by minimising its own objective over parameters
    ``theta`` (see the module docstring): gradients, curvature, Newton steps.

    Per-example quantities come on a chunk of rows (the final estimator's
    input): :meth:`loss_gradients` (``dl/df`` per output as a unit direction
    and a norm, computed without cancellation), :meth:`prediction_gradients`
    (regressors: the test "gradient" that explains the prediction itself); the
    geometry of the gradients: :meth:`gradients` (dense rows for a chunk),
    :meth:`gradient_dots` (products with solved test vectors, without forming
    the training gradients), :meth:`hessian_operator` (the curvature
    operators the solvers use, per :attr:`curvatures`).
    """

    #: Objectives that are a mean over the training set: ``"weights"`` for
    #: ``c = 1/sum(s)`` (GLMs), ``"rows"`` for ``c = 1/n`` (SGD), None
    #: otherwise. It sets :attr:`loss_scale` and :meth:`penalty_shares`.
    mean_over: ClassVar[str | None] = None
    #: True when the outputs ``f`` are linear in theta (linear models): a
    #: Newton removal then moves them exactly by ``J delta``; otherwise
    #: (networks) the loss after it is evaluated at the updated parameters by
    #: :meth:`outputs_at` and :meth:`row_outputs_at`.
    outputs_linear_in_params: ClassVar[bool] = False

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
    @property
    def loss_scale(self) -> float:
        """``c``, the objective's constant in front of its data term: 1, or
        ``1 / sum(s)`` or ``1 / n`` for a mean (:attr:`mean_over`; known once
        bound)."""
        if self.mean_over is None:
            return 1.0
        if self.mean_over == "rows":
            return 1.0 / self._bound("n_train_")
        return 1.0 / self._bound("weight_total_")

    def _bind(self, X, y_encoded, sample_weight) -> None:
        if self.mean_over == "weights" and not self.weight_total_ > 0:
            raise ValueError(
                f"The sample weights of {type(self.estimator).__name__} must "
                f"have a positive sum; got {self.weight_total_!r}."
            )

    def penalty_shares(self) -> np.ndarray | None:
        """``rho_i``: for a mean objective, removing examples ``G`` and refitting
        as scikit-learn does (averaging over the remaining rows) scales the
        penalty relative to the data term by ``1 / (1 - sum_G rho_i)``:
        ``rho_i = s_i / sum(s)`` (sample weights only) or ``1 / n``. None for
        other objectives (see :mod:`skrelatif._removal`)."""
        if self.mean_over is None:
            return None
        if self.mean_over == "rows":
            n = self._bound("n_train_")
            return np.full(n, 1.0 / n)
        weights = self._bound("sample_weight_")
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

    def curvature_costs(self, X: Any, curvature: str) -> dict:
        """What the solvers' cost estimates need to know of the curvature on
        training data X (:class:`~skrelatif._solvers.ProblemSize`):
        ``dense_flops``, ``dense_sparse``, ``matvec_flops``, ``matvec_sparse``
        and, where the operator has diagonal blocks, ``block_sizes`` and
        ``block_flops``."""
        n, P = X.shape[0], self.n_params
        return dict(
            dense_flops=float(n) * P**2,
            dense_sparse=False,
            matvec_flops=6.0 * n * P,
            matvec_sparse=False,
        )

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

    # -- chunk sizes -----------------------------------------------------------------
    def test_row_bytes(self) -> int:
        return 8 * 3 * max(self.n_params, 1)


class SumAdapter(ModelAdapter):
    """A model whose output is a sum over its training examples (kernel SVMs,
    trees, forests, neighbours, kernel ridge).

    Every method's score factorises as ::

        score[t, i] = cross(test_state_t, payload_i) * train_scale[i]

    over the candidates ``i`` (every other example scores 0). By default the
    family is explained with an identity curvature in the space of that sum
    (kernel SVMs: Barshan et al. 2020, appendix F): ``cross = g_t^T g_i``
    (:meth:`test_state`, :meth:`payload`, :meth:`cross`), ``train_scale`` 1
    for ``"if"`` and ``1 / sqrt(|g_i^T g_i|)`` for RelatIF
    (:meth:`self_products`). A family with other normalisers overrides
    :meth:`train_scale` and :meth:`self_influence`, and one with several kinds
    of products :meth:`cross_function`.

    A family that lists ``"newton"`` in :attr:`methods` removes examples
    exactly with its structure fixed (spec section 9): :meth:`outputs`,
    :meth:`output_losses`, :meth:`removal_outputs` and :meth:`loo_outputs`,
    from which the core builds ``loo_loss_`` and ``predict_removal``; its
    ``"newton"`` score is ``l_t`` after the removal minus ``l_t`` now, from
    its own :meth:`test_state`/:meth:`payload`/:meth:`cross_function`.
    """

    methods: ClassVar[tuple[str, ...]] = ("if", "theta-relatif", "l-relatif")
    n_outputs: int = 1

    def _bind(self, X, y_encoded, sample_weight) -> None:
        self.candidates_ = self._candidates(X, y_encoded, sample_weight)

    @abstractmethod
    def _candidates(self, X: Any, y_encoded: np.ndarray, sample_weight) -> np.ndarray:
        """The sorted training indices that can score, or None for all (on the
        bound copy: it may keep what it learns of the training data)."""

    def _candidate_rows(self) -> np.ndarray:
        rows = self._bound("candidates_")
        return np.arange(self.n_train_) if rows is None else rows

    @abstractmethod
    def self_products(self, rows: np.ndarray) -> np.ndarray:
        """``g_i^T g_i`` of the candidates ``rows`` (may be negative for a
        kernel that is not positive semi-definite)."""

    def train_scale(self, method: str) -> np.ndarray:
        """(n_train,) factor of each training example's scores: 1 (``"if"``,
        ``"newton"``) or ``1 / sqrt(|g_i^T g_i|)`` (RelatIF, 0 where that is
        0) on the candidates, 0 elsewhere."""
        rows = self._candidate_rows()
        scale = np.zeros(self.n_train_)
        if method in ("theta-relatif", "l-relatif"):
            norms = np.sqrt(np.abs(self.self_products(rows)))
            scale[rows] = np.divide(
                1.0, norms, out=np.zeros_like(norms), where=norms > 0
            )
        else:
            scale[rows] = 1.0
        return scale

    def self_influence(self) -> np.ndarray:
        """(n_train,) each example's ``"if"`` score for itself (0 for
        non-candidates)."""
        rows = self._candidate_rows()
        influence = np.zeros(self.n_train_)
        influence[rows] = self.self_products(rows)
        return influence

    @abstractmethod
    def test_state(
        self, X: Any, y_encoded: np.ndarray | None, method: str = "if"
    ) -> Any:
        """Picklable state of a test batch for the method's cross function
        (``y_encoded`` None: a regressor's prediction is explained)."""

    @abstractmethod
    def payload(self, rows: slice | np.ndarray, method: str = "if") -> tuple:
        """Picklable state of the training ``rows`` (candidates) for the
        method's cross function."""

    def cross_function(self, method: str):
        """The picklable ``cross(test_state, *payload)`` of ``method``,
        (n_test_batch, n_rows) (default: :meth:`cross`)."""
        return self.cross

    @staticmethod
    def cross(test_state: Any, *payload: Any) -> np.ndarray:
        """``g_t^T g_i``, shape (n_test_batch, n_rows)."""
        raise NotImplementedError

    # -- exact removal with the structure fixed ("newton" in methods) ------------
    def outputs(self, X: Any) -> np.ndarray:
        """The raw outputs (n, K) the loss is a function of."""
        raise NotImplementedError

    def output_losses(self, F: np.ndarray, y_encoded: np.ndarray) -> np.ndarray:
        """Per-example loss at outputs ``F`` (n, K)."""
        raise NotImplementedError

    def removal_outputs(self, X: Any, groups: list[np.ndarray]) -> np.ndarray:
        """(n_test, n_groups, K): the outputs of X once each group (an int
        array of training rows) is removed, the structure fixed."""
        raise NotImplementedError

    def loo_outputs(self) -> np.ndarray:
        """(n_train, K): each training example's outputs once it is removed."""
        raise NotImplementedError


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


def decomposing_estimators() -> list[str]:
    """Names of the estimator classes whose output :meth:`ModelAdapter.decompose`
    offers as a sum over training examples, sorted."""
    return sorted(
        {
            t.__name__
            for adapter in ModelAdapter._registry
            if adapter.decomposes
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

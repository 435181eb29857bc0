"""Adapter for support vector machines: :class:`~sklearn.svm.SVC`,
:class:`~sklearn.svm.NuSVC` (every kernel) and :class:`~sklearn.svm.LinearSVC`.

Binary scores (Barshan et al. 2020, appendix F)
-----------------------------------------------
A soft-margin SVM minimises ``1/2 ||w||^2 + C sum_i hinge(y_i f(x_i))`` with
``f(x) = w . phi(x) + b`` and ``y`` in {-1, +1} (+1 is ``classes_[1]``, the
class of a positive ``decision_function``). The hinge loss has no curvature,
so the Hessian of the objective in the feature space is the identity, and the
loss gradient of example ``i`` is ``-y_i phi(x_i)`` when the example is on or
inside the margin (a *support vector*) and zero otherwise. The influence
function ``g_t^T H^-1 g_i`` is therefore ::

    "if"            score[t, i] = y_i y_t K(x_i, x_t)      (i a support vector)
    "theta-relatif" score[t, i] = y_i y_t K(x_i, x_t) / sqrt(K(x_i, x_i))
    "l-relatif"     score[t, i] = the same as "theta-relatif"

and 0 for every other training example. ``K(x_i, x_i) = ||phi(x_i)||^2``, so
RelatIF is the influence function evaluated as if every support vector were a
unit vector in feature space: ``||H^-1 g_i|| = sqrt(g_i^T H^-1 g_i)``, which
is why both RelatIF methods coincide. As in appendix F the constant ``C`` and
the sample and class weights are left out: they only decide which examples are
support vectors. Examples of sample weight 0 are never support vectors; pass
``fit`` the model's ``sample_weight``, since libsvm drops those examples and
``support_`` then indexes the remaining ones. The test gradient is
``-y_t phi(x_t)`` whatever the test point's margin, and a positive score means
the example supports the explained label (a proponent).
``self_influence_[i] = K(x_i, x_i)`` for support vectors (the ``"if"`` formula
with ``t = i``), 0 for the others.

Kernels are those of the fitted model, with its own fitted parameters
(``gamma`` resolved from ``"scale"``/``"auto"``, ``degree``, ``coef0``); a
callable kernel is called on (test rows, support vectors); with
``kernel="precomputed"`` the X given to ``fit`` is the training Gram matrix
(``K(x_i, x_i)`` is its diagonal) and a test "X" is the (n_test, n_train)
kernel between test and training points, as for :meth:`SVC.predict`.
Kernels that are not positive semi-definite (``"sigmoid"``, ``"poly"`` with a
negative ``coef0``, some precomputed or callable ones) can have
``K(x_i, x_i) <= 0``. RelatIF then divides by ``sqrt(|K(x_i, x_i)|)``, and an
example with ``K(x_i, x_i) = 0`` scores 0 (for a positive semi-definite kernel
its feature vector, hence every ``K(x_i, x)``, is zero), so no score is NaN.
``self_influence_`` keeps its definition (the ``"if"`` score of an example for
itself, ``n_i K(x_i, x_i)``), which is then negative where ``K(x_i, x_i) < 0``:
not a squared norm, and no longer a measure of how unusual the example is.

:class:`~sklearn.svm.LinearSVC` is the same with the explicit linear kernel
of liblinear's augmented input ``[x, intercept_scaling]`` (liblinear
penalises the intercept as the weight of that constant feature), i.e.
``K(x, x') = x . x' + intercept_scaling^2`` (``x . x'`` without intercept).
Its support vectors are the training examples with margin
``y_i f(x_i) <= 1 + MARGIN_TOLERANCE``, computed from the fitted model. The
loss (``"hinge"`` or ``"squared_hinge"``) only changes which examples those
are. The L1 penalty and ``multi_class="crammer_singer"`` are not supported.

Multiclass: combining the binary machines
-----------------------------------------
:class:`~sklearn.svm.SVC` and :class:`~sklearn.svm.NuSVC` train one binary
machine per pair of classes (one-vs-one), each with its own ``w_ab``;
:class:`~sklearn.svm.LinearSVC` trains one machine per class (one-vs-rest). Stack
the machines' weights into one parameter vector: the objective is the sum of
the binary objectives, so its Hessian is still the identity. Explaining label
``c`` for a test point means treating it as labelled ``c`` by every machine
that gives class ``c`` a side: the test loss is the sum of those machines'
hinge losses, with ``y_t = +1`` on the side of ``c``. One-vs-one, these are the
``n_classes - 1`` machines ``(c, j)``; one-vs-rest, all of them (``c`` is +1 for
machine ``c`` and -1 for the others). Example ``i`` has a gradient in machine
``k`` only if it is a support vector of that machine (a non-zero
``dual_coef_`` of that machine for SVC; margin ``<= 1`` for LinearSVC), so ::

    g_t^T g_i = m_c(i) K(x_i, x_t),   m_c(i) = sum_k [i SV of k] y_t^(k) y_i^(k)
    ||g_i||^2 = n_i K(x_i, x_i),      n_i    = number of machines where i is an SV

and the scores are ``"if"`` = ``m_c(i) K(x_i, x_t)`` and RelatIF =
``m_c(i) K(x_i, x_t) / sqrt(n_i K(x_i, x_i))``; ``self_influence_[i] =
n_i K(x_i, x_i)`` (``m`` with ``t = i`` explained as its own label). One-vs-one,
``m_c(i) = n_i`` for support vectors of class ``c`` (proponents) and ``-1`` or 0
for those of another class ``j``, depending on whether ``i`` is a support
vector of machine ``(c, j)``. With two classes there is a single machine,
``n_i = 1`` and ``m_c(i) = y_i y_t``: exactly the binary scores.

In scikit-learn's ``dual_coef_`` (shape ``(n_classes - 1, n_SV)``, support
vectors grouped by class), the coefficient of a support vector of class ``j``
in machine ``(j, m)`` is in row ``m - (m > j)``.

Only support vectors are ever scored (``candidates_``); kernel evaluations are
between test points and support vectors, in chunks sized by ``working_memory``.

Decomposition
-------------
An SVC's decision function is a sum over its support vectors (the dual
solution, scikit-learn's ``dual_coef_`` and ``intercept_``). Binary ::

    decision_function(x) = intercept_ + sum_i dual_coef_[0, i] K(x_i, x)

so ``decompose(X)`` has shape (n_test, n_train), ``dual_coef_[0, i] K(x_i, x_t)``
for support vector ``i`` and 0 for every other example, and ``baseline_`` is
the float ``intercept_[0]``. Multiclass, one decomposition per one-vs-one
machine ``(a, b)`` (``a < b``, in scikit-learn's order (0, 1), (0, 2), ...,
(1, 2), ...): shape (n_test, n_train, n_classes (n_classes - 1) / 2), summing
with ``baseline_ = intercept_`` to ``decision_function`` of the model with
``decision_function_shape="ovo"`` (the default ``"ovr"`` shape is a
non-linear vote over these machines, not a sum). In machine ``(a, b)`` a
support vector of class ``a`` has coefficient ``dual_coef_[b - 1, i]``, one of
class ``b`` ``dual_coef_[a, i]``, every other example 0.
:class:`~sklearn.svm.LinearSVC` does not store its dual coefficients, so it
has no decomposition (a clear error).
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
from scipy import sparse
from sklearn import get_config
from sklearn.metrics.pairwise import (
    linear_kernel,
    polynomial_kernel,
    rbf_kernel,
    sigmoid_kernel,
)
from sklearn.svm import SVC, LinearSVC, NuSVC
from sklearn.utils.extmath import row_norms

from .._utils import caller_stacklevel, chunk_slices, parallel_map
from ._base import SumAdapter

#: LinearSVC: training examples with margin ``y_i f(x_i) <= 1 + MARGIN_TOLERANCE``
#: are its support vectors (liblinear stops with margins within its ``tol``).
MARGIN_TOLERANCE = 1e-3

#: Number of support vectors used to check a callable or precomputed kernel
#: model against the X given to ``fit``.
_N_CHECKED = 64


def _kernel(A: Any, B: Any, kernel: Any, params: dict) -> np.ndarray:
    """Dense kernel matrix ``K(a, b)`` for the rows of ``A`` and ``B``.

    With ``kernel="precomputed"``, ``A`` is already a kernel matrix against the
    training set and ``B`` is the array of training indices (its columns).
    """
    if callable(kernel):
        K = kernel(A, B)
    elif kernel == "precomputed":
        K = A[:, B]
    elif kernel == "linear":  # x . x' (+ intercept_scaling^2 for LinearSVC)
        K = linear_kernel(A, B) + params.get("offset", 0.0)
    elif kernel == "poly":  # (gamma x . x' + coef0)^degree
        K = polynomial_kernel(
            A, B, degree=params["degree"], gamma=params["gamma"], coef0=params["coef0"]
        )
    elif kernel == "rbf":  # exp(-gamma ||x - x'||^2)
        K = rbf_kernel(A, B, gamma=params["gamma"])
    elif kernel == "sigmoid":  # tanh(gamma x . x' + coef0)
        K = sigmoid_kernel(A, B, gamma=params["gamma"], coef0=params["coef0"])
    else:  # pragma: no cover - scikit-learn validates the kernel at fit
        raise ValueError(f"Unknown kernel {kernel!r}.")
    if sparse.issparse(K):
        K = K.toarray()
    return np.asarray(K, dtype=np.float64)


def _callable_diagonal(kernel: Any, X: Any) -> np.ndarray:
    """``K(x_i, x_i)`` for the rows of ``X`` from a (b, b) block of a callable."""
    return np.diagonal(_kernel(X, X, kernel, {})).copy()


def _kernel_diagonal(
    X: Any, rows: np.ndarray, kernel: Any, params: dict, n_jobs: int | None
) -> np.ndarray:
    """``K(x_i, x_i)`` for the training ``rows``, without any (n, n) matrix."""
    if kernel == "precomputed" and not callable(kernel):
        diagonal = X[rows, rows]
        return np.asarray(diagonal, dtype=np.float64).ravel()
    if callable(kernel):
        # Blocks of b x b kernel values under working_memory.
        block = int(max(1, np.sqrt(get_config()["working_memory"] * 2**20 / 8)))
        chunks = [rows[start : start + block] for start in range(0, len(rows), block)]
        parts = parallel_map(
            _callable_diagonal, ((kernel, X[chunk]) for chunk in chunks), n_jobs=n_jobs
        )
        return np.concatenate([np.zeros(0), *parts])
    squared = row_norms(X[rows], squared=True)  # ||x_i||^2
    if kernel == "linear":
        return squared + params.get("offset", 0.0)
    if kernel == "poly":
        return (params["gamma"] * squared + params["coef0"]) ** params["degree"]
    if kernel == "rbf":
        return np.ones(len(rows))
    return np.tanh(params["gamma"] * squared + params["coef0"])  # sigmoid


def _dense(A: Any) -> np.ndarray:
    return A.toarray() if sparse.issparse(A) else np.asarray(A)


class SVMAdapter(SumAdapter):
    """Support-vector influence (appendix F of Barshan et al. 2020).

    See the module docstring for the formulas and the multiclass rule.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.svm import SVC
    >>> from skrelatif import InfluenceExplainer
    >>> X = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 0.0], [3.0, 1.0]])
    >>> y = np.array([0, 0, 1, 1])
    >>> model = SVC(kernel="rbf", gamma=0.5).fit(X, y)
    >>> explainer = InfluenceExplainer(model, method="if").fit(X, y)

    The scores are ``y_i y_t exp(-0.5 ||x_i - x_t||^2)`` for the four support
    vectors: the two examples of the predicted class 1 are proponents.

    >>> explainer.transform([[2.5, 0.5]]).round(3)
    array([[-0.039, -0.105,  0.779,  0.779]])
    """

    estimator_types = (SVC, NuSVC, LinearSVC)
    candidate_name = "support vectors"
    curvature_note = (
        "its influence scores (Barshan et al. 2020, appendix F) use the Hessian of "
        "the SVM objective, which is the identity in the kernel's feature space "
        "(the hinge loss has no curvature): there is nothing to choose or "
        "approximate, and damping would only rescale the 'if' scores"
    )
    decomposes = (
        "decision_function (SVC, NuSVC; one column per one-vs-one machine "
        "when multiclass)"
    )
    objective = "1/2 ||w||^2 + C sum_i s_i hinge(y_i f(x_i)) (feature space)"
    loss = "hinge (support vectors only)"
    notes = (
        "every kernel incl. precomputed and callables; multiclass one-vs-one "
        "(SVC, NuSVC) or one-vs-rest (LinearSVC)"
    )

    def check_estimator(self) -> None:
        est = self.estimator
        if not isinstance(est, LinearSVC):
            return
        if est.penalty != "l2":
            raise ValueError(
                f"LinearSVC with penalty={est.penalty!r} is not supported: the "
                "support-vector influence assumes the L2 penalty 1/2 ||w||^2. "
                "Refit it with penalty='l2' (the default)."
            )
        if est.multi_class != "ovr":
            raise ValueError(
                f"LinearSVC with multi_class={est.multi_class!r} is not supported; "
                "refit it with multi_class='ovr' (the default)."
            )

    # -- the model -------------------------------------------------------------------
    @property
    def kernel(self) -> tuple[Any, dict]:
        """``(kernel, parameters)`` of the fitted model, as :func:`_kernel` takes."""
        est = self.estimator
        if isinstance(est, LinearSVC):
            # liblinear's input is [x, intercept_scaling]: x . x' + intercept_scaling^2.
            offset = float(est.intercept_scaling) ** 2 if est.fit_intercept else 0.0
            return "linear", {"offset": offset}
        params = {"gamma": float(est._gamma), "degree": est.degree, "coef0": est.coef0}
        return est.kernel, params

    def predict_target(self, X: Any) -> np.ndarray:
        return self.encode_target(self.estimator.predict(X), what="the predictions")

    def _svc_machines(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One-vs-one machines of SVC/NuSVC, per support vector (in ``support_`` order).

        Returns the support indices, their classes, ``m`` of shape
        (n_SV, n_classes) with ``m[i, c] = m_c(i)`` and ``n_i``.
        """
        est = self.estimator
        n_classes = len(est.classes_)
        support = np.asarray(est.support_)
        sv_class = np.repeat(np.arange(n_classes), est.n_support_)
        in_machine = _dense(est.dual_coef_) != 0  # (n_classes - 1, n_SV)
        # Row r of the column of a support vector of class j belongs to the
        # machine (j, r + (r >= j)).
        row = np.arange(n_classes - 1)
        other = row[None, :] + (row[None, :] >= sv_class[:, None])
        n_active = in_machine.sum(axis=0)
        m = np.zeros((len(support), n_classes))
        # y_t y_i = -1 in machine (c, j) for a support vector of class j != c ...
        np.put_along_axis(m, other, -in_machine.T.astype(float), axis=1)
        # ... and +1 in each of its n_i machines for a support vector of class c.
        m[np.arange(len(support)), sv_class] = n_active
        return support, sv_class, m, n_active

    def _linear_svc_machines(
        self, X: Any, y_encoded: np.ndarray, sample_weight: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The same for LinearSVC, whose support vectors are found from margins
        (examples of weight 0 have no loss, so they are never support vectors)."""
        est = self.estimator
        n_classes = len(est.classes_)
        # side[k, c]: y^(k) of class c in machine k; binary: one machine, in
        # which classes_[1] is +1.
        if n_classes > 2:
            side = 2.0 * np.eye(n_classes) - 1.0
        else:
            side = np.array([[-1.0, 1.0]])
        coef, intercept = np.asarray(est.coef_), np.asarray(est.intercept_)
        active = np.zeros((X.shape[0], side.shape[0]), dtype=bool)
        for rows in chunk_slices(X.shape[0], 8 * 2 * (side.shape[0] + 1)):
            decision = np.asarray(X[rows] @ coef.T) + intercept  # f_k(x_i)
            margin = side[:, y_encoded[rows]].T * decision  # y_i^(k) f_k(x_i)
            active[rows] = margin <= 1 + MARGIN_TOLERANCE
            if sample_weight is not None:
                active[rows] &= (sample_weight[rows] > 0)[:, None]
        support = np.flatnonzero(active.any(axis=1))
        sv_class = y_encoded[support]
        signed = active[support] * side[:, sv_class].T  # [i SV of k] y_i^(k)
        m = signed @ side  # sum_k [i SV of k] y_i^(k) y_c^(k)
        return support, sv_class, m, active[support].sum(axis=1)

    # -- the training set ------------------------------------------------------------
    def _candidates(self, X, y_encoded, sample_weight):
        """The support vectors (sorted training indices); the bound copy also
        keeps ``signs_`` (``m``, one column per class), ``n_machines_``
        (``n_i``) and ``kernel_``."""
        self.kernel_ = self.kernel
        if isinstance(self.estimator, LinearSVC):
            support, sv_class, m, n_active = self._linear_svc_machines(
                X, y_encoded, sample_weight
            )
            if support.size == 0:
                raise ValueError(
                    "No training example is on or inside the margin of the "
                    "LinearSVC: it has no support vectors on the X, y given to fit. "
                    "Pass the data the model was trained on."
                )
        else:
            support, sv_class, m, n_active = self._svc_machines()
            support = self._training_support(
                X, y_encoded, support, sv_class, sample_weight
            )
        # Support vectors in increasing training index (the scoring's chunks).
        order = np.argsort(support, kind="stable")
        if isinstance(self.estimator, LinearSVC):
            self.dual_ = None
            self.baseline_ = np.asarray(self.estimator.intercept_, dtype=float)
        else:
            self.dual_ = self._machine_coefficients(sv_class)[order]
            intercept = np.asarray(self.estimator.intercept_, dtype=float)
            self.baseline_ = float(intercept[0]) if intercept.size == 1 else intercept
        self.signs_ = m[order]
        self.n_machines_ = n_active[order]  # n_i
        self.support_ = support[order]
        return self.support_

    def self_products(self, rows):
        """``g_i^T g_i = n_i K(x_i, x_i)`` for the support vectors ``rows``."""
        kernel, params = self.kernel_
        diagonal = _kernel_diagonal(self.X_, rows, kernel, params, None)
        if not np.all(np.isfinite(diagonal)):
            raise ValueError(
                f"The kernel of the {type(self.estimator).__name__} gives non-finite "
                "values K(x_i, x_i) on the training data."
            )
        return self.n_machines_ * diagonal

    def _machine_coefficients(self, sv_class: np.ndarray) -> np.ndarray:
        """(n_SV, n_machines) dual coefficient of each support vector (in
        ``support_`` order) in each one-vs-one machine (module docstring)."""
        est = self.estimator
        n_classes = len(est.classes_)
        dual = _dense(est.dual_coef_)
        machines = [(a, b) for a in range(n_classes) for b in range(a + 1, n_classes)]
        out = np.zeros((len(sv_class), len(machines)))
        for m, (a, b) in enumerate(machines):
            out[sv_class == a, m] = dual[b - 1, sv_class == a]
            out[sv_class == b, m] = dual[a, sv_class == b]
        return out

    def decompose(self, X):
        """``dual_coef K(x_i, x_t)`` per support vector and machine (module
        docstring): (n_test, n_train), or (n_test, n_train, n_machines)."""
        if self._bound("dual_") is None:
            raise ValueError(
                "LinearSVC does not store its dual coefficients, so its decision "
                "function is not offered as a sum over training examples; "
                "decompose works for SVC and NuSVC (an SVC(kernel='linear') is "
                "the same model with its dual)."
            )
        kernel, params = self.kernel_
        out = np.zeros((X.shape[0], self.n_train_, self.dual_.shape[1]))
        chunks = chunk_slices(len(self.support_), 8 * 2 * X.shape[0])
        for rows in chunks:
            support = self.support_[rows]
            precomputed = isinstance(kernel, str) and kernel == "precomputed"
            B = support if precomputed else self.X_[support]
            K = _kernel(X, B, kernel, params)
            out[:, support] = K[:, :, None] * self.dual_[rows][None]
        return out[:, :, 0] if out.shape[2] == 1 else out

    def losses(self, X, y_encoded):
        """The hinge loss ``max(0, 1 - y f)`` of a binary machine."""
        if len(self.classes_) != 2:
            raise ValueError(
                f"The loss of a multiclass {type(self.estimator).__name__} is a sum "
                "over its binary machines, which retraining does not reproduce; "
                "leave-one-out validation supports binary SVMs only."
            )
        margin = np.where(y_encoded == 1, 1.0, -1.0) * self.estimator.decision_function(
            X
        )
        return np.maximum(0.0, 1.0 - margin)

    def _training_support(self, X, y_encoded, support, sv_class, sample_weight):
        """Training indices of the SVC's support vectors; warns when the model
        does not match ``X, y``."""
        est = self.estimator
        name = type(est).__name__
        if support.size and support.max() >= X.shape[0]:
            raise ValueError(
                f"{name} was fitted on {int(est.shape_fit_[0])} samples and has "
                f"support vectors up to index {support.max()}, but X has "
                f"{X.shape[0]} rows. Pass the data the model was trained on."
            )
        problem = self._mismatch(X, y_encoded, support, sv_class)
        kept = None if sample_weight is None else np.flatnonzero(sample_weight > 0)
        if problem is not None and kept is not None and len(kept) < X.shape[0]:
            # libsvm drops the examples of weight 0, and support_ then indexes
            # the remaining ones (scikit-learn PR #27763).
            if support.size and support.max() < len(kept):
                shifted = kept[support]
                if np.all(y_encoded[shifted] == sv_class):
                    support = shifted
                    problem = self._mismatch(X, y_encoded, support, sv_class)
                    if problem is not None:
                        problem += (
                            " (with examples of sample weight 0, scikit-learn's "
                            f"{name} mis-indexes its support vectors; drop those "
                            "examples and refit)"
                        )
        if problem is not None:
            warnings.warn(
                f"The {name} does not match the X (and y) given to fit: {problem}. "
                "Its support vectors index the training data: pass exactly the X, "
                "y (and sample_weight) the model was trained on, in the same order.",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        return support

    def _mismatch(self, X, y_encoded, support, sv_class) -> str | None:
        """Why the support vectors ``X[support]`` are not the model's, or None."""
        est = self.estimator
        n_fit = int(est.shape_fit_[0])
        problem = None
        if X.shape[0] != n_fit:
            problem = f"X has {X.shape[0]} rows, but the model was fitted on {n_fit}"
        elif np.any(y_encoded[support] != sv_class):
            problem = "y differs from the classes of the model's support vectors"
        elif est.kernel == "precomputed" and not callable(est.kernel):
            checked = support[:_N_CHECKED]
            block = _dense(X[checked][:, checked])
            if not np.allclose(block, block.T):
                problem = "X is not the symmetric Gram matrix of the training data"
        elif callable(est.kernel):
            if not self._decision_matches(X, support):
                problem = (
                    "the model's decision function on its support vectors differs "
                    "from the one computed from X"
                )
        else:
            # support_vectors_ are the rows support_ of the training data.
            for rows in chunk_slices(len(support), 8 * 3 * X.shape[1]):
                actual = _dense(est.support_vectors_[rows])
                if not np.allclose(actual, _dense(X[support[rows]])):
                    problem = "its support_vectors_ are not the rows support_ of X"
                    break
        return problem

    def _decision_matches(self, X, support) -> bool:
        """Whether ``dual_coef_ K + intercept_`` on X reproduces the model's
        one-vs-one decision function at a few support vectors."""
        est = self.estimator
        kernel, params = self.kernel_
        checked = np.sort(support)[:_N_CHECKED]
        K = np.zeros((len(checked), len(support)))
        for rows in chunk_slices(len(support), 8 * 4 * len(checked)):
            K[:, rows] = _kernel(X[checked], X[support[rows]], kernel, params)
        n_classes = len(est.classes_)
        dual = _dense(est.dual_coef_)
        sv_class = np.repeat(np.arange(n_classes), est.n_support_)
        columns = []
        for a in range(n_classes):
            for b in range(a + 1, n_classes):
                f = K[:, sv_class == a] @ dual[b - 1, sv_class == a]
                f += K[:, sv_class == b] @ dual[a, sv_class == b]
                columns.append(f)
        computed = np.column_stack(columns) + est.intercept_
        ovo = copy.copy(est)  # a shallow copy: the user's model is not modified
        ovo.decision_function_shape = "ovo"
        actual = np.asarray(ovo.decision_function(X[checked])).reshape(computed.shape)
        return bool(np.allclose(actual, computed, rtol=1e-6, atol=1e-6))

    # -- test side ---------------------------------------------------------------------
    def test_state(self, X, y_encoded, method="if"):
        return X, np.asarray(y_encoded), self.kernel_

    def payload(self, rows, method="if"):
        X = self.X_
        index = np.arange(rows.start, rows.stop) if isinstance(rows, slice) else rows
        position = np.searchsorted(self.support_, index)
        kernel = self.kernel_[0]
        if kernel == "precomputed" and not callable(kernel):
            return np.asarray(index), self.signs_[position]
        return X[rows], self.signs_[position]

    @staticmethod
    def cross(test_state, support_vectors, signs):
        X, y_encoded, (kernel, params) = test_state
        # m_c(i) K(x_i, x_t) with c the label explained for t.
        return _kernel(X, support_vectors, kernel, params) * signs[:, y_encoded].T

    def test_row_bytes(self) -> int:
        return 8 * 64

    def dot_bytes_per_pair(self) -> int:
        return 8 * 4

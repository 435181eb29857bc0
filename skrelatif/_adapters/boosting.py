"""Adapter for gradient-boosted trees:
:class:`~sklearn.ensemble.HistGradientBoostingClassifier`,
:class:`~sklearn.ensemble.HistGradientBoostingRegressor`,
:class:`~sklearn.ensemble.GradientBoostingClassifier` and
:class:`~sklearn.ensemble.GradientBoostingRegressor` (spec section 9).

The model is explained with its splits held fixed, as a function of its leaf
values (the mathematics: :mod:`skrelatif._adapters._boosting_replay`).
Binding to the training data **replays** the training from the fitted
baseline (``_baseline_prediction``; ``GradientBoosting*``: the constant of
its ``init``), recomputing every iteration's gradients and Hessians, and
checks that every stored leaf value is ``-lr G / (H + l2)`` of the replayed
sums (``GradientBoosting*``: its own Newton step of the terminal regions,
times ``(K - 1) / K`` for the multinomial loss, ``l2 = 0``). Rows are routed
exactly as the model routes them: ``HistGradientBoosting*`` on the binned
training data through the predictors' own binned routing (categorical
bitsets, missing values), test points through the predictors' own raw
routing; ``GradientBoosting*`` through ``tree_.apply``.

Training rows. ``HistGradientBoosting*`` with early stopping and
``validation_fraction`` trains on an internal split of ``X``
(``train_test_split`` with the model's ``_random_seed``, stratified for
classifiers), which the replay reconstructs: the validation rows have weight
0, contribute exactly 0 to every leaf, score 0 and are not candidates (a model
given ``X_val`` trains on all rows, which the replay detects).
``GradientBoosting*`` with ``n_iter_no_change`` splits with its integer
``random_state``; with ``subsample < 1`` each iteration's in-bag rows are
redrawn from that ``random_state`` as scikit-learn draws them. Both need an
integer ``random_state`` (a clear error otherwise). Sample weights, and
classifiers' class weights (as sample weights), are the model's.

Methods (``y`` the label explained; a regressor without ``y`` explains its raw
prediction ``F`` with ``dl/dF = -1``, so a positive score means the example
pushes the prediction up):

``"boostin"`` (Brophy, Hammoudeh & Lowd, JMLR 2023)
    ``sum_trees [leaf(x_t) = leaf(x_i)] g_t^(m) s_i b_i``, with ``g_t^(m)`` the
    test loss's gradient before the tree's iteration and ``b_i = -d theta/d w_i``
    of the shared leaf: no propagation through later trees.
``"if"`` (LeafInfluence, Sharchilev et al. 2018, structure fixed)
    ``s_i g_t^T (I - A)^-1 b_i``: the first-order change of the test loss when
    ``i`` is removed, propagated through every later tree's gradients.
``"theta-relatif"``, ``"l-relatif"``
    RelatIF with the leaf values as the parameters: ``g_t^T (I - A)^-1 b_i``
    divided by ``||(I - A)^-1 b_i||`` (the change of all leaf values per unit
    of weight) or by ``sqrt(|g_i^T (I - A)^-1 b_i|)``, the example's first-order
    effect on its own loss (``g_i`` its own final loss gradient): the
    analogue of ``sqrt(g_i^T H^-1 g_i)``. An example whose normaliser is 0
    scores 0.
``"newton"``
    The exact change of the test loss when ``i`` is removed with the structure
    (and the baseline) fixed: the training replayed without ``i``
    (``O(n T)`` per removal).

``decompose(X)`` writes the raw output (``decision_function``; regressors:
``predict`` on the link scale, the log of ``predict`` for the Poisson and
Gamma losses) as ``baseline_`` plus one term per training example: each leaf
value is ``sum_j -lr w_j g_j / (H + l2)`` over the rows in the leaf.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.model_selection import train_test_split
from sklearn.utils import gen_batches
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

from .._utils import chunk_slices
from ._base import SumAdapter, class_weights
from ._boosting_replay import Ensemble, Replay, SmoothLoss

#: The smooth losses per estimator (what the replay can differentiate).
SMOOTH = {
    HistGradientBoostingClassifier: ("log_loss",),
    HistGradientBoostingRegressor: ("squared_error", "poisson", "gamma"),
    GradientBoostingClassifier: ("log_loss", "exponential"),
    GradientBoostingRegressor: ("squared_error",),
}
#: Largest relative error of a replayed leaf value accepted as the model's.
REPLAY_TOLERANCE = 1e-6
_HGB = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)


def _hgb_structure(model):
    """Leaf-numbered predictors, stored leaf values and learned flags."""
    predictors, fitted, learned, offsets = [], [], [], [0]
    for iteration in model._predictors:
        for predictor in iteration:
            nodes = predictor.nodes.copy()
            leaf = nodes["is_leaf"].astype(bool)
            fitted.append(nodes["value"][leaf].astype(np.float64))
            nodes["value"][leaf] = offsets[-1] + np.arange(leaf.sum())
            predictors.append(
                TreePredictor(
                    nodes,
                    predictor.binned_left_cat_bitsets,
                    predictor.raw_left_cat_bitsets,
                )
            )
            # a root that was never split keeps the value 0
            learned.append(len(nodes) > 1)
            offsets.append(offsets[-1] + int(leaf.sum()))
    return predictors, np.concatenate(fitted), np.array(learned), np.array(offsets)


def _gb_structure(model):
    """Per tree: node -> global leaf index, stored leaf contributions."""
    lookups, fitted, offsets = [], [], [0]
    for tree in model.estimators_.ravel():
        t = tree.tree_
        leaf = t.children_left == -1
        lookup = np.full(t.node_count, -1, dtype=np.intp)
        lookup[leaf] = offsets[-1] + np.arange(leaf.sum())
        lookups.append(lookup)
        fitted.append(model.learning_rate * t.value[leaf, 0, 0])
        offsets.append(offsets[-1] + int(leaf.sum()))
    return lookups, np.concatenate(fitted), np.array(offsets)


class BoostingAdapter(SumAdapter):
    """Training-example influence for gradient-boosted trees, by replaying
    their training with the structure fixed (see the module docstring).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from skrelatif import InfluenceExplainer
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> model = HistGradientBoostingClassifier(max_iter=20).fit(X, y)
    >>> explainer = InfluenceExplainer(model, method="boostin").fit(X, y)
    >>> explainer.transform(X[:2]).shape
    (2, 200)
    """

    estimator_types = (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
    )
    methods = ("if", "theta-relatif", "l-relatif", "newton", "boostin")
    decomposes = (
        "decision_function (classifiers) or the raw prediction (regressors: "
        "predict, on the log scale for the Poisson and Gamma losses)"
    )
    tight_retraining = False
    candidate_name = "training examples the model was trained on"
    curvature_note = (
        "a boosted ensemble is explained with its structure fixed, through the "
        "replayed Newton steps of its leaf values; there is no Hessian to choose"
    )
    objective = "leaf values -lr G / (H + l2) per iteration (structure fixed)"
    loss = "the model's smooth loss (log-loss, half squared error, half deviances)"
    notes = (
        "replayed training; missing values, categorical splits, early stopping, "
        "sample and class weights, GradientBoosting subsample"
    )

    def check_estimator(self) -> None:
        est = self.estimator
        name = type(est).__name__
        loss = est.loss if isinstance(est.loss, str) else type(est.loss).__name__
        if loss not in SMOOTH[type(est)]:
            raise ValueError(
                f"{name} with loss={loss!r} is not supported: the replay needs a "
                f"smooth loss ({', '.join(SMOOTH[type(est)])})."
            )
        if isinstance(est, _HGB):
            cst = est.monotonic_cst
            if cst is not None and np.any(
                np.asarray(list(cst.values()) if isinstance(cst, dict) else cst)
            ):
                raise ValueError(
                    f"{name} with monotonic_cst is not supported: monotonic "
                    "constraints clip leaf values, which is not a Newton step of "
                    "the loss. Refit without monotonic_cst."
                )
        elif est.init not in (None, "zero"):
            raise ValueError(
                f"{name} with an init estimator is not supported: its baseline "
                "would depend on x. Refit with init=None or init='zero'."
            )

    @property
    def n_outputs(self) -> int:
        est = self.estimator
        if isinstance(est, _HGB):
            return int(est.n_trees_per_iteration_)
        return int(est.estimators_.shape[1])

    # -- the model's outputs ---------------------------------------------------------
    def _y_float(self, y_encoded):
        return np.asarray(y_encoded, dtype=np.float64)

    def _leaves(self, X, *, binned: bool = False) -> np.ndarray:
        """Global leaf index per tree (n, T), routed as the model routes."""
        est = self.estimator
        if isinstance(est, _HGB):
            with warnings.catch_warnings():
                # the explainer checked X's columns; the core passes arrays
                warnings.filterwarnings("ignore", "X does not have valid feature names")
                Xp = est._preprocess_X(X, reset=False)
            # OpenMP threads cost more than they save on small inputs
            n_threads = _openmp_effective_n_threads() if len(Xp) > 20_000 else 1
            if binned:
                # C order: rows are routed one at a time
                Xb = np.ascontiguousarray(est._bin_mapper.transform(Xp))
                missing = est._bin_mapper.missing_values_bin_idx_
                columns = [
                    p.predict_binned(Xb, missing, n_threads) for p in self._predictors
                ]
            else:
                bitsets, f_idx = est._bin_mapper.make_known_categories_bitsets()
                columns = [
                    p.predict(Xp, bitsets, f_idx, n_threads) for p in self._predictors
                ]
            return np.column_stack(columns).astype(np.int32)
        if sparse.issparse(X):  # the trees' own sparse routing
            X32 = sparse.csr_matrix(X, dtype=np.float32)
        else:
            X32 = np.ascontiguousarray(X, dtype=np.float32)
        columns = [
            lookup[tree.tree_.apply(X32)]
            for lookup, tree in zip(self._lookups, est.estimators_.ravel())
        ]
        return np.column_stack(columns).astype(np.int32)

    @property
    def ensemble(self) -> Ensemble:
        """The fitted structure (built once per adapter)."""
        if "_ensemble" not in self.__dict__:
            self._build()
        return self._ensemble

    def _build(self) -> None:
        est, K = self.estimator, self.n_outputs
        if isinstance(est, _HGB):
            self._predictors, fitted, learned, offsets = _hgb_structure(est)
            baseline = np.asarray(est._baseline_prediction, dtype=np.float64).ravel()
            scale, lam, float32 = (
                float(est.learning_rate),
                est.l2_regularization + 1e-15,
                True,
            )
        else:
            self._lookups, fitted, offsets = _gb_structure(est)
            learned = np.ones(len(offsets) - 1, dtype=bool)
            if est.init == "zero":
                baseline = np.zeros(K)
            else:
                probe = np.zeros((1, est.n_features_in_), dtype=np.float32)
                baseline = np.asarray(est._raw_predict_init(probe), dtype=np.float64)[0]
            factor = (K - 1) / K if K > 1 else 1.0
            scale, lam, float32 = est.learning_rate * factor, 0.0, False
        self._ensemble = Ensemble(
            baseline,
            offsets,
            fitted,
            learned,
            scale,
            lam,
            float32,
            SmoothLoss(est._loss, K),
        )

    def outputs(self, X: Any) -> np.ndarray:
        """Raw outputs (n, K), summed tree by tree as the model does."""
        return self.ensemble.outputs(self._leaves(X))

    def output_losses(self, F: np.ndarray, y_encoded: np.ndarray) -> np.ndarray:
        return self.ensemble.loss.losses(self._y_float(y_encoded), F)

    def predict_target(self, X: Any) -> np.ndarray:
        if self.is_regressor:
            return self.outputs(X)[:, 0]
        F = self.outputs(X)  # the model's rule: the largest (or positive) output
        return np.argmax(F, axis=1) if F.shape[1] > 1 else (F[:, 0] > 0).astype(int)

    def losses(self, X: Any, y_encoded: np.ndarray) -> np.ndarray:
        return self.output_losses(self.outputs(X), y_encoded)

    @property
    def baseline_(self):
        baseline = self.ensemble.baseline
        return float(baseline[0]) if len(baseline) == 1 else baseline.copy()

    # -- the training data -----------------------------------------------------------
    def sample_weights(self, y_encoded, sample_weight):
        weights = super().sample_weights(y_encoded, sample_weight)
        if self.is_regressor:
            return weights
        return weights * class_weights(self.estimator, y_encoded)

    def _training_rows(self, y_encoded) -> list[np.ndarray]:
        """The rows the model may have trained on, most likely first."""
        est, n = self.estimator, len(y_encoded)
        every = np.arange(n)
        stratify = None if self.is_regressor else y_encoded
        if isinstance(est, _HGB):
            if not (est.do_early_stopping_ and est.validation_fraction is not None):
                return [every]
            seed = est._random_seed
        else:
            if est.n_iter_no_change is None:
                return [every]
            seed = est.random_state
            if not isinstance(seed, int | np.integer):
                raise ValueError(
                    f"{type(est).__name__} with n_iter_no_change trains on a random "
                    "split of X that can only be reconstructed from an integer "
                    f"random_state; got {seed!r}. Refit it with random_state=0."
                )
        train, _ = train_test_split(
            every,
            test_size=est.validation_fraction,
            stratify=stratify,
            random_state=seed,
        )
        return [np.sort(train), every]

    def _bags(self, n_rows: int) -> np.ndarray | None:
        """``GradientBoosting*`` with ``subsample < 1``: in-bag masks (n_rows,
        n_iter), redrawn as scikit-learn draws them."""
        est = self.estimator
        if isinstance(est, _HGB) or est.subsample >= 1.0:
            return None
        if not isinstance(est.random_state, int | np.integer):
            raise ValueError(
                f"{type(est).__name__} with subsample < 1 draws each iteration's "
                "rows at random; the replay redraws them from an integer "
                f"random_state, got {est.random_state!r}. Refit with random_state=0."
            )
        from sklearn.ensemble._gradient_boosting import _random_sample_mask

        rng = np.random.RandomState(est.random_state)
        n_inbag = max(1, int(est.subsample * n_rows))
        bags = np.zeros((n_rows, est.estimators_.shape[0]), dtype=bool)
        for m in range(bags.shape[1]):
            bags[:, m] = _random_sample_mask(n_rows, n_inbag, rng)
            for _ in range(est.estimators_.shape[1]):
                rng.randint(0, 2147483647)  # each tree's splitter seed (RAND_R_MAX)
        return bags

    def _candidates(self, X, y_encoded, sample_weight):
        """Replays the training (see the module docstring) and keeps what the
        methods need; the candidates are the rows trained on with a positive
        weight."""
        ens = self.ensemble
        leaves = self._leaves(X, binned=isinstance(self.estimator, _HGB))
        y = self._y_float(y_encoded)
        errors = []
        for rows in self._training_rows(y_encoded):
            w = np.zeros(len(y))
            w[rows] = self.sample_weight_[rows]
            bags = self._bags(len(rows))
            replay = Replay(ens, leaves[rows], y[rows], w[rows], bags)
            state = replay.state()
            scale = np.maximum(np.abs(ens.fitted), np.abs(ens.fitted).max() * 1e-12)
            error = float(np.max(np.abs(state["theta"] - ens.fitted) / scale))
            errors.append(error)
            if error <= REPLAY_TOLERANCE:
                break
        else:
            raise ValueError(
                f"Replaying the training of the {type(self.estimator).__name__} on "
                "the X, y (and sample_weight) given to fit does not reproduce its "
                f"leaf values (largest relative error {min(errors):.2g}). Pass "
                "exactly the data the model was trained on, in the same order."
            )
        self.replay_error_ = error
        self._rows = rows
        self._replay = replay
        # per training row (rows not trained on: F replayed, every term 0)
        self._state = {"theta": state["theta"], "F": ens.outputs(leaves)}
        for key in ("coef", "share", "grad"):
            self._state[key] = np.zeros((len(y), ens.T))
            self._state[key][rows] = state[key]
        self._train_leaves = leaves
        self._cache = {}
        return rows[w[rows] > 0]

    # -- what the methods need (computed once, on first use) -------------------------
    def _model_weights(self) -> np.ndarray:
        """The weight each training row had in the model (0: not trained on)."""
        w = np.zeros(self.n_train_)
        w[self._rows] = self.sample_weight_[self._rows]
        return w

    def _negA(self) -> np.ndarray:
        """``-A`` (P, P) of the propagated methods (``I - A`` its unit lower
        triangle)."""
        if "negA" not in self._cache:
            self._cache["negA"] = self._replay.linearise()
        return self._cache["negA"]

    def _inverse(self) -> np.ndarray:
        """``(I - A)^-1`` (P, P), for the normalisers and self-influence."""
        if "inverse" not in self._cache:
            self._cache["inverse"] = Replay.inverse(self._negA())
        return self._cache["inverse"]

    def _pair_sums(self, matrix: np.ndarray, left: np.ndarray) -> np.ndarray:
        """``sum_{tau, tau'} left[i, tau] matrix[l_tau(i), l_tau'(i)] b[i, tau']``
        for every training row (``b`` the rows' ``d theta / d w``), in chunks."""
        leaves, coef = self._train_leaves, self._state["coef"]
        T = leaves.shape[1]
        out = np.zeros(self.n_train_)
        rows = self._rows
        for chunk in chunk_slices(len(rows), 8 * 2 * T * T):
            index = rows[chunk]
            L = leaves[index]
            block = matrix[L[:, :, None], L[:, None, :]]  # (r, T, T)
            out[index] = np.einsum("it,itu,iu->i", left(index), block, coef[index])
        return out

    def _normaliser(self, method: str) -> np.ndarray:
        """RelatIF's divisor per training row (see the module docstring)."""
        key = f"norm-{method}"
        if key not in self._cache:
            M = self._inverse()
            if method == "theta-relatif":  # ||(I - A)^-1 b_i||
                coef = self._state["coef"]
                squared = self._pair_sums(M.T @ M, lambda index: coef[index])
                self._cache[key] = np.sqrt(np.maximum(squared, 0.0))
            else:  # sqrt(|g_i^T (I - A)^-1 b_i|)
                self._cache[key] = np.sqrt(np.abs(self._own_products(M)))
        return self._cache[key]

    def _own_products(self, M: np.ndarray) -> np.ndarray:
        """``g_i^T (I - A)^-1 b_i`` with ``g_i`` each row's own final loss
        gradient at its leaves."""
        K = self.n_outputs
        grad = self.ensemble.loss.gradient(self._y_float(self.y_), self._state["F"])
        trees = np.arange(self.ensemble.T) % K
        return self._pair_sums(M, lambda index: grad[index][:, trees])

    def train_scale(self, method: str) -> np.ndarray:
        """``"if"``, ``"boostin"``: the model's weight ``s_i`` (0 for rows it
        did not train on); RelatIF: 1 / its normaliser (0 where that is 0)."""
        w = self._model_weights()
        if method in ("if", "boostin"):
            return w
        if method == "newton":
            return (w > 0).astype(np.float64)
        norm = self._normaliser(method)
        scale = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0)
        return np.where(w > 0, scale, 0.0)

    def self_influence(self, method: str = "if") -> np.ndarray:
        """The method's score of each training row for its own loss (its own
        label): ``"if"`` ``-s_i g_i^T (I - A)^-1 b_i``, ``"boostin"``
        ``-s_i sum_trees g_i^(m) b_i``."""
        w = self._model_weights()
        if method == "boostin":
            return -w * np.einsum("it,it->i", self._state["grad"], self._state["coef"])
        return -w * self._own_products(self._inverse())

    def self_products(self, rows):
        return self.self_influence("if")[rows] / np.maximum(
            self._model_weights()[rows], 1e-300
        )

    # -- the test side ---------------------------------------------------------
    def _test_gradients(self, leaves, y_encoded, method):
        """``dl_t/dF`` per test point and tree (n, T): before the tree's
        iteration for ``"boostin"``, at the final output otherwise; -1 (the
        prediction itself) for a regressor explained without ``y``."""
        ens, K = self.ensemble, self.n_outputs
        n = leaves.shape[0]
        if y_encoded is None:
            return -np.ones((n, ens.T))
        y = self._y_float(y_encoded)
        if method == "boostin":
            staged = ens.staged_outputs(leaves)  # (n, n_iter, K)
            n_iter = staged.shape[1]
            grad = ens.loss.gradient(np.repeat(y, n_iter), staged.reshape(-1, K))
            return grad.reshape(n, n_iter * K)
        grad = ens.loss.gradient(y, ens.outputs(leaves))
        return grad[:, np.arange(ens.T) % K]

    def test_state(self, X, y_encoded, method: str = "if"):
        """``"newton"``: the test points' leaves and labels; otherwise the
        dense (n_test, P) vectors ``s_t`` with ``score = s_t^T (-b_i) scale_i``:
        the test gradients at the test points' leaves, times ``(I - A)^-1``
        for the propagated methods."""
        ens = self.ensemble
        leaves = self._leaves(X)
        if method == "newton":
            F = ens.outputs(leaves)
            now = -F[:, 0] if y_encoded is None else self.output_losses(F, y_encoded)
            y = None if y_encoded is None else self._y_float(y_encoded)
            return leaves, y, now, ens
        values = self._test_gradients(leaves, y_encoded, method)
        S = np.zeros((leaves.shape[0], ens.P))
        np.put_along_axis(S, leaves.astype(np.intp), values, axis=1)
        if method != "boostin":
            S = Replay.solve_adjoint(self._negA(), S.T).T  # g_t^T (I - A)^-1
        return np.ascontiguousarray(S)

    def payload(self, rows, method: str = "if") -> tuple:
        """The rows' ``-d theta / d w`` as a sparse (rows, P) matrix;
        ``"newton"``: their leaf values after each row's removal (P, rows)."""
        index = np.arange(self.n_train_)[rows]
        if method == "newton":
            return (self._removed_thetas(index[:, None]),)
        ens = self.ensemble
        return (
            ens.leaf_matrix(self._train_leaves[index], -self._state["coef"][index]),
        )

    def cross_function(self, method: str = "if"):
        return _newton_cross if method == "newton" else _cross

    @staticmethod
    def cross(test_state, B):
        return _cross(test_state, B)

    def test_row_bytes(self) -> int:
        """A test point's dense vector over the leaves (and its solve)."""
        return 8 * 2 * self.ensemble.P

    def dot_bytes_per_pair(self) -> int:
        return 8 * (self.n_outputs + 2)

    # -- exact removal with the structure fixed ---------------------------------------
    def _removed_thetas(self, groups) -> np.ndarray:
        """Leaf values (P, n_groups) replayed without each group."""
        w = self._model_weights()
        thetas = []
        for chunk in chunk_slices(len(groups), 8 * 6 * self.n_train_ * self.n_outputs):
            W = np.repeat(w[:, None], chunk.stop - chunk.start, axis=1)
            if isinstance(groups, np.ndarray):  # one row per group
                W[groups[chunk, 0], np.arange(W.shape[1])] = 0.0
            else:
                for j, group in enumerate(groups[chunk]):
                    W[np.asarray(group, dtype=np.intp), j] = 0.0
            thetas.append(self._replay.run(W[self._rows])[0])
        return np.hstack(thetas)

    def removal_outputs(self, X, groups) -> np.ndarray:
        """Outputs (n_test, n_groups, K) of X after removing each group
        together, the structure and the baseline fixed."""
        leaves = self._leaves(X)
        return _outputs_under(self.ensemble, leaves, self._removed_thetas(list(groups)))

    def loo_outputs(self) -> np.ndarray:
        """Each training row's own outputs (n_train, K) with it removed (a
        replay per row: ``O(n^2 T)``)."""
        w = self._model_weights()
        out = self.ensemble.outputs(self._train_leaves)
        rows = self._rows
        position = np.full(self.n_train_, -1)
        position[rows] = np.arange(len(rows))
        trained = np.flatnonzero(w > 0)
        for chunk in chunk_slices(len(trained), 8 * 6 * self.n_train_ * self.n_outputs):
            index = trained[chunk]
            W = np.repeat(w[rows][:, None], len(index), axis=1)
            W[position[index], np.arange(len(index))] = 0.0
            _, F = self._replay.run(W)  # (n_rows, K, b)
            out[index] = F[position[index], :, np.arange(len(index))]
        return out

    # -- the decomposition -----------------------------------------------------
    def decompose(self, X) -> np.ndarray:
        """``(n_test, n_train)`` (a third axis for ``K > 1`` outputs) terms
        whose sum over training rows plus ``baseline_`` is the raw output."""
        ens, K = self.ensemble, self.n_outputs
        leaves = self._leaves(X)
        share = self._state["share"]
        out = np.zeros((leaves.shape[0], self.n_train_, K))
        for k in range(K):
            D = ens.leaf_matrix(self._train_leaves[:, k::K], share[:, k::K])
            S = np.zeros((leaves.shape[0], ens.P))
            np.put_along_axis(S, leaves[:, k::K].astype(np.intp), 1.0, axis=1)
            out[:, :, k] = (D @ S.T).T
        return out[:, :, 0] if K == 1 else out


def _cross(S, B):
    """``S B^T``: (n_test, rows) from dense (n_test, P) and sparse (rows, P),
    128 test points at a time (their vectors stay in cache: ~25% faster)."""
    out = np.empty((B.shape[0], S.shape[0]))
    for batch in gen_batches(S.shape[0], 128):
        out[:, batch] = B @ np.ascontiguousarray(S[batch].T)
    return out.T


def _outputs_under(ens, leaves, thetas) -> np.ndarray:
    """Outputs (n, b, K) of rows with ``leaves`` under each column of ``thetas``."""
    K = ens.K
    out = np.empty((leaves.shape[0], thetas.shape[1], K))
    for k in range(K):
        Z = ens.leaf_matrix(
            leaves[:, k::K], np.ones((leaves.shape[0], leaves.shape[1] // K))
        )
        out[:, :, k] = ens.baseline[k] + np.asarray(Z @ thetas)
    return out


def _newton_cross(test_state, thetas):
    """The change of each test loss (or minus the change of a regressor's
    prediction) when each row is removed: (n_test, rows)."""
    leaves, y, now, ens = test_state
    F = _outputs_under(ens, leaves, thetas)  # (n_test, rows, K)
    n, b, K = F.shape
    if y is None:
        return -F[:, :, 0] - now[:, None]
    after = ens.loss.losses(np.repeat(y, b), F.reshape(n * b, K)).reshape(n, b)
    return after - now[:, None]

"""Adapter for random forests and extremely randomised trees:
:class:`~sklearn.ensemble.RandomForestClassifier`,
:class:`~sklearn.ensemble.RandomForestRegressor`,
:class:`~sklearn.ensemble.ExtraTreesClassifier` and
:class:`~sklearn.ensemble.ExtraTreesRegressor`.

A forest as a sum over its training examples
--------------------------------------------
Tree ``b`` of ``B`` was fitted with one weight ``u_bi`` per training example,
and its leaf ``L`` holds the weighted mean of the targets of the examples in
it (regressors; ``y_i`` the target) or their weighted class fractions
(classifiers; ``y_i`` the one-hot row of the label, ``K`` classes) ::

    v_bL = sum_{i in L} u_bi y_i / W_bL,    W_bL = sum_{i in L} u_bi

The forest's output, ``predict`` of a regressor or ``predict_proba`` of a
classifier (``K`` columns, two for a binary one), is the mean over the trees
of the value of the leaf ``x`` falls in. Hence the exact decomposition ::

    f(x) = sum_i A(x, i) y_i,
    A(x, i) = 1/B sum_b [x and i share leaf L of b] u_bi / W_bL

``decompose`` returns ``A(x, i) y_i`` (a third axis of ``K`` classes for a
classifier) and ``baseline_ = 0``: nothing of the output comes from anything
but the training examples.

The weights ``u_bi`` are reconstructed from the fitted model as scikit-learn
1.9 draws them (``sklearn/ensemble/_forest.py``), never read from private
state. With ``bootstrap=True``, tree ``b`` draws ``n_b`` rows with
replacement from a ``RandomState`` seeded with the tree's ``random_state``:
uniformly (``randint``) without sample weights, otherwise with probabilities
proportional to ``sample_weight`` times the class weights (``choice``; the
class weight ``"balanced"`` and dicts enter here, ``"balanced"`` computed with
the sample weights). ``n_b`` is ``n`` for ``max_samples=None``, the integer
itself, or ``max(int(max_samples * sum of those weights), 1)`` for a
fraction. ``u_bi`` is the number of times row ``i`` was drawn, times its
class weight computed on the tree's draw for
``class_weight="balanced_subsample"``; the sample weights only shape the draw.
With ``bootstrap=False`` every tree uses ``u_bi = sample_weight_i`` times the
class weight (``"balanced_subsample"`` then is ``"balanced"``). Binding checks
every node's weight and value (leaves and internal nodes) recomputed from
these weights against the fitted ``tree_`` to 1e-10 (relative to the tree's
largest value), so data that is not the model's training data, or a forest
whose values are not weighted means, is refused. A node whose in-bag examples
share one target takes exactly that target as its value (the weighted mean
could round it), so their gradients below are exactly 0.

Leaf values as the parameters
-----------------------------
The splits are held fixed. Each leaf value minimises the leaf's half squared
error ``1/2 sum_{i in L} u_bi ||y_i - v_bL||^2`` (the squared error criterion;
for one-hot targets the Gini impurity), whose curvature is ``W_bL``. Example
``i``'s gradient in the leaf it falls in is ``g_bi = -(y_i - v_bL)``, and
removing it (its weight to 0, every ``u_bi`` at once) changes the leaf value,
to first order, by ``Δθ_bi = -u_bi (y_i - v_bL) / W_bL`` (``θ`` the leaf
values of every tree; trees where ``u_bi = 0``, the ones ``i`` is not in the
bag of, do not change). The test loss ``l_t`` is a function of the forest's
output ``f_t``, so with ``∇l_t = dl_t/df_t`` ::

    "if"            score[t, i] = ∇l_t · Δf_i(x_t)
    "theta-relatif" score[t, i] = "if" / ||Δθ_i||
    "l-relatif"     score[t, i] = "if" / sqrt(ĝ_i^T H^-1 ĝ_i)

    Δf_i(x_t)      = 1/B sum_b [x_t in the leaf L of i] Δθ_bi
    ||Δθ_i||^2     = sum_b u_bi^2 ||y_i - v_bL||^2 / W_bL^2
    ĝ_i^T H^-1 ĝ_i = sum_b u_bi^2 ||y_i - v_bL||^2 / W_bL

(``ĝ_i = sum_b u_bi g_bi``, ``H`` the block-diagonal ``W_bL``: the section 2
normalisers with the leaf values as parameters). Both RelatIF methods are
independent of the scale of example ``i``'s weights. An example whose target
equals the value of every leaf it is in (a pure leaf of a classifier, a
regression leaf of one distinct target: common in fully grown trees) has no
gradient, scores 0 with every first-order method and its RelatIF normaliser
is 0 (score 0, never NaN); only its exact removal (below) can change a leaf,
by emptying it. ``self_influence_[i]`` is the ``"if"`` score of ``x_i``
explained at its own label.

Losses (spec section 5): the log-loss ``-log p_y`` of ``predict_proba`` for
classifiers, the probability clipped below at ``eps =
np.finfo(np.float64).eps`` as :func:`sklearn.metrics.log_loss` does (so a
label the forest gives probability 0 has loss ``-log eps``, about 36, and
``∇l = -1/max(p, eps)``: finite, and exactly 0 times that in every score, as
no example can change a probability that is 0 in every leaf without emptying
a leaf), and ``(y - f)^2`` for regressors (the squared error criterion;
``"friedman_mse"`` has the same leaf values). A regressor's prediction
explained without ``y`` has ``∇l = -1``: positive = the example pushes the
prediction up.

Exact removal with the structure fixed (``"newton"``)
---------------------------------------------------
Removing a group ``G`` changes, in each tree, the leaves its in-bag members
are in: ``v'_bL = (W_bL v_bL - sum_{i in G} u_bi y_i) / (W_bL - sum_{i in G} u_bi)``.
**A removal that empties a leaf** (removes every example of positive weight
in it) gives the leaf the value of its nearest ancestor that keeps examples,
computed without the removed ones (the parent's value without them, for a
single example: its sibling subtree has positive weight). If the whole bag of
a tree is removed, that tree keeps its fitted values. For one example this is
the closed form ::

    Δv_bL = -(y_i - v_bL) u_bi / (W_bL - u_bi)            (L keeps other examples)
    Δv_bL = -(y_i - v_bP) W_bP / (W_bP - u_bi)            (i alone in L; P its parent)

and the ``"newton"`` score is ``l_t(f_t + Δf_i(x_t)) - l_t(f_t)`` evaluated
exactly (a regressor's prediction without ``y``: ``-Δf_i(x_t)``).
``loo_loss_`` is each example's loss at its own output with it removed.

Computation
-----------
Every product above is one sparse product per chunk: the test points' leaf
indicator (one column per node of every tree, ``B`` entries per row) times
the chunk's per-(tree, example) coefficients at its leaves; no loop over
examples.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
import sklearn
from scipy import sparse
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.utils import check_array, check_random_state
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight
from sklearn.utils.fixes import parse_version

from .._utils import chunk_slices
from ._base import SumAdapter

#: Probabilities are clipped below at this value in the log-loss (as
#: :func:`sklearn.metrics.log_loss` does).
EPS = float(np.finfo(np.float64).eps)
#: Relative tolerance of the check of every node's value and weight.
NODE_TOLERANCE = 1e-10
_REGRESSION_CRITERIA = ("squared_error", "friedman_mse")


#: scikit-learn >= 1.9 draws each bootstrap in proportion to the sample
#: weights and fits the tree on the draw counts (scikit-learn#31529); before,
#: it drew uniformly and fitted the tree on the counts times the weights, with
#: "balanced" class weights counted without sample weights.
WEIGHTED_DRAWS = parse_version(sklearn.__version__).release >= (1, 9)


def _n_bootstrap(n: int, max_samples: Any, weights: np.ndarray | None) -> int:
    """The number of rows each tree draws (scikit-learn's
    ``_get_n_samples_bootstrap``)."""
    if max_samples is None:
        return n
    if isinstance(max_samples, Integral):
        return int(max_samples)
    if not WEIGHTED_DRAWS:
        return max(round(n * max_samples), 1)
    total = n if weights is None else weights.sum()
    return max(int(max_samples * total), 1)


def _draw(seed: Any, n: int, n_draws: int, weights: np.ndarray | None) -> np.ndarray:
    """The rows tree ``seed`` drew (scikit-learn's ``_generate_sample_indices``)."""
    random_state = check_random_state(seed)
    if weights is None or not WEIGHTED_DRAWS:
        return random_state.randint(0, n, n_draws)
    return random_state.choice(n, n_draws, replace=True, p=weights / np.sum(weights))


def _levels(left: np.ndarray, right: np.ndarray) -> list[np.ndarray]:
    """The nodes of a tree by depth (root first)."""
    levels, nodes = [], np.array([0])
    while nodes.size:
        levels.append(nodes)
        inner = nodes[left[nodes] >= 0]
        nodes = np.concatenate([left[inner], right[inner]])
    return levels


def _node_sums(leaf, u, Y, tree, purity: bool) -> tuple[np.ndarray, ...]:
    """Per node of ``tree``: weight ``W``, weighted target sums ``S`` (n_nodes,
    K), the number of rows of positive weight, and (``purity``) whether those
    rows all share one target, then the node's exact value, from the rows'
    leaves. One-hot targets need no purity: a pure node's sums of ``u`` and
    of ``u y`` are the same additions, so its fractions are exact."""
    n_nodes, K = tree.node_count, Y.shape[1]
    W = np.bincount(leaf, weights=u, minlength=n_nodes)
    count = np.bincount(leaf, weights=(u > 0).astype(np.float64), minlength=n_nodes)
    S = np.column_stack(
        [np.bincount(leaf, weights=u * Y[:, k], minlength=n_nodes) for k in range(K)]
    )
    lo, hi = np.full((n_nodes, K), np.inf), np.full((n_nodes, K), -np.inf)
    if purity:
        rows = u > 0
        np.minimum.at(lo, leaf[rows], Y[rows])
        np.maximum.at(hi, leaf[rows], Y[rows])
    parent = _parents(tree)
    for nodes in reversed(_levels(tree.children_left, tree.children_right)[1:]):
        # add.at: two nodes of a level share a parent
        np.add.at(W, parent[nodes], W[nodes])
        np.add.at(count, parent[nodes], count[nodes])
        np.add.at(S, parent[nodes], S[nodes])
        if purity:
            np.minimum.at(lo, parent[nodes], lo[nodes])
            np.maximum.at(hi, parent[nodes], hi[nodes])
    pure = (lo == hi).all(axis=1)
    return W, S, count, pure, lo


def _parents(tree) -> np.ndarray:
    parent = np.full(tree.node_count, -1, dtype=np.int64)
    inner = np.flatnonzero(tree.children_left >= 0)
    parent[tree.children_left[inner]] = inner
    parent[tree.children_right[inner]] = inner
    return parent


def _removal_coefficients(U, W, W_parent, alone, has_parent) -> np.ndarray:
    """``Δv = -(y_i - ṽ) coef`` of the exact removal of one example from its
    leaf (module docstring): ``u / (W - u)``, or ``W_P / (W_P - u)`` when it is
    alone in the leaf (``ṽ`` then the parent's value), 0 out of the bag or
    for a tree that is one leaf."""
    coef = np.zeros_like(U)
    shared = (U > 0) & ~alone
    coef[shared] = U[shared] / (W[shared] - U[shared])
    emptied = (U > 0) & alone & has_parent
    coef[emptied] = W_parent[emptied] / (W_parent[emptied] - U[emptied])
    return coef


def _cross(test_state: tuple, M: sparse.csr_matrix, targets: np.ndarray) -> np.ndarray:
    """Scores of a test batch against a training chunk (see the module
    docstring). One complex sparse product gives ``A + i A^v`` on the pairs
    that share a leaf; there ``Δ = A^v - y_i[c_t] A`` and the method's function
    of it; every other pair scores 0 (``Δ = 0``)."""
    leaves, labels, method, reference, factor = test_state
    product = (leaves @ M.T).tocoo()
    row, column = product.row, product.col
    if labels is None:  # regressors
        delta = product.data.imag - targets[column] * product.data.real
    else:
        hit = targets[column] == labels[row]
        delta = product.data.imag - hit * product.data.real
    scores = np.zeros(product.shape)
    if method != "newton":
        scores[row, column] = factor[row] * delta + 0.0  # ∇l_t Δf, no -0.0
    elif labels is not None:  # -log max(p + Δ, eps) + log max(p, eps)
        p = reference[row]
        after = p + delta
        safe = np.minimum(p, after) >= EPS
        exact = -np.log1p(delta[safe] / p[safe])
        clipped = np.log(np.maximum(p, EPS)) - np.log(np.maximum(after, EPS))
        scores[row, column] = np.where(safe, 0.0, clipped)
        scores[row[safe], column[safe]] = exact
    elif factor is None:  # a prediction explained: minus its change
        scores[row, column] = -delta
    else:  # (r - Δ)^2 - r^2
        scores[row, column] = delta * (delta - 2.0 * reference[row])
    return scores


class ForestAdapter(SumAdapter):
    """Random forests and extremely randomised trees as sums over their
    training examples (see the module docstring for every formula).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> from skrelatif import InfluenceExplainer
    >>> X = np.arange(8.0).reshape(-1, 1)
    >>> y = np.array([0.0, 0.0, 1.0, 1.0, 4.0, 4.0, 5.0, 5.0])
    >>> model = RandomForestRegressor(n_estimators=3, max_depth=1,
    ...                               random_state=0).fit(X, y)
    >>> explainer = InfluenceExplainer(model, method="newton").fit(X, y)
    >>> parts = explainer.decompose([[6.5]])
    >>> bool(np.isclose(parts.sum() + explainer.baseline_, model.predict([[6.5]])[0]))
    True

    The prediction 4.278 is made of the right-hand examples only (every tree
    splits at 3.5), in proportion to how often each tree drew them; example 7
    is in no tree's bag and contributes 0.

    >>> parts.round(3)
    array([[0.   , 0.   , 0.   , 0.   , 1.333, 1.556, 1.389, 0.   ]])
    """

    estimator_types = (
        RandomForestClassifier,
        RandomForestRegressor,
        ExtraTreesClassifier,
        ExtraTreesRegressor,
    )
    methods = ("if", "theta-relatif", "l-relatif", "newton")
    decomposes = "predict_proba (classifiers), predict (regressors)"
    tight_retraining = False
    candidate_name = "in-bag training examples"
    curvature_note = (
        "the parameters are the leaf values with the splits fixed; each leaf's "
        "curvature is its weight W_leaf (block diagonal): nothing to choose"
    )
    objective = (
        "per tree and leaf: 1/2 sum_i u_i ||y_i - v||^2 over the in-bag weights u_i "
        "(splits fixed)"
    )
    loss = "log-loss of predict_proba (classifiers); (y - f)^2 (regressors)"
    notes = (
        "bootstrap on or off, max_samples, sample and class weights "
        "(incl. balanced_subsample); exact removal per leaf"
    )

    def check_estimator(self) -> None:
        est = self.estimator
        name = type(est).__name__
        if getattr(est, "n_outputs_", 1) != 1:
            raise ValueError(
                f"{name} with {est.n_outputs_} outputs is not supported: refit it "
                "on a one-dimensional y."
            )
        if self.is_regressor and est.criterion not in _REGRESSION_CRITERIA:
            raise ValueError(
                f"{name} with criterion={est.criterion!r} is not supported: its "
                "leaf values are not weighted means of the targets. Refit it with "
                "criterion='squared_error' (the default) or 'friedman_mse'."
            )
        if getattr(est, "monotonic_cst", None) is not None:
            raise ValueError(
                f"{name} with monotonic_cst is not supported: its leaf values are "
                "clipped, not weighted means. Refit it with monotonic_cst=None."
            )

    # -- the target ------------------------------------------------------------------
    @property
    def n_outputs(self) -> int:
        """``K``: the columns of ``predict_proba`` (2 for a binary classifier),
        1 for a regressor."""
        return 1 if self.is_regressor else len(self.classes_)

    def predict_target(self, X: Any) -> np.ndarray:
        return self.encode_target(self.estimator.predict(X), what="the predictions")

    def outputs(self, X: Any) -> np.ndarray:
        """``predict_proba`` (n, K) of a classifier, ``predict`` (n, 1) of a
        regressor."""
        if self.is_regressor:
            return np.asarray(self.estimator.predict(X), dtype=np.float64)[:, None]
        return np.asarray(self.estimator.predict_proba(X), dtype=np.float64)

    def output_losses(self, F: np.ndarray, y_encoded: np.ndarray) -> np.ndarray:
        """``-log max(p_y, eps)`` (classifiers) or ``(y - f)^2`` (regressors)."""
        F = np.asarray(F, dtype=np.float64)
        if self.is_regressor:
            return (np.asarray(y_encoded, dtype=np.float64) - F[:, 0]) ** 2
        p = F[np.arange(F.shape[0]), y_encoded]
        return -np.log(np.maximum(p, EPS)) + 0.0  # + 0.0: no -0.0 at p = 1

    def losses(self, X: Any, y_encoded: np.ndarray) -> np.ndarray:
        return self.output_losses(self.outputs(X), y_encoded)

    def sample_weights(self, y_encoded, sample_weight) -> np.ndarray:
        """``s_i``: the sample weight times the class weight (the weights the
        bootstrap draws with, or every tree's weights without bootstrap)."""
        weights = self._draw_weights(y_encoded, sample_weight)
        return np.ones(len(y_encoded)) if weights is None else weights

    def _draw_weights(self, y_encoded, sample_weight) -> np.ndarray | None:
        est = self.estimator
        weights = None
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=np.float64)
        class_weight = None if self.is_regressor else est.class_weight
        if class_weight is None or (
            class_weight == "balanced_subsample" and est.bootstrap
        ):
            return weights
        classes = est.classes_
        if isinstance(class_weight, str) and WEIGHTED_DRAWS:  # "balanced(_subsample)"
            per_class = compute_class_weight(
                "balanced", classes=classes, y=classes[y_encoded], sample_weight=weights
            )
            expanded = per_class[y_encoded]
        elif isinstance(class_weight, str):
            expanded = compute_sample_weight("balanced", classes[y_encoded])
        else:
            expanded = compute_sample_weight(class_weight, classes[y_encoded])
        return expanded if weights is None else weights * expanded

    # -- binding: the in-bag weights and every node ---------------------------------
    def _leaves(self, X: Any) -> np.ndarray:
        """``(n, B)`` global node index of the leaf of each row in each tree."""
        X = check_array(
            X, dtype=np.float32, accept_sparse="csr", ensure_all_finite="allow-nan"
        )
        return np.column_stack(
            [
                tree.apply(X) + offset
                for tree, offset in zip(self.estimator.estimators_, self.offsets_)
            ]
        )

    def _candidates(self, X, y_encoded, sample_weight):
        """Reconstruct every tree's weights, check them against every node, and
        keep what the scores need (see the module docstring). The candidates
        are the rows in at least one tree's bag."""
        est = self.estimator
        trees = [t.tree_ for t in est.estimators_]
        n, B = X.shape[0], len(trees)
        K = self.n_outputs
        if self.is_regressor:
            Y = np.asarray(y_encoded, dtype=np.float64)[:, None]
        else:
            Y = np.zeros((n, K))
            Y[np.arange(n), y_encoded] = 1.0
        self.offsets_ = np.cumsum([0] + [t.node_count for t in trees])[:-1]
        self.n_trees_, self.n_nodes_ = B, int(sum(t.node_count for t in trees))
        leaves = self._leaves(X)  # (n, B)
        draw_weights = self._draw_weights(y_encoded, sample_weight)
        if est.bootstrap:
            n_draws = _n_bootstrap(n, est.max_samples, draw_weights)
        U = np.empty((B, n))
        value = np.empty((self.n_nodes_, K))
        weight = np.empty(self.n_nodes_)
        count = np.empty(self.n_nodes_)
        parent = np.empty(self.n_nodes_, dtype=np.int64)
        for b, (tree, estimator) in enumerate(zip(trees, est.estimators_)):
            if est.bootstrap:
                drawn = _draw(estimator.random_state, n, n_draws, draw_weights)
                u = np.bincount(drawn, minlength=n).astype(np.float64)
                if not WEIGHTED_DRAWS and draw_weights is not None:
                    u *= draw_weights
                if not self.is_regressor and est.class_weight == "balanced_subsample":
                    u *= compute_sample_weight("balanced", y_encoded, indices=drawn)
            else:
                u = np.ones(n) if draw_weights is None else draw_weights
            local = leaves[:, b] - self.offsets_[b]
            W, S, c, pure, common = _node_sums(
                local, u, Y, tree, purity=self.is_regressor
            )
            self._check_tree(b, tree, W, S)
            nodes = slice(self.offsets_[b], self.offsets_[b] + tree.node_count)
            U[b] = u
            weight[nodes], count[nodes] = W, c
            # a node whose rows share one target has exactly that value (the
            # weighted mean rounds it), so their gradients are exactly 0
            value[nodes] = np.where(
                pure[:, None], common, S / np.where(W > 0, W, 1.0)[:, None]
            )
            local_parent = _parents(tree)
            parent[nodes] = np.where(
                local_parent >= 0, local_parent + self.offsets_[b], -1
            )
        self.Y_, self.U_, self.leaves_ = Y, U, leaves.T.copy()  # (B, n)
        self.node_value_, self.node_weight_, self.node_count_ = value, weight, count
        self.node_parent_ = parent
        # A leaf with one example of positive weight is emptied by its removal:
        # the parent's value and weight take its place (module docstring).
        alone = (count == 1) & (parent >= 0)
        self.removal_value_ = np.where(
            alone[:, None], value[np.maximum(parent, 0)], value
        )
        self.baseline_ = 0.0 if self.is_regressor else np.zeros(K)
        in_bag = np.flatnonzero((U > 0).any(axis=0))
        return None if in_bag.size == n else in_bag

    def _check_tree(self, b, tree, W, S) -> None:
        """Every node's weight and value against the fitted tree."""
        fitted_value = tree.value[:, 0, :]
        fitted_weight = tree.weighted_n_node_samples
        with np.errstate(divide="ignore", invalid="ignore"):
            value = S / W[:, None]
        scale = max(np.abs(fitted_value).max(), np.finfo(float).tiny)
        bad_value = ~(
            np.abs(value - fitted_value)
            <= NODE_TOLERANCE * (np.abs(fitted_value) + scale)
        )
        bad_weight = ~(
            np.abs(W - fitted_weight)
            <= NODE_TOLERANCE * (fitted_weight + fitted_weight[0])
        )
        if bad_value.any() or bad_weight.any():
            name = type(self.estimator).__name__
            n_bad = int((bad_value.any(axis=1) | bad_weight).sum())
            raise ValueError(
                f"Tree {b} of the {name} does not match the X, y (and sample_weight) "
                "given to fit: the node weights and values recomputed from its "
                f"in-bag draw differ from the fitted ones at {n_bad} "
                "nodes. Pass exactly the X, y and sample_weight the model was "
                "trained on, in the same order."
            )

    # -- per (tree, example) coefficients -------------------------------------------
    def _coefficients(self, rows, method: str) -> sparse.csr_matrix:
        """CSR (n_rows, n_nodes): example ``i``'s coefficient at its leaf of every
        tree it is in the bag of: ``u/(B W)`` ("if", RelatIF, decompose) or the
        exact removal's (``"newton"``, module docstring)."""
        index = np.arange(self.n_train_)[rows]
        U = self.U_[:, index]  # (B, r)
        leaf = self.leaves_[:, index]
        W = self.node_weight_[leaf]
        if method == "newton":
            alone = self.node_count_[leaf] == 1
            parent = self.node_parent_[leaf]
            W_parent = self.node_weight_[np.maximum(parent, 0)]
            coef = _removal_coefficients(U, W, W_parent, alone, parent >= 0)
        else:
            coef = U / W
        coef = coef / self.n_trees_
        r, B = len(index), self.n_trees_
        M = sparse.csr_matrix(
            (coef.T.ravel(), leaf.T.ravel(), np.arange(0, r * B + 1, B)),
            shape=(r, self.n_nodes_),
        )
        M.eliminate_zeros()
        return M

    def _targets(self, index) -> np.ndarray:
        """The targets (regressors) or labels (classifiers) of training rows."""
        if self.is_regressor:
            return self.Y_[index, 0]
        return self.y_[index]

    def _gradient_norms(self) -> tuple[np.ndarray, np.ndarray]:
        """``||Δθ_i||^2`` and ``ĝ_i^T H^-1 ĝ_i`` of every training example."""
        theta = np.zeros(self.n_train_)
        ell = np.zeros(self.n_train_)
        for b in range(self.n_trees_):
            leaf, u = self.leaves_[b], self.U_[b]
            residual = ((self.Y_ - self.node_value_[leaf]) ** 2).sum(axis=1)
            W = self.node_weight_[leaf]
            ell += u**2 * residual / W
            theta += u**2 * residual / W**2
        return theta, ell

    # -- the protocol ------------------------------------------------------------------
    def train_scale(self, method: str) -> np.ndarray:
        """1 for ``"if"`` and ``"newton"``; ``1/||Δθ_i||`` ("theta-relatif") and
        ``1/sqrt(ĝ_i^T H^-1 ĝ_i)`` ("l-relatif"), 0 where that is 0."""
        in_bag = (self.U_ > 0).any(axis=0)
        if method in ("if", "newton"):
            return in_bag.astype(np.float64)
        theta, ell = self._gradient_norms()
        norms = np.sqrt(theta if method == "theta-relatif" else ell)
        return np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)

    def self_influence(self) -> np.ndarray:
        """The ``"if"`` score of each training example explained at its own
        label: ``∇l_i · Δf_i(x_i)``."""
        B = self.n_trees_
        change = np.zeros((self.n_train_, self.n_outputs))
        for b in range(B):
            leaf, u = self.leaves_[b], self.U_[b]
            change -= (u / self.node_weight_[leaf])[:, None] * (
                self.Y_ - self.node_value_[leaf]
            )
        change /= B
        output = np.zeros((self.n_train_, self.n_outputs))
        for b in range(B):
            output += self.node_value_[self.leaves_[b]]
        output /= B
        if self.is_regressor:
            return -2.0 * (self.Y_[:, 0] - output[:, 0]) * change[:, 0]
        rows = np.arange(self.n_train_)
        p = output[rows, self.y_]
        return -change[rows, self.y_] / np.maximum(p, EPS)

    def self_products(self, rows):
        return self.self_influence()[rows]

    def _indicator(self, leaves: np.ndarray, data: np.ndarray) -> sparse.csr_matrix:
        """CSR (n, n_nodes): ``data`` (n, B) at each row's leaf of every tree."""
        n, B = leaves.shape
        return sparse.csr_matrix(
            (data.ravel(), leaves.ravel(), np.arange(0, n * B + 1, B)),
            shape=(n, self.n_nodes_),
        )

    def test_state(self, X: Any, y_encoded: np.ndarray | None, method: str = "if"):
        """The test points' leaves as ``1 + i v`` (``v`` the leaf's value of the
        explained column; for ``"newton"`` the parent's where one example
        empties the leaf), so that one complex product gives ``A + i A^v``;
        their labels, the output (or the residual) and ``∇l_t``."""
        leaves = self._leaves(X)  # (n, B)
        n = leaves.shape[0]
        values = self.removal_value_ if method == "newton" else self.node_value_
        explained = y_encoded is not None and not self.is_regressor
        column = np.asarray(y_encoded) if explained else np.zeros(n, dtype=np.int64)
        indicator = self._indicator(leaves, 1.0 + 1j * values[leaves, column[:, None]])
        output = self.node_value_[leaves, column[:, None]].mean(axis=1)  # f_t or p_c
        if not self.is_regressor:
            return indicator, column, method, output, -1.0 / np.maximum(output, EPS)
        if y_encoded is None:  # the prediction: ∇l = -1 ("newton": -Δf)
            factor = None if method == "newton" else -np.ones(n)
            return indicator, None, method, output, factor
        residual = np.asarray(y_encoded, dtype=np.float64) - output
        return indicator, None, method, residual, -2.0 * residual

    def payload(self, rows, method: str = "if") -> tuple:
        index = np.arange(self.n_train_)[rows]
        return self._coefficients(index, method), self._targets(index)

    def cross_function(self, method: str):
        return _cross

    def test_row_bytes(self) -> int:
        return 40 * self._bound("n_trees_")

    def dot_bytes_per_pair(self) -> int:
        return 8 * 2

    @staticmethod
    def cross(test_state, *payload):
        return _cross(test_state, *payload)

    # -- exact removal -----------------------------------------------------------------
    def decompose(self, X: Any) -> np.ndarray:
        """``A(x_t, i) y_i``: (n_test, n_train) for a regressor, (n_test, n_train,
        K) for a classifier; summed over the training examples it is the
        forest's ``predict`` / ``predict_proba`` (``baseline_ = 0``)."""
        leaves = self._leaves(X)
        ones = self._indicator(leaves, np.ones(leaves.shape))
        A = np.empty((leaves.shape[0], self.n_train_))
        for rows in chunk_slices(self.n_train_, 8 * 4 * max(leaves.shape[0], 1)):
            A[:, rows] = (ones @ self._coefficients(rows, "if").T).toarray()
        if self.is_regressor:
            return A * self.Y_[:, 0]
        return A[:, :, None] * self.Y_[None, :, :]

    def _own_changes(self, method: str) -> np.ndarray:
        """``Δf_i(x_i)`` (n_train, K): each example's own output change when it
        is removed, to first order (``"if"``) or exactly (``"newton"``)."""
        change = np.zeros((self.n_train_, self.n_outputs))
        for b in range(self.n_trees_):
            leaf, u = self.leaves_[b], self.U_[b]
            W = self.node_weight_[leaf]
            if method == "newton":
                parent = self.node_parent_[leaf]
                coef = _removal_coefficients(
                    u,
                    W,
                    self.node_weight_[np.maximum(parent, 0)],
                    self.node_count_[leaf] == 1,
                    parent >= 0,
                )
                values = self.removal_value_[leaf]
            else:
                coef, values = u / W, self.node_value_[leaf]
            change -= coef[:, None] * (self.Y_ - values)
        return change / self.n_trees_

    def _own_outputs(self) -> np.ndarray:
        output = np.zeros((self.n_train_, self.n_outputs))
        for b in range(self.n_trees_):
            output += self.node_value_[self.leaves_[b]]
        return output / self.n_trees_

    def loo_outputs(self) -> np.ndarray:
        """Each training example's own outputs (n_train, K) with it removed,
        the structure fixed (module docstring)."""
        return self._own_outputs() + self._own_changes("newton")

    def _group_change(self, group) -> tuple[np.ndarray, np.ndarray]:
        """The leaves (global node indices) whose values removing ``group``
        changes, and the changes (m, K): weighted sums removed along every
        path, an emptied leaf taking its nearest ancestor's value without the
        group (module docstring)."""
        group = np.asarray(group, dtype=np.int64)
        U, leaf = self.U_[:, group], self.leaves_[:, group]
        in_bag = U > 0
        u, node = U[in_bag], leaf[in_bag]
        Y = np.broadcast_to(self.Y_[group][None], (*U.shape, self.n_outputs))[in_bag]
        if not node.size:  # in no tree's bag: nothing changes
            return node, np.zeros((0, self.n_outputs))
        # every (ancestor-or-self, removed example) pair, summed per node
        nodes, members = [], []
        current, member = node, np.arange(node.size)
        while current.size:
            nodes.append(current)
            members.append(member)
            parent = self.node_parent_[current]
            current, member = parent[parent >= 0], member[parent >= 0]
        member = np.concatenate(members)
        touched, inverse = np.unique(np.concatenate(nodes), return_inverse=True)
        removed_weight = np.bincount(inverse, weights=u[member])
        removed_count = np.bincount(inverse).astype(np.float64)
        removed_sum = np.column_stack(
            [
                np.bincount(inverse, weights=u[member] * Y[member, k])
                for k in range(self.n_outputs)
            ]
        )
        changed = np.unique(node)
        target = changed.copy()  # the node whose value, without G, a leaf takes
        position = np.searchsorted(touched, target)
        empty = self.node_count_[target] - removed_count[position] <= 0
        while empty.any():
            up = self.node_parent_[target[empty]]
            stuck = up < 0  # the whole bag removed: the tree keeps its values
            idx = np.flatnonzero(empty)
            target[idx[stuck]] = -1
            target[idx[~stuck]] = up[~stuck]
            empty[idx[stuck]] = False
            live = idx[~stuck]
            position[live] = np.searchsorted(touched, target[live])
            empty[live] = (
                self.node_count_[target[live]] - removed_count[position[live]] <= 0
            )
        change = np.zeros((changed.size, self.n_outputs))
        ok = target >= 0
        t, pos = target[ok], position[ok]
        W = self.node_weight_[t] - removed_weight[pos]
        S = self.node_weight_[t][:, None] * self.node_value_[t] - removed_sum[pos]
        change[ok] = S / W[:, None] - self.node_value_[changed[ok]]
        return changed, change

    def removal_outputs(self, X: Any, groups) -> np.ndarray:
        """The outputs of ``X`` (n_test, n_groups, K) after removing each group
        (a list of int arrays) together, the structure fixed."""
        leaves = self._leaves(X)
        n, B = leaves.shape
        K = self.n_outputs
        Z = self._indicator(leaves, np.ones(leaves.shape))
        rows, columns, data = [], [], []
        for g, group in enumerate(groups):
            changed, change = self._group_change(group)
            for k in range(K):
                rows.append(changed)
                columns.append(np.full(changed.size, g * K + k))
                data.append(change[:, k])
        D = sparse.csr_matrix(
            (np.concatenate(data), (np.concatenate(rows), np.concatenate(columns))),
            shape=(self.n_nodes_, len(groups) * K),
        )
        moved = (Z @ D).toarray().reshape(n, len(groups), K) / B
        return self.outputs(X)[:, None, :] + moved

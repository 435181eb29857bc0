"""The :class:`InfluenceExplainer` estimator: parameters, fit, transform,
explain; nothing model-specific (see :mod:`skrelatif._influence` and
:mod:`skrelatif._adapters`)."""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import Bunch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._adapters import METHODS, decomposing_estimators, find_adapter
from ._base import _BaseExplainer, _final_step
from ._curvature import CURVATURES, LEGACY_HESSIANS, resolve
from ._explanation import Explanation
from ._influence import influence_class
from ._removal.flips import flip_sets as _flip_sets
from ._removal.groups import check_groups
from ._scoring import score_matrix, top_k
from ._solvers import SOLVERS


class InfluenceExplainer(_BaseExplainer):
    """Explain a model's predictions with the training examples behind them.

    For a test point ``t`` and a training example ``i``, the score says how
    much ``i`` supports what is explained for ``t``: the test loss at the
    predicted label (a classifier), at the given labels or targets, or, for a
    regressor without targets, the prediction itself. Positive scores are
    *proponents* (removing ``i`` would raise the test loss, or lower the
    prediction), negative scores *opponents*. With ``g`` the gradient of an
    example's loss at the fitted parameters, ``H`` the Hessian of the model's
    own training objective ``F = c sum_i s_i l_i + R(theta)`` (plus ``damping
    * I``; ``c`` the objective's constant, e.g. ``C`` of a logistic
    regression, ``s_i`` the example's sample x class weight):

    - ``"if"`` (influence function, Koh & Liang 2017):
      ``c s_i g_t^T H^-1 g_i``, the first-order change of the test loss when
      ``i`` is removed and the model refitted;
    - ``"theta-relatif"``: ``g_t^T H^-1 g_i / ||H^-1 g_i||``, that change per
      unit of parameter change (Barshan et al. 2020);
    - ``"l-relatif"``: ``g_t^T H^-1 g_i / sqrt(g_i^T H^-1 g_i)``, that change
      relative to the example's effect on all training losses;
    - ``"newton"``: the change of the test loss after one Newton step of the
      objective without ``i`` (a rank-K Woodbury update of ``H``, K the number
      of outputs), the loss evaluated exactly at the new parameters: a
      second-order estimate, exact leave-one-out for squared loss.

    RelatIF scores discount examples with a large global influence (outliers,
    mislabelled points), so they favour typical examples of the explained class.
    They depend on ``g_i`` only through its direction, which is computed without
    underflow: an example the model fits with near certainty still gets a
    finite score, and only an example whose gradient direction is exactly zero
    (all-zero features and no intercept) scores 0.

    Read more in the :ref:`User Guide <user_guide>`.

    Parameters
    ----------
    model : estimator
        A scikit-learn model of a supported family (linear models with a
        smooth loss: logistic, least-squares, GLM and SGD models; neural
        networks; kernel and linear SVMs), whose list, with each class's
        objective, curvatures and methods, is the :ref:`Supported models
        <supported_models>` page (generated from the model adapters); or a
        :class:`~sklearn.pipeline.Pipeline` whose last step is one (its
        earlier steps, at every level of nesting, transform X first), or a
        :class:`~sklearn.frozen.FrozenEstimator` of either. Dispatch is on
        exact types: a subclass gets a clear ``TypeError``. A fitted model is
        used as is and never modified or refitted (cloning the explainer keeps
        it); an unfitted one is cloned and fitted in :meth:`fit`. A model
        whose prediction is a sum over its training examples (SVMs) is scored
        from that sum, for the examples it holds (support vectors; every
        other example scores 0), as in Barshan et al. (2020, appendix F): see
        :ref:`svm`.
    method : {"if", "theta-relatif", "l-relatif", "newton"}, default="l-relatif"
        The score.
    hessian : {"auto", "exact", "gauss-newton", "identity"}, default="auto"
        Which matrix stands for the curvature ``H``; ``"auto"`` is the model
        family's own (the "Supported models" page lists them): ``"exact"``
        for linear models, ``"gauss-newton"`` for networks.

        - ``"exact"``: the Hessian of the training objective.
        - ``"gauss-newton"``: the generalised Gauss-Newton matrix
          ``sum_i w_i J_i^T D_i J_i + diag(p)`` (the Fisher; positive
          semi-definite). For a linear model it is the same matrix as
          ``"exact"``.
        - ``"identity"``: ``H = I``, plain gradient similarity (the baseline
          of Barshan et al., Fig. 6); needs no solver.

        The old spellings ``"block-diagonal"``, ``"cg"``, ``"lissa"`` and
        ``"kfac"`` are deprecated (a ``FutureWarning`` names the new pair).
        SVMs take only ``"auto"`` (their Hessian is the identity in the
        kernel's feature space).
    solver : {"auto", "cholesky", "block-diagonal", "cg", "lissa", "kfac", \
            "ekfac"}, default="auto"
        How ``H`` is inverted; any solver the family provides for that
        curvature (a pair that cannot work is refused before any work,
        naming those that do).

        - ``"cholesky"``: the dense P x P matrix (P = number of parameters),
          factorised once; exact.
        - ``"block-diagonal"``: the per-class diagonal blocks of H
          (cross-class curvature dropped, Barshan et al. appendix C); K
          factorisations of size n_features; approximate.
        - ``"cg"``: conjugate gradients on matrix-free products; exact up to
          ``tol``, no P x P matrix. RelatIF and ``self_influence_`` need one
          solve per training example.
        - ``"lissa"``: the stochastic estimator of Agarwal et al. (2017) used
          by Koh & Liang (2017); approximate.
        - ``"kfac"``: Kronecker-factored per layer (networks' Gauss-Newton
          matrix, Barshan et al. appendix C); approximate.
        - ``"ekfac"``: eigenvalue-corrected K-FAC (George et al. 2018): K-FAC's
          per-layer eigenbasis with the diagonal refitted to the data;
          approximate, closer to the Gauss-Newton matrix than ``"kfac"``.
        - ``"auto"``: the solver with the lowest estimated cost (flops and
          bytes, for the work the method needs: every training example's
          normaliser for RelatIF) that fits in the available memory,
          preferring an exact one unless an approximate one is estimated more
          than 1.5 times faster; refused before allocating when none fits.
          ``solver_`` says what was chosen, ``verbose=1`` prints each
          candidate's estimate, and an approximate choice reports its
          measured error in ``normaliser_error_``.
    damping : float >= 0 or "auto", default="auto"
        ``lambda`` added to the curvature's diagonal, ``H + lambda I``.
        ``"auto"``: 0 for a convex objective (linear models), or, if its
        curvature is singular (e.g. ``C=np.inf`` with collinear features),
        1e-8 of its mean diagonal with a warning; for a network 0.1 of the
        curvature's mean diagonal ``trace(H) / P`` (measured against
        retraining: the user guide's networks page). SVMs take only
        ``"auto"`` or 0.
    solver_options : dict, default=None
        Options of the chosen ``solver``: ``{"tol": 1e-8, "max_iter": 1000}``
        for ``"cg"``; ``{"scale": None, "depth": 1000, "repeats": 1,
        "batch_size": 100}`` for ``"lissa"`` (``scale=None``: twice the
        largest eigenvalue of H); ``{"layer_damping": None, "cross_rank":
        8}`` for ``"ekfac"`` (``layer_damping``, a fraction: damp each layer
        by that fraction of its mean corrected eigenvalue, as kronfluence
        does, instead of ``damping``; ``cross_rank``: the rank per layer of
        the test-train products, 0 for the exact ones). Needs ``solver``
        named.
    hessian_options : dict, default=None
        Deprecated: the old name of ``solver_options``.
    n_jobs : int, default=None
        Number of joblib jobs over chunks of training examples. ``None`` means
        1 unless in a :func:`joblib.parallel_config` context (which also selects
        the backend, e.g. ``"dask"`` for a Dask cluster). Chunks are sized by
        scikit-learn's ``working_memory``; results do not depend on either.
    random_state : int, RandomState instance or None, default=None
        Seeds the minibatches of ``solver="lissa"``.
    verbose : int, default=0
        Progress messages: 1 per stage of ``fit``/``explain``, 2 per chunk.

    Attributes
    ----------
    estimator_ : estimator
        The fitted model that is explained (``model`` itself when it was fitted).
    self_influence_ : ndarray of shape (n_train,)
        ``c s_i g_i^T H^-1 g_i``: the predicted rise of example ``i``'s own
        loss when it is removed; large for outliers and mislabelled examples
        (``method="newton"``: the Newton leave-one-out rise, ``loo_loss_``
        minus the training loss). With ``method="if"`` it is computed on first
        access. For a kernel that is not positive semi-definite it can be
        negative (see :mod:`skrelatif._adapters.svm`).
    loo_loss_ : ndarray of shape (n_train,)
        Each example's loss under the model refit without it, by one Newton
        step (exact for squared loss): leave-one-out cross-validation from one
        fit. Computed on first access unless ``method="newton"``.
    baseline_ : float or ndarray of shape (n_outputs,)
        The constant of :meth:`decompose` (models whose output is a sum over
        training examples).
    hessian_ : str
        The curvature used (``"auto"`` resolved).
    solver_ : str or None
        The solver used (``"auto"`` resolved); None when the curvature needs
        no inversion (``hessian_="identity"``, SVMs).
    damping_ : float
        The damping used (``"auto"`` resolved).
    normaliser_error_ : float or None
        For an approximate solver: the largest relative error of the
        method's normaliser (``"if"``, ``"newton"``: of ``g_i^T H^-1 g_i``)
        on 16 training examples, against the exact inverse of the same
        curvature (a Cholesky factorisation up to 4,000 parameters, conjugate
        gradients to 1e-8 beyond). None for an exact solver.
    classes_ : ndarray of shape (n_classes,)
        The model's classes (classifiers only).
    n_features_in_ : int
        Number of features seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when X has feature names that are all strings.

    See Also
    --------
    skrelatif.Explanation : The result of :meth:`explain`.
    skrelatif.NearestNeighborExplainer : The nearest-neighbour baseline.
    skrelatif.validation.leave_one_out : Check the scores by retraining.

    Notes
    -----
    Memory stays bounded whatever the data size: training examples are
    processed in chunks sized by scikit-learn's ``working_memory`` (see
    :func:`sklearn.config_context`), no matrix of all training gradients is
    formed, sparse X is never densified whole, and :meth:`explain` keeps a
    running top-k instead of the score matrix. float32 X is kept and computed
    in float32 where a measured accuracy check allows (the Hessian's measured
    float32 error times its condition number at most 1), otherwise in float64.

    References
    ----------
    .. [1] P. W. Koh and P. Liang. Understanding black-box predictions via
       influence functions. ICML 2017.
    .. [2] E. Barshan, M.-E. Brunet and G. K. Dziugaite. RelatIF: Identifying
       explanatory training examples via relative influence. AISTATS 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skrelatif import InfluenceExplainer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-8))
    >>> model = model.fit(X[:400], y[:400])
    >>> explainer = InfluenceExplainer(model, method="l-relatif").fit(X[:400], y[:400])
    >>> scores = explainer.transform(X[400:403])
    >>> scores.shape
    (3, 400)
    >>> e = explainer.explain(X[400:403], k=2)
    >>> e.proponents.shape, e.target.shape
    ((3, 2), (3,))
    >>> bool((e.proponent_scores[:, 0] == scores.max(axis=1)).all())
    True
    """

    _parameter_constraints: dict = {
        "model": [HasMethods(["fit"])],
        "method": [StrOptions(set(METHODS))],
        "hessian": [
            StrOptions(
                {"auto", *CURVATURES, *LEGACY_HESSIANS}, deprecated=set(LEGACY_HESSIANS)
            )
        ],
        "solver": [StrOptions({"auto", *SOLVERS})],
        "damping": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "solver_options": [dict, None],
        "hessian_options": [dict, None],
        "n_jobs": [
            Interval(Integral, None, -1, closed="right"),
            Interval(Integral, 1, None, closed="left"),
            None,
        ],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        model: Any,
        *,
        method: str = "l-relatif",
        hessian: str = "auto",
        solver: str = "auto",
        damping: float | str = "auto",
        solver_options: dict | None = None,
        hessian_options: dict | None = None,
        n_jobs: int | None = None,
        random_state: Any = None,
        verbose: int = 0,
    ) -> None:
        self.model = model
        self.method = method
        self.hessian = hessian
        self.solver = solver
        self.damping = damping
        self.solver_options = solver_options
        self.hessian_options = hessian_options
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # -- fitting -----------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> InfluenceExplainer:
        """Prepare the explanations of ``model`` trained on ``X, y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The training data of the model (raw input for a pipeline).
        y : array-like of shape (n_samples,)
            The training labels (or targets, for a regressor).
        sample_weight : array-like of shape (n_samples,), default=None
            The sample weights the model was (or is to be) trained with.

        Returns
        -------
        self : InfluenceExplainer
            The fitted explainer.
        """
        # Nothing is set on self until everything has succeeded: bad input
        # changes nothing.
        final = _final_step(self.model)
        adapter_class = find_adapter(final)
        options = self.solver_options
        if self.hessian_options is not None:
            if options is not None:
                raise ValueError(
                    "hessian_options is the old name of solver_options; pass only "
                    "solver_options."
                )
            warnings.warn(
                "hessian_options is deprecated and will be removed in a future "
                "release: use solver_options.",
                FutureWarning,
                stacklevel=3,
            )
            options = self.hessian_options
        choice = resolve(
            adapter_class,
            method=self.method,
            hessian=self.hessian,
            solver=self.solver,
            damping=self.damping if self.damping == "auto" else float(self.damping),
            options=options,
            name=type(final).__name__,
        )
        X_checked, y, sample_weight = self._validate_train(X, y, sample_weight)
        estimator = self._fitted_model(X_checked, y, sample_weight)
        adapter = adapter_class(_final_step(estimator))
        influence = influence_class(adapter_class, self.method)(
            adapter,
            method=self.method,
            choice=choice,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            verbose=self.verbose,
        ).fit(
            self._final_input(X_checked, estimator),
            adapter.encode_target(y, what="y"),
            sample_weight,
        )
        self.estimator_ = estimator
        self._influence = influence
        self.hessian_ = influence.hessian_
        self.solver_ = influence.solver_name_
        self.damping_ = influence.damping_
        self.normaliser_error_ = influence.normaliser_error_
        self._train_target = np.asarray(y)
        self._fit_sample_weight = sample_weight  # as given (no class weight)
        if adapter.is_regressor:
            self.__dict__.pop("classes_", None)
        else:
            self.classes_ = adapter.classes_
        self._n_features_out = influence.n_train_
        self._set_n_features(X)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_influence")

    @property
    def self_influence_(self) -> np.ndarray:
        """``c s_i g_i^T H^-1 g_i`` per training example (see the class docstring)."""
        check_is_fitted(self)
        return self._influence.self_influence_

    # -- explaining --------------------------------------------------------------------
    def _test_input(self, X, y):
        """The model's input for X and the encoded targets explained (None for a
        regressor's predictions) with the targets reported."""
        Xt = self._test_model_input(X)
        adapter = self._influence.adapter
        if y is None:
            predicted = adapter.predict_target(Xt)
            y_encoded = None if adapter.is_regressor else predicted
            return Xt, y_encoded, adapter.decode_target(predicted)
        y_encoded = adapter.encode_target(self._test_target(Xt, y), what="y")
        return Xt, y_encoded, adapter.decode_target(y_encoded)

    def transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Score every training example for every row of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_test, n_features)
            The points to explain.
        y : array-like of shape (n_test,), default=None
            The labels (or targets) to explain: the test loss at ``y``. When
            None, a classifier explains its predicted labels and a regressor
            its predictions themselves (positive: the example pushes the
            prediction up).

        Returns
        -------
        scores : ndarray of shape (n_test, n_train)
            ``scores[t, i]``: the score of training example ``i`` for test point
            ``t`` (positive: proponent). For many test points prefer
            :meth:`explain`, which never holds the whole matrix.
        """
        Xt, y_encoded, _ = self._test_input(X, y)
        return score_matrix(self._influence, Xt, y_encoded, n_jobs=self.n_jobs)

    def explain(self, X: Any, y: Any = None, k: int = 5) -> Explanation:
        """The ``k`` strongest proponents and opponents of each row of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_test, n_features)
            The points to explain.
        y : array-like of shape (n_test,), default=None
            The labels (or targets) to explain; the model's predictions when
            None (see :meth:`transform`).
        k : int, default=5
            How many proponents and opponents to return per point.

        Returns
        -------
        explanation : Explanation
            ``proponents``/``opponents`` (training indices) and their scores,
            each of shape (n_test, k), strongest first; ``target``, the labels
            (or, for a regressor, the predictions or targets) explained.
        """
        check_is_fitted(self)
        influence = self._influence
        candidates = influence.candidates_
        n_candidates = influence.n_train_ if candidates is None else len(candidates)
        k = self._check_k(k, n_candidates, influence.adapter.candidate_name)
        Xt, y_encoded, target = self._test_input(X, y)
        top = top_k(
            influence, Xt, y_encoded, k, n_jobs=self.n_jobs, verbose=self.verbose
        )
        return self._explanation(top, target, self.method, target_given=y is not None)

    # -- decomposition -----------------------------------------------------------------
    def _decomposing_adapter(self):
        check_is_fitted(self)
        adapter = self._influence.adapter
        if not adapter.decomposes:
            raise ValueError(
                f"The output of {type(adapter.estimator).__name__} is not offered "
                "as a sum over its training examples. decompose works for "
                f"{', '.join(decomposing_estimators()) or 'no model yet'}."
            )
        return adapter

    def decompose(self, X: Any) -> np.ndarray:
        """Each training example's contribution to the model's raw output.

        The raw output (documented per family on the Supported models page:
        ``decision_function`` for SVMs and boosted trees, ``predict`` or
        ``predict_proba`` for forests and neighbours, ``predict`` for kernel
        ridge, ...) is ``baseline_`` plus the sum of the contributions over
        the training examples.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_test, n_features)
            The points whose outputs are decomposed.

        Returns
        -------
        contributions : ndarray of shape (n_test, n_train[, n_outputs])
            ``contributions[t, i]``: training example ``i``'s share of the
            output for ``X[t]`` (a third axis for models with several
            outputs).
        """
        adapter = self._decomposing_adapter()
        return adapter.decompose(self._test_model_input(X))

    @property
    def baseline_(self) -> float | np.ndarray:
        """The constant of :meth:`decompose` (see the class docstring)."""
        try:
            adapter = self._decomposing_adapter()
        except ValueError as exc:
            raise AttributeError(str(exc)) from None
        return adapter.baseline_

    # -- beyond first order ------------------------------------------------------------
    @property
    def loo_loss_(self) -> np.ndarray:
        """Each training example's loss under the model refit without it.

        Approximate leave-one-out cross-validation from one fit: one Newton
        step of the leave-one-out objective per example (exact for squared
        loss), computed on first access unless ``method="newton"``. Not
        defined for kernel SVMs (no curvature).
        """
        check_is_fitted(self)
        return self._influence.loo_loss_

    def _removable(self, what: str) -> None:
        check_is_fitted(self)
        self._influence.check_removal(what)

    def predict_removal(
        self, X: Any, y: Any = None, *, groups: Any, method: str = "newton"
    ) -> np.ndarray:
        """Predicted change of each test loss when each group is removed.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_test, n_features)
            The points whose losses are tracked.
        y : array-like of shape (n_test,), default=None
            Their labels (or targets); the predictions when None (for a
            regressor: minus the change of the prediction itself).
        groups : sequence of int or of array-like of int
            One removal per element: an int removes that training example
            alone, a 1-d array-like of ints removes those examples together
            (e.g. all examples of one data source). So ``[0, 1, 2]`` and
            ``np.array([0, 1, 2])`` are three single removals, ``[[0, 1, 2]]``
            one group of three and a 2-d int array one group per row: the
            meaning of ``indices`` in
            :func:`skrelatif.validation.leave_one_out`.
        method : {"newton", "first-order"}, default="newton"
            ``"first-order"``: the sum of the group's ``"if"`` scores.
            ``"newton"``: one Newton step of the objective without the group
            (Woodbury, rank ``len(group) * n_outputs``) and the test loss
            evaluated exactly at the new parameters; exact for a linear model
            with squared loss.

        Returns
        -------
        change : ndarray of shape (n_test, n_groups)
            Positive: removing the group raises the test loss.

        Examples
        --------
        >>> from sklearn.datasets import load_breast_cancer
        >>> from sklearn.linear_model import LogisticRegression
        >>> from sklearn.preprocessing import StandardScaler
        >>> from skrelatif import InfluenceExplainer
        >>> X, y = load_breast_cancer(return_X_y=True)
        >>> X = StandardScaler().fit_transform(X)
        >>> model = LogisticRegression(C=0.1, tol=1e-10).fit(X[:300], y[:300])
        >>> ex = InfluenceExplainer(model).fit(X[:300], y[:300])
        >>> ex.predict_removal(X[300:302], groups=[[0, 1, 2], range(100)]).shape
        (2, 2)
        >>> ex.predict_removal(X[300:302], groups=[0, 1, 2]).shape  # one by one
        (2, 3)
        """
        self._removable("predict_removal")
        if method not in ("newton", "first-order"):
            raise ValueError(
                f"method must be 'newton' or 'first-order'; got {method!r}."
            )
        groups = check_groups(groups, self._influence.n_train_)
        Xt, y_encoded, _ = self._test_input(X, y)
        return self._influence.predict_removal(
            Xt, y_encoded, groups, method, n_jobs=self.n_jobs
        )

    def flip_sets(self, X: Any, *, max_size: int = 50, verify: bool = True) -> Bunch:
        """The fewest training examples whose removal changes each prediction.

        For each test point: training examples are ranked by how much their
        own removal (one Newton step) lowers the margin of the predicted
        label, and the shortest prefix of that ranking whose removal together
        (the group Newton step) changes the predicted label is returned. With
        ``verify=True`` each set is confirmed by refitting the model without
        it (Newton iterations to the exact optimum): a set that does not
        change the label on refit is extended, and one whose last element is
        not needed is shortened, so removing the set without its last example
        does not change the label.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_test, n_features)
            The points whose predictions are examined.
        max_size : int, default=50
            The largest set searched (an integer >= 1); one larger than the
            training set searches all of it.
        verify : bool, default=True
            Confirm each set by refitting without it.

        Returns
        -------
        result : :class:`~sklearn.utils.Bunch`
            ``size`` (n_test,) int: the set's size, -1 when no set of at most
            ``max_size`` examples was found; ``indices``: a list of int arrays
            (training indices, in removal order; empty when none); ``verified``
            (n_test,) bool: the refit without the set changes the label.

        Examples
        --------
        >>> from sklearn.datasets import load_breast_cancer
        >>> from sklearn.linear_model import LogisticRegression
        >>> from sklearn.preprocessing import StandardScaler
        >>> from skrelatif import InfluenceExplainer
        >>> X, y = load_breast_cancer(return_X_y=True)
        >>> X = StandardScaler().fit_transform(X)
        >>> model = LogisticRegression(C=0.1, tol=1e-10).fit(X[:300], y[:300])
        >>> ex = InfluenceExplainer(model).fit(X[:300], y[:300])
        >>> result = ex.flip_sets(X[300:303], max_size=20)
        >>> result.size.shape, len(result.indices)
        ((3,), 3)
        """
        self._removable("flip_sets")
        influence = self._influence
        if influence.adapter.is_regressor:
            raise ValueError(
                "flip_sets needs a classifier (a predicted label to change); "
                f"{type(influence.adapter.estimator).__name__} is a regressor. Use "
                "predict_removal to see how removing groups moves a prediction."
            )
        if (
            isinstance(max_size, bool)
            or not isinstance(max_size, Integral)
            or max_size < 1
        ):
            raise ValueError(
                f"max_size must be an integer >= 1 (the largest set searched); "
                f"got max_size={max_size!r}."
            )
        # larger than the training set: search all of it (a set leaves one)
        max_size = min(int(max_size), influence.n_train_ - 1)
        Xt, labels, _ = self._test_input(X, None)
        return _flip_sets(influence, Xt, labels, max_size, verify, n_jobs=self.n_jobs)

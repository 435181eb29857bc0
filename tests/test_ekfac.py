"""EK-FAC (``solver="ekfac"``) against independent dense computations: the
Gauss-Newton matrix from explicit per-example Jacobians (the reference of
``test_mlp.py``), its per-layer blocks projected on the Kronecker eigenbasis
by ``np.kron``, and ``np.linalg.solve``."""

import copy
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer
from skrelatif._solvers import SOLVERS, EKFACInverse, KFACInverse, ProblemSize
from skrelatif._solvers._auto import choose_solver

from ._dense import fitted_state
from .test_mlp import KINDS, Reference, _adapter, _fit, _jacobian, _rel


def _layer_blocks(ref, model, X, y, weights):
    """The Gauss-Newton matrix's per-layer diagonal blocks (penalty included),
    from explicit per-example Jacobians, and the layers' parameter slices."""
    J = _jacobian(ref.theta, X, ref.shapes, ref.act, ref.K)
    D = ref.curvature(ref.outputs(ref.theta, X))
    H = np.einsum("n,nkp,nkl,nlq->pq", weights, J, D, J) + np.diag(ref.p)
    blocks, start = [], 0
    for d_in, d_out in ref.shapes:
        stop = start + (d_in + 1) * d_out
        blocks.append((slice(start, stop), H[start:stop, start:stop]))
        start = stop
    return H, blocks


@pytest.mark.parametrize("kind", KINDS)
def test_corrected_eigenvalues_equal_the_dense_projection(kind):
    model, X, y = _fit(kind, "tanh")
    adapter, y_enc, weights = _adapter(model, y)
    ref = Reference(model, X, y)
    ref.p = adapter.penalty()  # alpha / n on the weights, 0 on the biases
    _, blocks = _layer_blocks(ref, model, X, y, weights)
    op = adapter.hessian_operator(X, y_enc, weights, curvature="gauss-newton")
    damping = 1e-2
    solver = EKFACInverse(damping).fit(op)
    rng = np.random.RandomState(0)
    V = rng.standard_normal((3, adapter.n_params))
    solved = solver.solve(V)
    for (part, block), (Q_A, Q_G, *_), E in zip(
        blocks, solver.layers_, solver.eigenvalues_
    ):
        d_in, d_out = Q_A.shape[0], Q_G.shape[0]
        # the bases diagonalise the K-FAC factors, computed here from the
        # block: G = the bias rows' block, A = the inputs' second moment
        bias = slice(d_in * d_out - d_out, d_in * d_out)
        G = block[bias, bias]
        G_rot = Q_G.T @ G @ Q_G
        off = G_rot - np.diag(np.diag(G_rot))
        assert np.abs(off).max() <= 1e-10 * np.abs(G).max()
        # the corrected eigenvalues: the block's diagonal in the basis
        Q = np.kron(Q_A, Q_G)
        expected = np.diag(Q.T @ block @ Q).reshape(d_in, d_out)
        np.testing.assert_allclose(
            E, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max()
        )
        # the solve: Q diag(1 / (E + lambda)) Q^T on the layer's parameters
        inverse = Q @ np.diag(1.0 / (expected.ravel() + damping)) @ Q.T
        want = V[:, part] @ inverse
        np.testing.assert_allclose(
            solved[:, part], want, rtol=1e-9, atol=1e-12 * np.abs(want).max()
        )
        # and its trace is the block's (so damping="auto" is 0.1 x mean E)
        assert E.sum() == pytest.approx(np.trace(block), rel=1e-10)
    # the factored quadratic forms (RelatIF normalisers) equal the dense ones
    direction, _ = adapter.loss_gradients(X, y_enc)
    rows = adapter.gradients(X, direction)
    quad, norms = solver.quad_norms(rows, norms=True)
    plain = np.array(rows)  # a copy: no factors, the generic path
    dense_solved = solver.solve(plain)
    want_quad = np.einsum("ij,ij->i", dense_solved, plain)
    want_norms = np.linalg.norm(dense_solved, axis=1)
    np.testing.assert_allclose(
        quad, want_quad, rtol=1e-9, atol=1e-12 * np.abs(want_quad).max()
    )
    np.testing.assert_allclose(
        norms, want_norms, rtol=1e-9, atol=1e-12 * want_norms.max()
    )


@pytest.mark.parametrize("kind", KINDS)
def test_exact_on_a_single_example(kind):
    # one example, no penalty: layer l's block is w ã ã^T ⊗ M, a Kronecker
    # product whose factors' eigenbasis diagonalises it; EK-FAC then equals
    # the damped block, K-FAC (its damping split between the factors) not
    model, X, y = _fit(kind, "tanh")
    model = copy.deepcopy(model).set_params(alpha=0.0)
    X1, y1 = X[:1], y[:1]
    adapter, y_enc, weights = _adapter(model, y1)
    ref = Reference(model, X1, y1)
    ref.p = np.zeros(adapter.n_params)
    _, blocks = _layer_blocks(ref, model, X1, y1, weights)
    op = adapter.hessian_operator(X1, y_enc, weights, curvature="gauss-newton")
    damping = 1e-3 * np.trace(blocks[0][1]) / blocks[0][1].shape[0]
    ekfac = EKFACInverse(damping).fit(op)
    kfac = KFACInverse(damping).fit(op)
    V = np.random.RandomState(0).standard_normal((2, adapter.n_params))
    for part, block in blocks:
        want = np.linalg.solve(block + damping * np.eye(len(block)), V[:, part].T).T
        assert _rel(ekfac.solve(V)[:, part], want) < 1e-7
        assert _rel(kfac.solve(V)[:, part], want) > 1e-3


def test_exact_for_a_single_layer_with_a_penalty():
    # one layer, one output: H = G (A + diag(p) / G), the basis of the K-FAC
    # factor (penalty folded in) diagonalises it
    model, X, y = _fit("regressor", "identity", hidden=())
    adapter, y_enc, weights = _adapter(model, y)
    ref = Reference(model, X, y)
    ref.p = adapter.penalty()
    H, _ = _layer_blocks(ref, model, X, y, weights)
    op = adapter.hessian_operator(X, y_enc, weights, curvature="gauss-newton")
    G = np.random.RandomState(0).standard_normal((4, adapter.n_params))
    assert _rel(EKFACInverse(0.0).fit(op).solve(G), np.linalg.solve(H, G.T).T) < 1e-10
    ex_e = InfluenceExplainer(model, solver="ekfac", damping=0).fit(X, y)
    ex_c = InfluenceExplainer(model, solver="cholesky", damping=0).fit(X, y)
    assert _rel(ex_e.transform(X[:3]), ex_c.transform(X[:3])) < 1e-8
    assert ex_e.normaliser_error_ < 1e-8


def test_normaliser_error_is_the_measured_error():
    model, X, y = _fit("multiclass", "tanh", hidden=(4, 3))
    explainer = InfluenceExplainer(model, solver="ekfac").fit(X, y)
    assert explainer.solver_ == "ekfac"
    adapter, y_enc, weights = _adapter(model, y)
    ref = Reference(model, X, y)
    ref.p = adapter.penalty()
    H, _ = _layer_blocks(ref, model, X, y, weights)
    H += explainer.damping_ * np.eye(len(H))
    # the l-RelatIF normalisers sqrt(ĝ^T H^-1 ĝ) of every example: EK-FAC's
    # from its self-influence c s_i ν_i^2 ĝ^T H^-1 ĝ, the exact ones dense
    G = ref.gradients(ref.theta)
    exact = np.sqrt(np.einsum("ij,ij->i", G @ np.linalg.inv(H + ref.null_term()), G))
    approx = np.sqrt(explainer.self_influence_ * len(y))
    errors = np.abs(approx - exact) / exact
    # the error measured on a sample of the training examples: between the
    # smallest and the largest error of all, and not 0
    assert errors.min() <= explainer.normaliser_error_ <= errors.max() * (1 + 1e-8)
    assert explainer.normaliser_error_ > 1e-3


def _agreement(scores, reference, k=10):
    rho = np.median(
        [stats.spearmanr(a, b).statistic for a, b in zip(scores, reference)]
    )
    top = np.mean(
        [
            len(set(np.argsort(-a)[:k]) & set(np.argsort(-b)[:k])) / k
            for a, b in zip(scores, reference)
        ]
    )
    return rho, top


@pytest.mark.slow
def test_closer_to_gauss_newton_than_kfac_on_breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X_train, y_train, X_test = X[:450], y[:450], X[450:]
    model = MLPClassifier(
        (16,), activation="tanh", alpha=1.0, solver="lbfgs", max_iter=5000,
        random_state=0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    scores = {}
    for solver in ("cholesky", "kfac", "ekfac"):
        explainer = InfluenceExplainer(model, method="l-relatif", solver=solver)
        scores[solver] = explainer.fit(X_train, y_train).transform(X_test)
    rho_k, top_k = _agreement(scores["kfac"], scores["cholesky"])
    rho_e, top_e = _agreement(scores["ekfac"], scores["cholesky"])
    print(f"K-FAC {rho_k:.3f} / {top_k:.2f}, EK-FAC {rho_e:.3f} / {top_e:.2f}")
    assert rho_e > rho_k and top_e > top_k


def test_auto_prefers_ekfac_to_kfac_when_about_as_fast():
    size = ProblemSize(
        n_train=20_000,
        n_params=235_146,
        n_outputs=10,
        n_solves=20_100,
        dense_flops=20_000 * 10 * 235_146.0**2,
        dense_sparse=False,
        matvec_flops=6.0 * 20_000 * 235_146,
        matvec_sparse=False,
    )
    candidates = {n: SOLVERS[n] for n in ("cholesky", "cg", "kfac", "ekfac")}
    name, estimates = choose_solver(candidates, size, memory=2**36)
    assert name == "ekfac"
    assert estimates["ekfac"].seconds <= 1.5 * (1 + 1e-9) * estimates["kfac"].seconds
    # without EK-FAC, K-FAC as before
    del candidates["ekfac"]
    assert choose_solver(candidates, size, memory=2**36)[0] == "kfac"


@pytest.mark.parametrize("solver", ["kfac", "ekfac"])
def test_factored_scores_equal_the_dense_products(solver):
    # the test side as outer products per layer (K-FAC: rank 1, EK-FAC with
    # cross_rank=0: the full SVD of 1 / (E + lambda)) against the scores
    # g_t^T H^-1 ĝ_i of the solver's dense solve, written out here
    model, X, y = _fit("multiclass", "tanh", hidden=(4, 3))
    options = {"cross_rank": 0} if solver == "ekfac" else None
    explainer = InfluenceExplainer(
        model, method="if", solver=solver, solver_options=options
    ).fit(X, y)
    adapter, y_enc, weights = _adapter(model, y)
    ref = Reference(model, X, y)
    fitted = SOLVERS[solver](explainer.damping_, options=options).fit(
        adapter.hessian_operator(X, y_enc, weights, curvature="gauss-newton")
    )
    X_test = X[:5]
    Gt = ref.gradients(ref.theta, X_test, ref.predict(ref.outputs(ref.theta, X_test)))
    want = fitted.solve(Gt) @ ref.gradients(ref.theta).T * weights
    got = explainer.transform(X_test)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())


def test_truncated_ekfac_scores_are_close():
    # cross_rank truncates 1 / (E + lambda) (weighted by the factors'
    # eigenvalues) per layer (ranks 6 and 3 here: 6 x 8 and 9 x 3)
    model, X, y = _fit("multiclass", "tanh", hidden=(8,), n=60)
    exact = InfluenceExplainer(
        model, method="if", solver="ekfac", solver_options={"cross_rank": 0}
    ).fit(X, y)
    want = exact.transform(X[:10])
    errors = []
    for rank in (1, 2, 4, 6):
        truncated = InfluenceExplainer(
            model, method="if", solver="ekfac", solver_options={"cross_rank": rank}
        ).fit(X, y)
        assert fitted_state(truncated).solver_.cross_ranks_ == [rank, min(rank, 3)]
        errors.append(_rel(truncated.transform(X[:10]), want))
    # the error falls with the rank, and vanishes at full rank
    assert errors[0] > errors[1] > errors[2] > errors[3]
    assert errors[2] < 5e-2 and errors[3] < 1e-9
    with pytest.raises(ValueError, match="cross_rank"):
        InfluenceExplainer(
            model, solver="ekfac", solver_options={"cross_rank": -1}
        ).fit(X, y)


@pytest.mark.parametrize("method", ["l-relatif", "theta-relatif"])
def test_normaliser_error_beyond_the_dense_reference(monkeypatch, method):
    # a model "too large" for the dense reference: conjugate gradients with
    # rigorous bounds on 4 examples; converged, it is the error measured
    # against the dense matrix here
    import skrelatif._influence as influence

    monkeypatch.setattr(influence, "DENSE_REFERENCE", 0)
    model, X, y = _fit("multiclass", "tanh", hidden=(4, 3))
    explainer = InfluenceExplainer(model, method=method, solver="ekfac").fit(X, y)
    adapter, y_enc, weights = _adapter(model, y)
    ref = Reference(model, X, y)
    ref.p = adapter.penalty()
    H, _ = _layer_blocks(ref, model, X, y, weights)
    H += explainer.damping_ * np.eye(len(H))
    rows = np.sort(np.random.RandomState(0).choice(len(y), 4, replace=False))
    G = ref.gradients(ref.theta)[rows]
    G /= np.linalg.norm(G, axis=1)[:, None]  # the scale does not matter
    solver = fitted_state(explainer).solver_
    exact = np.linalg.solve(H + ref.null_term(), G.T).T
    if method == "l-relatif":
        want = np.sqrt(np.einsum("ij,ij->i", exact, G))
        got = np.sqrt(solver.quad_norms(G.copy(), norms=False)[0])
    else:
        want = np.linalg.norm(exact, axis=1)
        got = solver.quad_norms(G.copy(), norms=True)[1]
    expected = np.max(np.abs(got - want) / want)
    # the largest error over rigorous bounds: never below the error, and
    # close to it once converged (the norms' bounds are the looser)
    assert expected * (1 - 1e-5) <= explainer.normaliser_error_ <= expected * 1.01
    # a budget too small: an upper bound, with a warning
    monkeypatch.setattr(influence, "FACTORED_REFERENCE_ITER", 2)
    with pytest.warns(UserWarning, match="upper bound"):
        bounded = InfluenceExplainer(model, method=method, solver="ekfac").fit(X, y)
    assert bounded.normaliser_error_ >= expected

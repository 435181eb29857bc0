"""MLPClassifier / MLPRegressor: the adapter's passes against an independent
reference written here (a forward pass and a backward pass that also run on
complex numbers, so that complex-step differentiation of its gradient gives the
exact Hessian to rounding), against central finite differences, and the scores
against dense references built from explicit per-example gradients."""

import functools
import inspect
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer
from skrelatif._adapters.mlp import MLPAdapter
from skrelatif._solvers import SOLVERS, KFACInverse, SingularCurvatureError
from skrelatif.validation import leave_one_out

from ._dense import fitted_state

ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
KINDS = ("binary", "multiclass", "regressor")


# -- an independent reference ----------------------------------------------------------
def _act(name, Z):
    if name == "identity":
        return Z
    if name == "logistic":
        return 1.0 / (1.0 + np.exp(-Z))
    if name == "tanh":
        return np.tanh(Z)
    return np.where(Z.real > 0, Z, 0.0)  # relu (complex-step safe)


def _act_prime(name, Z):
    if name == "identity":
        return np.ones_like(Z)
    if name == "logistic":
        s = 1.0 / (1.0 + np.exp(-Z))
        return s * (1.0 - s)
    if name == "tanh":
        return 1.0 - np.tanh(Z) ** 2
    return (Z.real > 0).astype(float) + 0 * Z


def _unpack(theta, shapes):
    layers, start = [], 0
    for d_in, d_out in shapes:
        block = theta[start : start + (d_in + 1) * d_out].reshape(d_in + 1, d_out)
        layers.append((block[:-1], block[-1]))
        start += (d_in + 1) * d_out
    return layers


def _forward(theta, X, shapes, activation):
    """Inputs of every layer, pre-activations and outputs (any dtype)."""
    inputs, pre = [X], []
    A = X
    layers = _unpack(theta, shapes)
    for index, (W, b) in enumerate(layers):
        Z = A @ W + b
        if index == len(layers) - 1:
            return inputs, pre, Z
        pre.append(Z)
        A = _act(activation, Z)
        inputs.append(A)


def _residual(F, y, kind):
    """dl/df (n, K)."""
    if kind == "regressor":
        return F - y[:, None]
    if F.shape[1] == 1:
        return 1.0 / (1.0 + np.exp(-F)) - y[:, None]
    top = F.real.max(axis=1, keepdims=True)
    E = np.exp(F - top)
    return E / E.sum(axis=1, keepdims=True) - np.eye(F.shape[1])[y]


def _loss(F, y, kind):
    if kind == "regressor":
        return 0.5 * (y - F[:, 0]) ** 2
    if F.shape[1] == 1:
        f = F[:, 0]
        return np.logaddexp(0.0, np.where(y == 1, -f, f))
    return logsumexp(F, axis=1) - F[np.arange(len(y)), y]


def _backprop(theta, X, C, shapes, activation):
    """Per-example gradients (n, P) of ``C_i . f_i`` (C (n, K))."""
    inputs, pre, _ = _forward(theta, X, shapes, activation)
    layers = _unpack(theta, shapes)
    delta = C
    rows = [None] * len(layers)
    for index in range(len(layers) - 1, -1, -1):
        A = inputs[index]
        design = np.hstack([A, np.ones((A.shape[0], 1))])
        rows[index] = (design[:, :, None] * delta[:, None, :]).reshape(len(A), -1)
        if index:
            delta = (delta @ layers[index][0].T) * _act_prime(
                activation, pre[index - 1]
            )
    return np.hstack(rows)


def _jacobian(theta, X, shapes, activation, K):
    n = X.shape[0]
    return np.stack(
        [
            _backprop(theta, X, np.tile(np.eye(K)[k], (n, 1)), shapes, activation)
            for k in range(K)
        ],
        axis=1,
    )  # (n, K, P)


def _penalty(shapes, alpha, n):
    return np.concatenate(
        [
            np.concatenate([np.full(d_in * d_out, alpha / n), np.zeros(d_out)])
            for d_in, d_out in shapes
        ]
    )


class Reference:
    """The model's mathematics, written independently of the package."""

    def __init__(self, model, X, y):
        self.model, self.X = model, X
        self.kind = (
            "regressor"
            if isinstance(model, MLPRegressor)
            else ("binary" if len(model.classes_) == 2 else "multiclass")
        )
        self.y = y if self.kind == "regressor" else np.searchsorted(model.classes_, y)
        self.shapes = [W.shape for W in model.coefs_]
        self.theta = np.concatenate(
            [
                np.concatenate([W.ravel(), b])
                for W, b in zip(model.coefs_, model.intercepts_)
            ]
        )
        self.K = self.shapes[-1][1]
        self.n = X.shape[0]
        self.p = _penalty(self.shapes, model.alpha, self.n)
        self.act = model.activation

    def outputs(self, theta, X=None):
        return _forward(theta, self.X if X is None else X, self.shapes, self.act)[2]

    def losses(self, theta, X=None, y=None):
        return _loss(self.outputs(theta, X), self.y if y is None else y, self.kind)

    def objective(self, theta):
        return self.losses(theta).mean() + 0.5 * theta @ (self.p * theta)

    def gradients(self, theta, X=None, y=None):
        X = self.X if X is None else X
        y = self.y if y is None else y
        C = _residual(self.outputs(theta, X), y, self.kind)
        return _backprop(theta, X, C, self.shapes, self.act)

    def objective_gradient(self, theta):
        return self.gradients(theta).mean(axis=0) + self.p * theta

    def hessian(self):
        """The exact Hessian by complex-step differentiation of the gradient."""
        h = 1e-30
        P = self.theta.size
        H = np.empty((P, P))
        for j in range(P):
            step = np.zeros(P, dtype=complex)
            step[j] = 1j * h
            H[j] = self.objective_gradient(self.theta + step).imag / h
        return 0.5 * (H + H.T)

    def predict(self, F):
        """Encoded predicted labels of the outputs F."""
        return (F[:, 0] > 0).astype(int) if self.K == 1 else F.argmax(axis=1)

    def curvature(self, F):
        if self.kind == "regressor":
            return np.ones((len(F), 1, 1))
        if self.K == 1:
            s = 1.0 / (1.0 + np.exp(-F[:, 0]))
            return (s * (1 - s))[:, None, None]
        P = np.exp(F - logsumexp(F, axis=1, keepdims=True))
        return P[:, :, None] * np.eye(self.K) - P[:, :, None] * P[:, None, :]

    def gauss_newton(self):
        J = _jacobian(self.theta, self.X, self.shapes, self.act, self.K)
        D = self.curvature(self.outputs(self.theta))
        return np.einsum("nkp,nkl,nlq->pq", J, D, J) / self.n + np.diag(self.p)

    def null_term(self):
        """``U U^T`` along the common shift of the softmax output biases."""
        P = self.theta.size
        U = np.zeros(P)
        if self.kind == "multiclass":
            U[P - self.K :] = 1.0 / np.sqrt(self.K)
        return np.outer(U, U)


def _make_data(kind, seed=0, n=30, d=5):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, d))
    score = np.tanh(X @ rng.standard_normal((d, 3))) @ rng.standard_normal((3, 3))
    if kind == "regressor":
        return X, score[:, 0] + 0.3 * rng.standard_normal(n)
    noisy = score + 0.5 * rng.standard_normal(score.shape)
    if kind == "binary":
        return X, np.where(noisy[:, 0] > np.median(noisy[:, 0]), "b", "a")
    return X, noisy.argmax(axis=1)


@functools.cache  # shared by the tests (never modified)
def _fit(kind, activation, hidden=(4, 3), alpha=0.3, seed=0, n=30):
    X, y = _make_data(kind, seed, n=n)
    Model = MLPRegressor if kind == "regressor" else MLPClassifier
    model = Model(
        hidden_layer_sizes=hidden,
        activation=activation,
        solver="lbfgs",
        alpha=alpha,
        tol=1e-12,
        max_iter=20_000,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return model, X, y


def _adapter(model, y):
    """The adapter bound to ``len(y)`` unit-weight examples (its objective's
    constant ``1 / sum(s)`` is known once bound; X itself is not used)."""
    y_encoded = MLPAdapter(model).encode_target(y)
    adapter = MLPAdapter(model).bind(np.zeros((len(y), 1)), y_encoded, None)
    weights = adapter.loss_scale * adapter.sample_weight_
    return adapter, y_encoded, weights


def _off_kinks(adapter, X, rng):
    """Parameters near the fitted ones with no ReLU pre-activation within 1e-3
    of its kink (finite differences cross no kink)."""
    for _ in range(100):
        theta = adapter.parameters() + 0.05 * rng.standard_normal(adapter.n_params)
        moved = adapter.at(theta)
        A, Zs = X, []
        for W, b in zip(moved.coefs[:-1], moved.intercepts[:-1]):
            Z = A @ W + b
            Zs.append(Z)
            A = np.maximum(Z, 0)
        if all(np.abs(Z).min() > 1e-3 for Z in Zs):
            return theta
    raise AssertionError("no kink-free parameters found")


def _rel(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b)


# -- gradients, Jacobian and curvature against finite differences ----------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_passes_match_finite_differences(kind, activation):
    model, X, y = _fit(kind, activation)
    adapter, y_enc, weights = _adapter(model, y)
    ref = Reference(model, X, y)
    rng = np.random.RandomState(1)
    theta = _off_kinks(adapter, X, rng)
    moved = adapter.at(theta)
    eps = 1e-6
    # losses and outputs: the reference's (the losses to rounding of the
    # outputs they are computed from: an absolute term on the outputs' scale)
    F_ref, loss_ref = ref.outputs(theta), ref.losses(theta)
    scale = max(np.abs(F_ref).max(), np.abs(loss_ref).max())
    np.testing.assert_allclose(
        moved.outputs(X), F_ref, rtol=1e-12, atol=1e-12 * np.abs(F_ref).max()
    )
    np.testing.assert_allclose(
        moved.losses(X, y_enc), loss_ref, rtol=1e-12, atol=1e-11 * scale
    )
    # per-example gradients: central differences of the per-example losses
    direction, norm = moved.loss_gradients(X, y_enc)
    G = moved.gradients(X, direction * norm[:, None])
    v = rng.standard_normal(adapter.n_params)
    fd = (ref.losses(theta + eps * v) - ref.losses(theta - eps * v)) / (2 * eps)
    assert _rel(G @ v, fd) < 1e-6
    np.testing.assert_allclose(G, ref.gradients(theta), rtol=1e-10, atol=1e-13)
    # the output Jacobian: central differences of the outputs
    J = moved.output_jacobian(X)
    fd = (ref.outputs(theta + eps * v) - ref.outputs(theta - eps * v)) / (2 * eps)
    assert _rel(np.einsum("nkp,p->nk", J, v), fd) < 1e-6
    # the objective's gradient: central differences of the objective
    gradient = moved.objective_gradient(X, y_enc, weights)[0]
    fd = (ref.objective(theta + eps * v) - ref.objective(theta - eps * v)) / (2 * eps)
    assert abs(gradient @ v - fd) / abs(fd) < 1e-6
    # exact Hessian-vector products: central differences of the gradient
    V = rng.standard_normal((2, adapter.n_params))
    exact = moved.hessian_operator(X, y_enc, weights, curvature="exact")
    fd = np.stack(
        [
            (
                ref.objective_gradient(theta + eps * u)
                - ref.objective_gradient(theta - eps * u)
            )
            / (2 * eps)
            for u in V
        ]
    )
    assert _rel(exact.matvec(V), fd) < 1e-6
    # Gauss-Newton products: J^T D J v by central differences of J v
    gn = moved.hessian_operator(X, y_enc, weights, curvature="gauss-newton")
    F = ref.outputs(theta)
    D = ref.curvature(F)
    expected = []
    for u in V:
        Ju = (ref.outputs(theta + eps * u) - ref.outputs(theta - eps * u)) / (2 * eps)
        expected.append(np.einsum("nkp,nkl,nl->p", J, D, Ju) / ref.n + ref.p * u)
    assert _rel(gn.matvec(V), np.array(expected)) < 1e-6


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("activation", ("tanh", "relu"))
def test_operators_dense_diagonal_blocks(kind, activation):
    model, X, y = _fit(kind, activation)
    adapter, y_enc, weights = _adapter(model, y)
    ref = Reference(model, X, y)
    for curvature, H_ref in (
        ("exact", ref.hessian()),
        ("gauss-newton", ref.gauss_newton()),
    ):
        op = adapter.hessian_operator(X, y_enc, weights, curvature=curvature)
        scale = np.abs(H_ref).max()
        H = op.dense()
        assert np.abs(H - H_ref).max() < 1e-10 * scale
        assert np.abs(op.diagonal() - np.diag(H_ref)).max() < 1e-10 * scale
        for block, part in zip(op.diagonal_blocks(), adapter.slices):
            assert np.abs(block - H_ref[part, part]).max() < 1e-10 * scale
        V = np.random.RandomState(0).standard_normal((3, adapter.n_params))
        assert _rel(op.matvec(V), V @ H_ref) < 1e-12
        rows = np.arange(0, 30, 3)
        sub = Reference(model, X[rows], y[rows])
        sub_data = (
            sub.hessian() if curvature == "exact" else sub.gauss_newton()
        ) - np.diag(sub.p)
        # (n / |rows|) sum_{i in rows} w_i H_i v + p v, with w_i = 1 / n
        expected = V @ sub_data + V * ref.p
        assert _rel(op.sample_matvec(V, rows), expected) < 1e-12


# -- scores against dense references ---------------------------------------------------
def _reference_scores(ref, H, X_test, method, y_test=None):
    """Dense scores from explicit gradients and the explicit matrix."""
    theta, n = ref.theta, ref.n
    Hinv = np.linalg.inv(H + ref.null_term())
    G = ref.gradients(theta)  # (n, P)
    if y_test is None and ref.kind == "regressor":
        K = 1
        Gt = -_backprop(theta, X_test, np.ones((len(X_test), K)), ref.shapes, ref.act)
    else:
        if y_test is None:
            F = ref.outputs(theta, X_test)
            y_test = (F[:, 0] > 0).astype(int) if ref.K == 1 else F.argmax(axis=1)
        Gt = ref.gradients(theta, X_test, y_test)
    cross = Gt @ Hinv @ G.T
    if method == "if":
        return cross / n
    solved = G @ Hinv
    if method == "theta-relatif":
        return cross / np.linalg.norm(solved, axis=1)
    if method == "l-relatif":
        return cross / np.sqrt(np.einsum("ij,ij->i", solved, G))
    # newton: one Newton step of the leave-one-out objective, the test loss
    # at the updated parameters (the forward pass at theta* + delta_i)
    Ft = ref.outputs(theta, X_test)
    out = np.empty((len(X_test), n))
    for i, delta in enumerate(_newton_steps(ref, H)):
        after = ref.outputs(theta + delta, X_test)
        if y_test is None:
            out[:, i] = -(after[:, 0] - Ft[:, 0])
        else:
            out[:, i] = _loss(after, y_test, ref.kind) - _loss(Ft, y_test, ref.kind)
    return out


def _newton_steps(ref, H, groups=None):
    """Dense Newton steps of the objective without each group (default: each
    single example), ``-(H - sum_G w_i J_i^T D_i J_i)^-1 dF_G/dtheta`` at
    theta*, where ``dF_G = -sum_G w_i g_i`` (the fitted model's objective
    gradient is 0; with ``w_i = 1/n`` a network's penalty needs no
    reweighting): (n_groups, P), by np.linalg.solve on the explicit matrix."""
    theta, n = ref.theta, ref.n
    groups = [[i] for i in range(n)] if groups is None else groups
    J = _jacobian(theta, ref.X, ref.shapes, ref.act, ref.K)
    D = ref.curvature(ref.outputs(theta))
    G = ref.gradients(theta)
    null = ref.null_term()
    steps = []
    for group in groups:
        H_G = H - np.einsum("gkp,gkl,glq->pq", J[group], D[group], J[group]) / n
        steps.append(np.linalg.solve(H_G + null, G[group].sum(axis=0) / n))
    return np.array(steps)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_scores_match_dense_reference(kind, activation):
    # Small networks have nearly flat directions (identity layers: exactly flat
    # along shifts of consecutive biases; saturated or near-linear units), and
    # ReLU networks stop at kinks where the exact Hessian is indefinite: the
    # comparison uses damping, which every score applies as H + damping I.
    damping = 0.05
    model, X, y = _fit(kind, activation)
    ref = Reference(model, X, y)
    X_test = _make_data(kind, seed=7, n=4)[0]
    eye = damping * np.eye(ref.theta.size)
    matrices = {"gauss-newton": ref.gauss_newton() + eye, "exact": ref.hessian() + eye}
    compared = 0
    for hessian, H in matrices.items():
        if np.linalg.eigvalsh(H + ref.null_term()).min() <= 0:
            assert hessian == "exact" and activation == "relu"
            continue  # indefinite even with damping (see the errors' test)
        for method in ("if", "theta-relatif", "l-relatif", "newton"):
            explainer = InfluenceExplainer(
                model, method=method, hessian=hessian, damping=damping
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                explainer.fit(X, y)
            expected = _reference_scores(ref, H, X_test, method)
            got = explainer.transform(X_test)
            assert _rel(got, expected) < 1e-8, (hessian, method)
            compared += 1
            if kind == "regressor":  # with targets: the test loss
                y_test = np.linspace(-1, 1, len(X_test))
                expected = _reference_scores(ref, H, X_test, method, y_test)
                assert _rel(explainer.transform(X_test, y_test), expected) < 1e-8
    assert compared >= 4


@pytest.mark.parametrize("kind", KINDS)
def test_newton_removals_at_updated_parameters(kind):
    # method="newton", loo_loss_ and predict_removal evaluate the losses at
    # theta* + delta through the network's forward pass (spec section 7):
    # against the reference's own forward pass at the dense Newton step
    model, X, y = _fit(kind, "tanh")
    ref = Reference(model, X, y)
    X_test = _make_data(kind, seed=7, n=4)[0]
    for hessian, H in (("gauss-newton", ref.gauss_newton()), ("exact", ref.hessian())):
        H = H + 0.05 * np.eye(ref.theta.size)
        explainer = InfluenceExplainer(
            model, method="newton", hessian=hessian, damping=0.05
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            explainer.fit(X, y)
        steps = _newton_steps(ref, H)
        loo = np.array(
            [ref.losses(ref.theta + d, X[i : i + 1], ref.y[i : i + 1])[0]
             for i, d in enumerate(steps)]
        )  # fmt: skip
        np.testing.assert_allclose(
            explainer.loo_loss_, loo, rtol=1e-8, atol=1e-10 * np.abs(loo).max()
        )
        # the test losses at the predicted labels (the regressor: predictions)
        Ft = ref.outputs(ref.theta, X_test)
        y_test = None if kind == "regressor" else ref.predict(Ft)
        after = np.stack([ref.outputs(ref.theta + d, X_test) for d in steps], axis=-1)
        if y_test is None:
            expected = -(after[:, 0, :] - Ft[:, :1])
        else:
            before = _loss(Ft, y_test, ref.kind)
            expected = np.column_stack(
                [_loss(after[:, :, i], y_test, ref.kind) - before
                 for i in range(ref.n)]
            )  # fmt: skip
        scale = np.abs(expected).max()
        got = explainer.transform(X_test)
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9 * scale)
        # groups removed together: the dense step without the group
        groups = [[0, 1], [2, 5, 7], [9]]
        steps = _newton_steps(ref, H, groups)
        got = explainer.predict_removal(X_test, groups=groups)
        for j, delta in enumerate(steps):
            after = ref.outputs(ref.theta + delta, X_test)
            if y_test is None:
                change = -(after[:, 0] - Ft[:, 0])
            else:
                change = _loss(after, y_test, ref.kind) - before
            np.testing.assert_allclose(
                got[:, j], change, rtol=1e-7, atol=1e-9 * np.abs(change).max()
            )


@pytest.mark.parametrize("kind", KINDS)
def test_outputs_at_many_parameters(kind):
    # the batched forward pass over parameter vectors, dense and sparse input
    from scipy import sparse

    model, X, y = _fit(kind, "relu", hidden=(4, 3))
    adapter = MLPAdapter(model)
    ref = Reference(model, X, y)
    rng = np.random.RandomState(0)
    thetas = ref.theta + 0.1 * rng.standard_normal((5, ref.theta.size))
    expected = np.stack([ref.outputs(t, X[:7]) for t in thetas])
    paired = np.stack([ref.outputs(t, X[j : j + 1])[0] for j, t in enumerate(thetas)])
    scale = np.abs(expected).max()
    for data in (X[:7], sparse.csr_matrix(X[:7])):
        np.testing.assert_allclose(
            adapter.outputs_at(data, thetas), expected, rtol=1e-12, atol=1e-13 * scale
        )
        rows = adapter.row_outputs_at(data[:5], thetas)
        np.testing.assert_allclose(rows, paired, rtol=1e-12, atol=1e-13 * scale)


def test_flip_sets_of_a_network_at_updated_parameters():
    # without verification a flip set is the shortest prefix of the ranking
    # whose group Newton step flips the label through the forward pass:
    # checked with the dense step and the reference's forward pass
    model, X, y = _fit("multiclass", "tanh")
    ref = Reference(model, X, y)
    H = ref.gauss_newton() + 0.05 * np.eye(ref.theta.size)
    explainer = InfluenceExplainer(model, hessian="gauss-newton", damping=0.05)
    explainer.fit(X, y)
    X_test = _make_data("multiclass", seed=7, n=20)[0]
    result = explainer.flip_sets(X_test, max_size=25, verify=False)
    assert np.sum(result.size > 0) >= 5
    for t in np.flatnonzero(result.size > 0):
        label = ref.predict(ref.outputs(ref.theta, X_test[t : t + 1]))[0]
        found = result.indices[t]
        prefixes = [found[:s] for s in range(1, len(found) + 1)]
        for s, delta in enumerate(_newton_steps(ref, H, prefixes), start=1):
            after = ref.outputs(ref.theta + delta, X_test[t : t + 1])
            assert (ref.predict(after)[0] != label) == (s == len(found))


def test_scores_without_damping():
    model, X, y = _fit("regressor", "tanh", alpha=0.05)
    ref = Reference(model, X, y)
    for hessian, H in (("gauss-newton", ref.gauss_newton()), ("exact", ref.hessian())):
        assert np.linalg.cond(H) < 1e6
        for method in ("if", "l-relatif", "newton"):
            explainer = InfluenceExplainer(
                model, method=method, hessian=hessian, damping=0
            )
            explainer.fit(X, y)
            expected = _reference_scores(ref, H, X[:3], method)
            assert _rel(explainer.transform(X[:3]), expected) < 1e-8


def test_self_influence_and_iterative_solvers():
    model, X, y = _fit("multiclass", "tanh", alpha=0.05)
    ref = Reference(model, X, y)
    H = ref.hessian()
    G = ref.gradients(ref.theta)
    Hinv = np.linalg.inv(H + ref.null_term())
    expected = np.einsum("ij,jk,ik->i", G, Hinv, G) / ref.n
    exact = InfluenceExplainer(
        model, method="l-relatif", hessian="exact", damping=0
    ).fit(X, y)
    assert _rel(exact.self_influence_, expected) < 1e-8
    S = exact.transform(X[:3])
    cg = InfluenceExplainer(
        model,
        method="l-relatif",
        hessian="exact",
        solver="cg",
        damping=0,
        solver_options={"tol": 1e-12},
    ).fit(X, y)
    assert _rel(cg.transform(X[:3]), S) < 1e-6
    lissa = InfluenceExplainer(
        model,
        method="if",
        hessian="exact",
        solver="lissa",
        damping=0,
        random_state=0,
        solver_options={"depth": 1000, "batch_size": 30},
    ).fit(X, y)
    exact_if = InfluenceExplainer(model, method="if", hessian="exact", damping=0)
    exact_if.fit(X, y)
    assert _rel(lissa.transform(X[:3]), exact_if.transform(X[:3])) < 1e-2


@pytest.mark.skipif(
    "sample_weight" not in inspect.signature(MLPClassifier.fit).parameters,
    reason="MLPClassifier.fit takes sample_weight from scikit-learn 1.7",
)
def test_pipeline_and_sample_weight():
    X, y = _make_data("multiclass", n=40)
    X = 3 * X + 1
    pipe = make_pipeline(
        StandardScaler(),
        MLPClassifier(
            hidden_layer_sizes=(3,),
            activation="tanh",
            solver="lbfgs",
            alpha=0.5,
            tol=1e-12,
            max_iter=20_000,
            random_state=0,
        ),
    )
    weight = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    pipe.fit(X, y, mlpclassifier__sample_weight=weight)
    explainer = InfluenceExplainer(pipe, method="if", hessian="gauss-newton", damping=0)
    explainer.fit(X, y, sample_weight=weight)
    # at a minimum of sum_i s_i l_i / S + alpha / (2 S) ||W||^2 (ignoring the
    # weights, or doubling them, is far from one)
    assert fitted_state(explainer).optimality_gap_ < 1e-3
    for other in (None, 2 * weight):
        with pytest.warns(UserWarning, match="not at a minimum"):
            InfluenceExplainer(pipe, method="if").fit(X, y, sample_weight=other)
    model = pipe[-1]
    Xt = pipe[0].transform(X)
    ref = Reference(model, Xt, y)
    # F = sum_i s_i l_i / S + alpha / (2 S) ||W||^2
    S = weight.sum()
    ref.p = _penalty(ref.shapes, model.alpha, S)
    J = _jacobian(ref.theta, Xt, ref.shapes, ref.act, ref.K)
    D = ref.curvature(ref.outputs(ref.theta))
    H = np.einsum("n,nkp,nkl,nlq->pq", weight / S, J, D, J) + np.diag(ref.p)
    Hinv = np.linalg.inv(H + ref.null_term())
    X_test = pipe[0].transform(X[:3])
    F = ref.outputs(ref.theta, X_test)
    Gt = ref.gradients(ref.theta, X_test, F.argmax(axis=1))
    expected = (Gt @ Hinv @ ref.gradients(ref.theta).T) * (weight / S)
    assert _rel(explainer.transform(X[:3]), expected) < 1e-8


def test_kfac_is_exact_for_a_single_layer():
    # one layer and one output: H = (sum_i w_i x̃ x̃^T) ⊗ 1 is a Kronecker product
    model, X, y = _fit("regressor", "identity", hidden=())
    adapter, y_enc, weights = _adapter(model, y)
    assert len(adapter.coefs) == 1
    gn = adapter.hessian_operator(X, y_enc, weights, curvature="gauss-newton")
    H = gn.dense()
    G = np.random.RandomState(0).standard_normal((4, adapter.n_params))
    kfac = KFACInverse(0.0).fit(gn)
    assert _rel(kfac.solve(G), np.linalg.solve(H, G.T).T) < 1e-10
    # the factored fast path of quad_norms equals the dense one
    direction, _ = adapter.loss_gradients(X, y_enc)
    rows = adapter.gradients(X, direction)
    quad, norms = kfac.quad_norms(rows, norms=True)
    plain = np.array(rows)  # a copy: no factors
    solved = np.linalg.solve(H, plain.T).T
    expected_quad = np.einsum("ij,ij->i", solved, plain)
    expected_norms = np.linalg.norm(solved, axis=1)
    np.testing.assert_allclose(
        quad, expected_quad, rtol=1e-10, atol=1e-12 * np.abs(expected_quad).max()
    )
    np.testing.assert_allclose(
        norms, expected_norms, rtol=1e-10, atol=1e-12 * expected_norms.max()
    )
    # l-relatif under kfac equals gauss-newton for this model
    ex_k = InfluenceExplainer(model, solver="kfac", damping=0).fit(X, y)
    ex_g = InfluenceExplainer(model, solver="cholesky", damping=0).fit(X, y)
    assert _rel(ex_k.transform(X[:3]), ex_g.transform(X[:3])) < 1e-8


def test_kfac_factored_rows_on_a_deep_network():
    model, X, y = _fit("multiclass", "relu", hidden=(6, 4))
    adapter, y_enc, weights = _adapter(model, y)
    op = adapter.hessian_operator(X, y_enc, weights, curvature="exact")
    kfac = KFACInverse(1e-3).fit(op)
    direction, _ = adapter.loss_gradients(X, y_enc)
    rows = adapter.gradients(X, direction)
    quad, norms = kfac.quad_norms(rows, norms=True)
    solved = kfac.solve(np.asarray(rows).copy())
    np.testing.assert_allclose(quad, np.einsum("ij,ij->i", solved, rows), rtol=1e-9)
    np.testing.assert_allclose(norms, np.linalg.norm(solved, axis=1), rtol=1e-9)
    # each layer's solve inverts its own Kronecker block
    for factor in op.kronecker_factors():
        part = factor.params
        A, Gm = factor.A.copy(), factor.G.copy()
        g = np.trace(Gm) / len(Gm)
        A.flat[:: len(A) + 1] += factor.row_penalty / g
        pi = np.sqrt((np.trace(A) / len(A)) / g)
        A.flat[:: len(A) + 1] += pi * np.sqrt(1e-3)
        Gm.flat[:: len(Gm) + 1] += np.sqrt(1e-3) / pi
        block = np.kron(A, Gm)
        v = np.zeros((1, adapter.n_params))
        v[0, part] = np.random.RandomState(0).standard_normal(part.stop - part.start)
        np.testing.assert_allclose(
            kfac.solve(v)[0, part], np.linalg.solve(block, v[0, part]), rtol=1e-8
        )


def test_options_errors_and_indefinite_hessian():
    model, X, y = _fit("binary", "tanh")
    assert next(iter(MLPAdapter.curvatures)) == "gauss-newton"
    assert InfluenceExplainer(model).fit(X, y).hessian_ == "gauss-newton"
    with pytest.raises(ValueError, match="does not apply.*What works"):
        InfluenceExplainer(model, solver="block-diagonal").fit(X, y)
    with pytest.raises(
        ValueError, match='solver="kfac" does not apply to hessian="exact"'
    ):
        InfluenceExplainer(model, hessian="exact", solver="kfac").fit(X, y)
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(ValueError, match="kfac.*does not apply"):
        InfluenceExplainer(LogisticRegression().fit(X, y), solver="kfac").fit(X, y)
    # a ReLU network stopped at a kink: its exact Hessian is indefinite
    model_r, X_r, y_r = _fit("regressor", "relu")
    assert np.linalg.eigvalsh(Reference(model_r, X_r, y_r).hessian()).min() < 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # stopped at a kink
        with pytest.raises(SingularCurvatureError, match="indefinite") as caught:
            InfluenceExplainer(model_r, hessian="exact", damping=0).fit(X_r, y_r)
    # the network's own advice, not a logistic regression's
    assert "gauss-newton" in str(caught.value) and "C=np.inf" not in str(caught.value)
    # multi-output regressor, multilabel classifier, poisson loss
    Xr, yr = _make_data("regressor")
    multi = MLPRegressor(hidden_layer_sizes=(2,), max_iter=5).fit(Xr, np.c_[yr, yr])
    with pytest.raises(ValueError, match="one output at a time"):
        InfluenceExplainer(multi).fit(Xr, np.c_[yr, yr][:, 0])
    labels = np.c_[y == "a", y == "b", np.arange(30) % 2].astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        multilabel = MLPClassifier(hidden_layer_sizes=(2,), max_iter=5).fit(X, labels)
    with pytest.raises(ValueError, match="multilabel"):
        MLPAdapter(multilabel)
    if "loss" in MLPRegressor().get_params():  # scikit-learn >= 1.7
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            poisson = MLPRegressor(loss="poisson", max_iter=5).fit(Xr, np.abs(yr))
        with pytest.raises(ValueError, match="poisson"):
            MLPAdapter(poisson)


def test_cli_lists_every_solver():
    from skrelatif._cli._parser import HESSIANS, SOLVER_CHOICES

    assert set(SOLVERS) <= set(SOLVER_CHOICES)
    assert {"exact", "gauss-newton", "identity"} <= set(HESSIANS)


def test_leave_one_out_refits_networks():
    model, X, y = _fit("regressor", "tanh", hidden=(3,), alpha=1.0, n=100)
    explainer = InfluenceExplainer(model, method="if", hessian="exact", damping=0)
    explainer.fit(X, y)
    indices = np.arange(0, 100, 10)
    loo = leave_one_out(explainer, X[:2], y[:2], indices)
    assert loo.solver == "refit"  # not convex: warm-started refits
    assert loo.reference_param_change < 1e-3
    actual = loo.test_loss_change.ravel()
    first_order = explainer.transform(X[:2], y[:2])[:, indices].ravel()
    assert np.corrcoef(first_order, actual)[0, 1] > 0.95
    newton = InfluenceExplainer(model, method="newton", hessian="exact", damping=0)
    newton.fit(X, y)
    second_order = newton.transform(X[:2], y[:2])[:, indices].ravel()
    assert np.corrcoef(second_order, actual)[0, 1] > 0.99


@pytest.mark.slow
def test_kfac_on_digits():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X_train, y_train, X_test = X[:1000], y[:1000], X[1000:1100]
    # measured: Spearman 0.998, overlap 0.67 (alpha=1e-2: 0.997 and 0.57)
    model = MLPClassifier(
        hidden_layer_sizes=(64,), alpha=0.1, max_iter=300, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    explainers = {}
    for hessian, solver in (("gauss-newton", "cholesky"), ("kfac", "kfac")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            explainers[hessian] = InfluenceExplainer(
                model, method="l-relatif", solver=solver, damping=0
            ).fit(X_train, y_train)
    # the l-RelatIF denominators sqrt(g_i^T H^-1 g_i), via the self-influence
    denominators = {h: np.sqrt(e.self_influence_) for h, e in explainers.items()}
    rho = stats.spearmanr(denominators["gauss-newton"], denominators["kfac"]).statistic
    top = {h: e.explain(X_test, k=5).proponents for h, e in explainers.items()}
    overlap = np.mean(
        [len(set(a) & set(b)) / 5 for a, b in zip(top["gauss-newton"], top["kfac"])]
    )
    print(f"kfac vs gauss-newton on digits: Spearman {rho:.3f}, overlap {overlap:.2f}")
    assert rho >= 0.9
    assert overlap >= 0.6


def test_auto_solver_on_an_indefinite_exact_hessian(monkeypatch):
    """solver="auto" measures its candidates with the damping it will use: a
    ReLU network's indefinite exact Hessian, damped enough to be positive
    definite, is explained (a pilot solve without the damping would meet
    negative curvature)."""
    from skrelatif._solvers import _auto

    model, X, y = _fit("regressor", "relu")
    H = Reference(model, X, y).hessian()
    smallest = np.linalg.eigvalsh(H).min()
    assert smallest < 0
    damping = -smallest + 0.05 * np.trace(H) / len(H)
    monkeypatch.setattr(_auto, "SMALL_SECONDS", 0.0)  # measure, as on a large one
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # stopped at a kink
        ex = InfluenceExplainer(model, method="if", hessian="exact", damping=damping)
        ex.fit(X, y)
        exact = InfluenceExplainer(
            model, method="if", hessian="exact", solver="cholesky", damping=damping
        ).fit(X, y)
    scale = np.abs(exact.transform(X[:3])).max()
    np.testing.assert_allclose(
        ex.transform(X[:3]), exact.transform(X[:3]), rtol=1e-6, atol=1e-6 * scale
    )

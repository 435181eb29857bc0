"""``benchmarks/bench_large_peers.py``: its plumbing on a tiny text model,
without the peers' environment (their rows report that it is missing), and
its agreement measures on scores with known answers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_large_peers import PEER_ROWS, agreement  # noqa: E402


def test_agreement_measures():
    rng = np.random.RandomState(0)
    exact = rng.standard_normal((3, 50))
    same = agreement(exact.copy(), exact)
    assert same["error"] == 0.0 and same["top10"] == 1.0
    assert np.isclose(same["spearman"], 1.0, rtol=0, atol=1e-12)
    reversed_ = agreement(-exact, exact)
    assert np.isclose(reversed_["spearman"], -1.0, rtol=0, atol=1e-12)
    assert reversed_["top10"] == 0.0
    assert np.isclose(reversed_["error"], 2.0, rtol=1e-10, atol=1e-12)
    # a monotone distortion keeps the ranks, not the values
    bent = agreement(exact**3, exact)
    assert np.isclose(bent["spearman"], 1.0, rtol=0, atol=1e-12)
    assert bent["top10"] == 1.0 and bent["error"] > 0.1


@pytest.mark.parametrize(
    "shape, exact", [("tiny", "data-space"), ("multiclass-tiny", "cg-reference")]
)
def test_skrelatif_rows_agree_with_the_exact_answer(shape, exact):
    """The ``"cg"`` row (tol 1e-8) against the exact answer (``"data-space"``
    for the binary model, conjugate gradients at 1e-12 for more classes),
    each computed in its own worker process from the saved problem."""
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_large_peers.py", "--shape", shape,
         "--n-test", "4"],
        capture_output=True, text=True, cwd=ROOT, timeout=600, check=True,
        env={**os.environ, "SKRELATIF_PEERS_PYTHON": ""},
    )  # fmt: skip
    results = json.loads(done.stdout.strip().splitlines()[-1])
    cg = results["cg"]
    assert cg["error"] < 1e-6 and cg["spearman"] > 0.9999 and cg["top10"] == 1.0
    assert cg["seconds"] > 0 and results[exact]["seconds"] > 0
    assert set(results) - {"cg", exact} == {row for row, _ in PEER_ROWS}
    assert results["pydvl-cg"] == {"missing": "no --peers-python"}


def test_the_exact_row_is_the_dense_formula(tmp_path):
    """The benchmark's exact answer (``"data-space"`` on its saved problem)
    against ``g_t^T H^-1 g_i`` from the dense Hessian of the penalised
    log-loss, ``H = X^T diag(p (1 - p)) X + I / C`` (the intercept a
    constant input, penalised like the others)."""
    from bench_large_peers import _matrices, save_problem, skrelatif_call

    data = dict(np.load(save_problem(tmp_path, "tiny", 3)))
    X, X_test = (M.toarray() for M in _matrices(data))
    w = data["coef"].ravel()
    p, p_test = 1 / (1 + np.exp(-X @ w)), 1 / (1 + np.exp(-X_test @ w))
    H = (X * (p * (1 - p))[:, None]).T @ X + np.eye(len(w)) / float(data["C"])
    G = (p - data["y_index"])[:, None] * X
    G_test = (p_test - data["y_test_index"])[:, None] * X_test
    expected = G_test @ np.linalg.solve(H, G.T)
    scores = skrelatif_call(data, "data-space")()
    scale = np.abs(expected).max()
    np.testing.assert_allclose(scores, expected, rtol=1e-8, atol=1e-10 * scale)


def test_the_multiclass_reference_is_the_dense_formula(tmp_path):
    """The 20-class shapes' exact answer (``"cg"`` at 1e-12) on the 3-class
    tiny problem against ``g_t^T H^-1 g_i`` from the dense Hessian of the
    penalised cross-entropy, ``H = sum_i (diag(p_i) - p_i p_i^T) ⊗ x_i x_i^T
    + I / C`` (class-major), ``g_i = (p_i - e_{y_i}) ⊗ x_i``."""
    from bench_large_peers import _matrices, save_problem, skrelatif_call
    from scipy.special import softmax

    data = dict(np.load(save_problem(tmp_path, "multiclass-tiny", 3)))
    X, X_test = (M.toarray() for M in _matrices(data))
    W = data["coef"]
    n_classes, d = W.shape
    p, p_test = softmax(X @ W.T, axis=1), softmax(X_test @ W.T, axis=1)
    H = np.eye(n_classes * d) / float(data["C"])
    block = [slice(k * d, (k + 1) * d) for k in range(n_classes)]
    for k in range(n_classes):
        for m in range(n_classes):
            curvature = p[:, k] * ((k == m) - p[:, m])  # (diag(p) - p p^T)_km
            H[block[k], block[m]] += (X * curvature[:, None]).T @ X

    def gradients(X, p, labels):
        residual = p - np.eye(n_classes)[labels]
        return (residual[:, :, None] * X[:, None, :]).reshape(len(X), -1)

    G = gradients(X, p, data["y_index"])
    G_test = gradients(X_test, p_test, data["y_test_index"])
    expected = G_test @ np.linalg.solve(H, G.T)
    scores = skrelatif_call(data, "cg-reference")()
    scale = np.abs(expected).max()
    np.testing.assert_allclose(scores, expected, rtol=1e-8, atol=1e-9 * scale)

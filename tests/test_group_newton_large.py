"""The group Newton step for groups larger than the parameter count (half
the training set, as the linear datamodeling score removes), against a dense
reference: one Newton step of the objective without the group, with its
Hessian summed explicitly (``tests/_dense.py``)."""

import numpy as np
import pytest
from scipy.special import log_softmax
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skrelatif import InfluenceExplainer

from . import _dense


def _dense_newton_change(model, X, y, X_test, y_test, group):
    """Test-loss change after one Newton step of F without ``group``."""
    keep = np.setdiff1d(np.arange(len(y)), group)
    H = _dense.hessian(model, X[keep], y[keep])  # H - J_G^T M J_G, summed directly
    # gradient of F_G at theta*: F's is 0, so minus the group's data term
    gradient = -model.C * _dense.gradients(model, X[group], y[group]).sum(axis=0)
    step = -np.linalg.pinv(H, hermitian=True) @ gradient  # softmax null direction
    K, d = model.coef_.shape[0], X.shape[1] + 1
    W = np.hstack([model.coef_, model.intercept_[:, None]])
    W_after = W + step.reshape(K, d)

    def losses(W):
        F = _dense.design(model, X_test) @ W.T
        k = np.searchsorted(model.classes_, y_test)
        return -log_softmax(F, axis=1)[np.arange(len(k)), k]

    return losses(W_after) - losses(W)


@pytest.mark.parametrize("size", [3, 60])
def test_group_newton_step_matches_a_dense_newton_step(size):
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X[:, :4])
    rng = np.random.RandomState(0)
    order = rng.permutation(len(y))
    X, y = X[order], y[order]
    X_train, y_train, X_test, y_test = X[:120], y[:120], X[120:126], y[120:126]
    model = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000)
    model.fit(X_train, y_train)
    explainer = InfluenceExplainer(model, method="newton").fit(X_train, y_train)
    # P = 3 x 5 = 15: a group of 3 takes the Woodbury form (g K = 9), one of
    # 60 the parameter-space form (g K = 180)
    groups = [rng.choice(120, size, replace=False) for _ in range(3)]
    predicted = explainer.predict_removal(X_test, y_test, groups=groups)
    expected = np.column_stack(
        [
            _dense_newton_change(model, X_train, y_train, X_test, y_test, g)
            for g in groups
        ]
    )
    np.testing.assert_allclose(
        predicted, expected, rtol=1e-7, atol=1e-10 * np.abs(expected).max()
    )

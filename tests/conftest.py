"""Shared test data (see ``_dense.py`` for the references and checks)."""

import pytest
from sklearn.datasets import make_classification

from skrelatif._refit_cache import REFITS


@pytest.fixture(autouse=True)
def _fresh_refit_cache():
    """Every test starts without reusable retrainings (see
    :mod:`skrelatif._refit_cache`), so that none depends on another's."""
    REFITS.clear()
    yield
    REFITS.clear()


@pytest.fixture
def classification():
    """A factory of small separable-but-noisy classification problems,
    returned as ``X_train, y_train, X_test, y_test``."""

    def make(n_classes, *, n_samples=90, n_features=5, n_train=70, flip_y=0.1, seed=0):
        X, y = make_classification(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=4,
            n_redundant=0,
            n_classes=n_classes,
            n_clusters_per_class=1,
            flip_y=flip_y,
            random_state=seed,
        )
        return X[:n_train], y[:n_train], X[n_train:], y[n_train:]

    return make

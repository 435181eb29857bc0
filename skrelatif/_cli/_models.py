"""The model of ``skrelatif explain``: a built-in pipeline or a model file.

A ``.skops`` file is loaded with the types skops trusts (plus those the user
names with ``--trust``); any other file is a joblib pickle, loaded only with
``--trust-pickle`` since unpickling runs the code the file contains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import CommandLineError, described


@dataclass(frozen=True)
class BuiltinModel:
    """One ``--model`` choice: the final estimator of the built-in pipeline,
    named by its import path so that ``skrelatif --help`` imports nothing.

    Attributes
    ----------
    module, name : str
        Where the estimator class is (``sklearn.neighbors``,
        ``KNeighborsClassifier``).
    params : tuple of (str, object)
        Its parameters (the others keep scikit-learn's defaults).
    regressor : bool
        Whether it needs a numeric ``--target``.
    help : str
        Its line in ``--model``'s help.
    """

    module: str
    name: str
    params: tuple[tuple[str, Any], ...] = ()
    regressor: bool = False
    help: str = ""

    def estimator(self) -> Any:
        """A new, unfitted instance."""
        import importlib

        return getattr(importlib.import_module(self.module), self.name)(
            **dict(self.params)
        )


#: The ``--model`` choices, the first the default. A model family adds its
#: line here (a classifier ``name``, and its regressor ``name-regressor``
#: where it has one): the parser's choices, its help and the check that a
#: regressor gets a numeric target follow.
BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "logreg": BuiltinModel(
        "sklearn.linear_model",
        "LogisticRegression",
        (("tol", 1e-8), ("max_iter", 1000)),
        help="LogisticRegression (default)",
    ),
    "svc": BuiltinModel("sklearn.svm", "SVC", help="SVC (rbf kernel)"),
    "ridge": BuiltinModel(
        "sklearn.linear_model", "Ridge", regressor=True, help="Ridge, a regressor"
    ),
    "knn": BuiltinModel(
        "sklearn.neighbors",
        "KNeighborsClassifier",
        help="KNeighborsClassifier (5 neighbours; exact removal)",
    ),
    "knn-regressor": BuiltinModel(
        "sklearn.neighbors",
        "KNeighborsRegressor",
        regressor=True,
        help="KNeighborsRegressor, a regressor",
    ),
    "hgb": BuiltinModel(
        "sklearn.ensemble",
        "HistGradientBoostingClassifier",
        (("random_state", 0),),
        help="HistGradientBoostingClassifier (training replayed)",
    ),
    "hgb-regressor": BuiltinModel(
        "sklearn.ensemble",
        "HistGradientBoostingRegressor",
        (("random_state", 0),),
        regressor=True,
        help="HistGradientBoostingRegressor, a regressor",
    ),
    "forest": BuiltinModel(
        "sklearn.ensemble",
        "RandomForestClassifier",
        (("min_samples_leaf", 5), ("random_state", 0)),
        help="RandomForestClassifier (100 trees, 5 examples a leaf)",
    ),
    "forest-regressor": BuiltinModel(
        "sklearn.ensemble",
        "RandomForestRegressor",
        (("min_samples_leaf", 5), ("random_state", 0)),
        regressor=True,
        help="RandomForestRegressor, a regressor",
    ),
}


def builtin_model(name: str, kinds: dict[str, str]) -> Any:
    """The ``--model`` choice ``name`` (:data:`BUILTIN_MODELS`) after the
    column transformer of
    :func:`~skrelatif._cli._preprocess.column_transformer` for ``kinds``."""
    from sklearn.pipeline import make_pipeline

    from ._preprocess import column_transformer

    return make_pipeline(column_transformer(kinds), BUILTIN_MODELS[name].estimator())


def is_regressor(model: Any) -> bool:
    """Whether the final estimator of ``model`` is a scikit-learn regressor."""
    from sklearn.base import is_regressor as _is_regressor

    return bool(_is_regressor(final_estimator(model)))


def _load_skops(file: Path, path: str, trusted: list[str]) -> Any:
    try:
        import skops.io as sio
    except ImportError:
        raise CommandLineError(
            f'reading {path} needs skops: pip install "skrelatif[cli]"'
        ) from None
    try:
        untrusted = sio.get_untrusted_types(file=file)
    except Exception as exc:  # a corrupt zip, an unknown schema, ...
        raise CommandLineError(
            f"{path} is not a readable .skops file ({described(exc)})"
        ) from None
    refused = [name for name in untrusted if name not in trusted]
    if refused:
        raise CommandLineError(
            f"{path} contains types that skops does not trust by default: "
            f"{', '.join(refused)}. Check them; to load the file anyway pass "
            + " ".join(f"--trust {name}" for name in refused)
        )
    try:
        return sio.load(file, trusted=list(untrusted) or None)
    except Exception as exc:
        raise CommandLineError(f"cannot load {path} ({described(exc)})") from None


def load_model(path: str, *, trusted: list[str], trust_pickle: bool) -> Any:
    """The estimator in ``path`` (``.skops``, or a pickle if ``trust_pickle``)."""
    file = Path(path)
    if not file.is_file():
        raise CommandLineError(f"cannot read the model file {path}: no such file")
    if file.suffix == ".skops":
        model = _load_skops(file, path, trusted)
    elif not trust_pickle:
        raise CommandLineError(
            f"{path} is not a .skops file, so it would be unpickled (joblib), and "
            "unpickling runs any code the file contains. Pass --trust-pickle if it "
            "comes from a source you trust, or save the model with "
            "skops.io.dump(model, 'model.skops')"
        )
    else:
        import joblib

        try:
            model = joblib.load(file)
        except Exception as exc:  # unpickling fails in many ways
            raise CommandLineError(
                f"cannot load {path} as a joblib pickle ({described(exc)})"
            ) from None
    if not hasattr(model, "fit"):
        raise CommandLineError(
            f"{path} holds a {type(model).__name__}, not a scikit-learn estimator"
        )
    return model


def is_fitted(model: Any) -> bool:
    """Whether scikit-learn considers ``model`` fitted."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except (NotFittedError, TypeError):
        return False
    return True


def wants_frame(model: Any, fitted: bool) -> bool:
    """Give ``model`` a DataFrame: when fitted on one, or unfitted and pandas is
    there (so that column transformers can select columns by name)."""
    if fitted:
        return hasattr(model, "feature_names_in_")
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def final_estimator(model: Any) -> Any:
    """The last step of a pipeline (unwrapping ``FrozenEstimator``), else ``model``."""
    from sklearn.pipeline import Pipeline

    while True:
        if isinstance(model, Pipeline):
            model = model.steps[-1][1]
        elif type(model).__name__ == "FrozenEstimator":
            model = model.estimator
        else:
            return model

"""The model of ``skrelatif explain``: a built-in pipeline or a model file.

A ``.skops`` file is loaded with the types skops trusts (plus those the user
names with ``--trust``); any other file is a joblib pickle, loaded only with
``--trust-pickle`` since unpickling runs the code the file contains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._errors import CommandLineError, described


def builtin_model(name: str, kinds: dict[str, str]) -> Any:
    """``LogisticRegression`` (``"logreg"``), ``SVC`` (``"svc"``) or ``Ridge``
    (``"ridge"``) after the column transformer of
    :func:`~skrelatif._cli._preprocess.column_transformer` for ``kinds``."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    from ._preprocess import column_transformer

    finals = {
        "logreg": lambda: LogisticRegression(tol=1e-8, max_iter=1000),
        "svc": SVC,
        "ridge": Ridge,
    }
    return make_pipeline(column_transformer(kinds), finals[name]())


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

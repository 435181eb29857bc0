"""Model adapters. Every public module of this package is imported here, so a
new model family is supported by adding one module that subclasses
:class:`~skrelatif._adapters._base.ModelAdapter` (it registers itself)."""

import importlib
import pkgutil

from ._base import (
    METHODS,
    ModelAdapter,
    decomposing_estimators,
    find_adapter,
    supported_estimators,
)
from ._table import SupportedModel, supported_models_rst, supported_models_table

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "METHODS",
    "ModelAdapter",
    "decomposing_estimators",
    "SupportedModel",
    "find_adapter",
    "supported_estimators",
    "supported_models_rst",
    "supported_models_table",
]

"""The "Supported models" table, generated from the adapters' declarations.

Every row comes from a registered :class:`~skrelatif._adapters._base.ModelAdapter`
(its ``estimator_types``, ``objective``, ``loss``, ``curvatures``,
``methods``, ``decomposes`` and ``notes``), so the documentation
(``doc/supported_models.rst``, written by ``doc/conf.py`` at every build)
lists a new model family as soon as its adapter module exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sklearn.base import RegressorMixin

from ._base import METHODS, ModelAdapter


@dataclass(frozen=True)
class SupportedModel:
    """One row of the "Supported models" table: one estimator class.

    Attributes
    ----------
    estimator : type
        The estimator class.
    adapter : type
        Its :class:`ModelAdapter` subclass.
    objective, loss, notes : str
        The adapter's declarations.
    hessians : tuple of (str, tuple of str)
        The ``hessian`` options that apply (the first is ``"auto"``), each
        with the ``solver`` options that can invert it (empty: none needed).
        Empty for a model explained as a sum over its training examples.
    methods : tuple of str
        The ``method`` options that apply (the adapter's ``methods``).
    decomposes : str
        What :meth:`~skrelatif.InfluenceExplainer.decompose` sums to for it
        (empty: no decomposition).
    regressor : bool
        Whether the class is a regressor (explains its prediction by default).
    """

    estimator: type
    adapter: type
    objective: str
    loss: str
    hessians: tuple[tuple[str, tuple[str, ...]], ...]
    methods: tuple[str, ...]
    regressor: bool
    notes: str
    decomposes: str = ""

    @property
    def name(self) -> str:
        """The estimator's class name."""
        return self.estimator.__name__

    @property
    def path(self) -> str:
        """The public dotted path, e.g. ``sklearn.linear_model.Ridge``."""
        public = []
        for part in self.estimator.__module__.split("."):
            if part.startswith("_"):
                break
            public.append(part)
        return ".".join([*public, self.estimator.__name__])


def supported_models_table() -> list[SupportedModel]:
    """One :class:`SupportedModel` per estimator class of every registered adapter.

    Rows are in registry order (the adapters' import order), and within an
    adapter in the order of its ``estimator_types``. The methods are the
    adapter's own (in the order of ``METHODS``); a class is a
    regressor when it is a scikit-learn regressor (as the adapters decide).

    Returns
    -------
    rows : list of SupportedModel
        The table's rows.
    """
    from .._curvature import valid_pairs

    rows = []
    for adapter in ModelAdapter._registry:
        methods = tuple(m for m in METHODS if m in adapter.methods)
        pairs = valid_pairs(adapter)
        hessians = tuple(
            (h, tuple(s for c, s in pairs if c == h and s))
            for h in dict.fromkeys(c for c, _ in pairs)
        )
        for estimator in adapter.estimator_types:
            rows.append(
                SupportedModel(
                    estimator=estimator,
                    adapter=adapter,
                    objective=adapter.objective,
                    loss=adapter.loss,
                    hessians=hessians,
                    methods=methods,
                    regressor=issubclass(estimator, RegressorMixin),
                    notes=adapter.notes,
                    decomposes=adapter.decomposes,
                )
            )
    return rows


_RST_SPECIAL = re.compile(r"([\\`*_|\[\]<>])")


def _text(value: str) -> str:
    """Plain reStructuredText: markup characters escaped."""
    return _RST_SPECIAL.sub(r"\\\1", " ".join(value.split())) or "\\-"


def _literal(value: str) -> str:
    """An inline literal (``value``), or a dash when empty."""
    value = " ".join(value.split()).replace("`", "'")
    return f"``{value}``" if value else "\\-"


def supported_models_rst() -> str:
    """The "Supported models" page (reStructuredText) of the documentation.

    Returns
    -------
    text : str
        A page with one ``list-table`` row per :func:`supported_models_table` row.
    """
    lines = [
        ".. Written by doc/conf.py from the model adapters' declarations",
        "   (skrelatif._adapters.supported_models_rst) at every build; edit the",
        "   adapters, not this file.",
        "",
        ".. _supported_models:",
        "",
        "================",
        "Supported models",
        "================",
        "",
        ":class:`~skrelatif.InfluenceExplainer` explains these scikit-learn",
        "estimators, alone or as the last step of a",
        ":class:`~sklearn.pipeline.Pipeline` (whose earlier steps transform X",
        "first). Dispatch is on exact types: a subclass gets a clear",
        "``TypeError`` listing this table's models. In the objectives, ``s_i`` is",
        "an example's sample weight (times its class weight, where the model has",
        "one) and ``l_i`` its loss as in the *Loss* column; the scores are",
        "defined in :doc:`user_guide/influence`. The first curvature is the one",
        '``hessian="auto"`` (the default) means, and in brackets the ``solver``',
        'options that can invert it (``solver="auto"`` picks one by cost; see',
        ":doc:`user_guide/hessian`). Regressors explain their",
        "prediction when no targets are given (see :doc:`user_guide/regression`).",
        "The *decompose* column says what",
        ":meth:`~skrelatif.InfluenceExplainer.decompose` writes as ``baseline_`` plus",
        "a sum over the training examples (a dash: not offered).",
        "",
        "This page is generated from the adapters' own declarations, so it lists",
        "exactly what the installed version supports.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 12 20 16 12 12 8 10 10",
        "",
        "   * - Model",
        "     - Objective",
        "     - Loss",
        "     - ``hessian`` (``solver``)",
        "     - ``method``",
        "     - Kind",
        "     - ``decompose``",
        "     - Notes",
    ]
    for row in supported_models_table():
        cells = [
            f":class:`~{row.path}`",
            _literal(row.objective),
            _literal(row.loss),
            "; ".join(
                f'``"{h}"``' + (" (" + ", ".join(solvers) + ")" if solvers else "")
                for h, solvers in row.hessians
            )
            or "none (a sum over training examples)",
            ", ".join(f'``"{m}"``' for m in row.methods),
            "regressor" if row.regressor else "classifier",
            _text(row.decomposes),
            _text(row.notes),
        ]
        lines.append(f"   * - {cells[0]}")
        lines += [f"     - {cell}" for cell in cells[1:]]
    return "\n".join(lines) + "\n"

"""The "Supported models" page is generated from the adapter registry.

``doc/conf.py`` writes ``doc/supported_models.rst`` with
:func:`skrelatif._adapters.supported_models_rst`; these tests build the same
table with the same functions and check it against the registry, so the page
cannot drift from what the adapters declare (new adapter modules included).
"""

import re

import pytest
from sklearn.base import is_regressor

from skrelatif._adapters import (
    METHODS,
    ModelAdapter,
    supported_estimators,
    supported_models_rst,
    supported_models_table,
)
from skrelatif._solvers import SOLVERS


def _registered():
    return [(a, t) for a in ModelAdapter._registry for t in a.estimator_types]


def test_one_row_per_registered_estimator_class():
    rows = supported_models_table()
    assert [(r.adapter, r.estimator) for r in rows] == _registered()
    assert sorted({r.name for r in rows}) == supported_estimators()


@pytest.mark.parametrize(
    "row", supported_models_table(), ids=lambda r: r.estimator.__name__
)
def test_row_declarations_are_the_adapters(row):
    adapter = row.adapter
    # every curvature the family declares, then "identity", each with the
    # solvers whose operator need it meets
    curvatures = (*adapter.curvatures, "identity") if adapter.curvatures else ()
    assert [h for h, _ in row.hessians] == list(curvatures)
    for hessian, solvers in row.hessians:
        provides = adapter.curvatures.get(hessian, frozenset())
        assert list(solvers) == [
            n for n, s in SOLVERS.items() if s.requires in provides
        ]
    assert row.objective == adapter.objective and row.objective
    assert row.loss == adapter.loss and row.loss
    assert row.notes == adapter.notes
    assert list(row.methods) == [m for m in METHODS if m in adapter.methods]
    assert set(row.methods) == set(adapter.methods)
    assert row.decomposes == adapter.decomposes
    assert row.regressor == is_regressor(row.estimator())  # scikit-learn's tags
    assert row.path.endswith("." + row.name) and "._" not in row.path


def test_known_rows():
    rows = {r.name: r for r in supported_models_table()}
    assert rows["Ridge"].regressor and rows["LinearRegression"].regressor
    assert not rows["RidgeClassifier"].regressor
    assert not rows["LogisticRegression"].regressor
    assert rows["Ridge"].path == "sklearn.linear_model.Ridge"
    assert "newton" not in rows["SVC"].methods
    assert rows["SVC"].hessians == ()
    for name in ("KNeighborsClassifier", "KNeighborsRegressor", "KernelRidge"):
        assert rows[name].hessians == () and "newton" in rows[name].methods
        assert "boostin" not in rows[name].methods
    assert rows["KNeighborsClassifier"].decomposes.endswith("(classifiers)")
    assert rows["SVC"].decomposes.startswith("decision_function")
    assert rows["SGDClassifier"].decomposes == ""
    assert rows["LogisticRegression"].decomposes
    logistic = dict(rows["LogisticRegression"].hessians)
    assert logistic["exact"] == (
        "cholesky",
        "block-diagonal",
        "cg",
        "lissa",
        "data-space",
    )
    assert logistic["identity"] == ()
    assert "kfac" in dict(rows["MLPClassifier"].hessians)["gauss-newton"]
    assert "kfac" not in dict(rows["MLPClassifier"].hessians)["exact"]


def _table_rows(text):
    """The body rows of the page's list-table, as lists of cell texts."""
    from docutils.core import publish_doctree
    from docutils.utils import Reporter

    doctree = publish_doctree(
        text,
        settings_overrides={
            "report_level": Reporter.SEVERE_LEVEL,
            "halt_level": Reporter.SEVERE_LEVEL,
        },
    )
    nodes = getattr(doctree, "findall", doctree.traverse)()
    (tbody,) = [n for n in nodes if n.tagname == "tbody"]
    return [[entry.astext() for entry in row.children] for row in tbody.children]


def test_page_lists_every_row_with_its_hessian_options():
    pytest.importorskip("docutils")
    text = supported_models_rst()
    rows = supported_models_table()
    cells = _table_rows(text)
    assert len(cells) == len(rows)
    for row, cell in zip(rows, cells):
        model, objective, loss, hessians, methods, kind, decomposes, notes = cell
        assert row.name in model
        assert hessians == (
            "; ".join(
                f'"{h}"' + (f" ({', '.join(s)})" if s else "") for h, s in row.hessians
            )
            or "none (a sum over training examples)"
        )
        assert methods == ", ".join(f'"{m}"' for m in row.methods)
        assert kind == ("regressor" if row.regressor else "classifier")
        assert " ".join(decomposes.split()) == (" ".join(row.decomposes.split()) or "-")
        assert " ".join(objective.split()) == " ".join(row.objective.split())
        assert " ".join(loss.split()) == " ".join(row.loss.split())
        # notes are escaped markup, read back as the adapter's text
        assert " ".join(notes.split()) == " ".join(row.notes.split())


def test_markup_in_notes_is_escaped():
    pytest.importorskip("docutils")
    from docutils.core import publish_doctree

    from skrelatif._adapters._table import _text

    raw = "alpha_ and *C* with ||w|| and `x`"
    doctree = publish_doctree(_text(raw))
    assert doctree.astext() == raw
    assert not re.search(r"(reference|emphasis|substitution)", doctree.pformat())


def test_a_new_adapter_module_gets_its_rows(monkeypatch):
    """What another adapter module (GLMs, SGD, ...) gets on import: its rows."""
    from sklearn.linear_model import PoissonRegressor

    monkeypatch.setattr(ModelAdapter, "_registry", list(ModelAdapter._registry))

    class _Poisson(ModelAdapter):
        estimator_types = (PoissonRegressor,)
        curvatures = {"exact": frozenset({"matvec"})}
        objective = "1/(2 sum_i s_i) sum_i s_i l_i + alpha/2 ||w||^2"
        loss = "half Poisson deviance"
        notes = "log link: explains the linear predictor"

        def predict_target(self, X):  # pragma: no cover - never called
            raise NotImplementedError

        def loss_gradients(self, X, y_encoded):  # pragma: no cover
            raise NotImplementedError

        def losses(self, X, y_encoded):  # pragma: no cover
            raise NotImplementedError

    (row,) = [r for r in supported_models_table() if r.adapter is _Poisson]
    assert row.path == "sklearn.linear_model.PoissonRegressor"
    assert row.hessians == (("exact", ("cg",)), ("identity", ())) and row.regressor
    assert "PoissonRegressor" in supported_models_rst()

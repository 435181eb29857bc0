"""Curvature, solver and damping: what ``hessian=``, ``solver=`` and
``damping=`` of :class:`~skrelatif.InfluenceExplainer` resolve to for one
model family.

Three separate choices (spec section 8):

- the *curvature*, which matrix stands for the Hessian of the training
  objective: ``"exact"``, ``"gauss-newton"`` (the generalised Gauss-Newton
  matrix ``sum_i w_i J_i^T D_i J_i + diag(p)``; the same matrix as the exact
  Hessian for a model whose outputs are linear in its parameters) or
  ``"identity"``; ``"auto"`` is the family's first declared curvature;
- the *solver*, how it is inverted (:mod:`skrelatif._solvers`): any solver
  whose operator need the family meets for that curvature (the adapter's
  ``curvatures`` map each curvature to the operator methods it provides);
  ``"auto"`` compares the solvers' cost estimates on the problem;
- the *damping* ``lambda`` added to the curvature's diagonal. ``"auto"`` is 0
  for a convex objective (and, should its curvature be singular, the
  smallest relative value that makes it invertible, with a warning) and, for
  a non-convex one (networks), ``DAMPING_FRACTION * trace(C) / P``, the
  fraction measured against retraining (``benchmarks/bench_damping.py``).

The old combined spellings of ``hessian`` (``"block-diagonal"``, ``"cg"``,
``"lissa"``, ``"kfac"``) still work for one release with a
``FutureWarning`` naming the new one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from ._solvers import SOLVERS, InverseHessian

#: The curvature matrices ``hessian=`` names (besides "auto").
CURVATURES = ("exact", "gauss-newton", "identity")
#: Old ``hessian=`` spellings: (curvature, solver).
LEGACY_HESSIANS = {
    "block-diagonal": ("exact", "block-diagonal"),
    "cg": ("exact", "cg"),
    "lissa": ("exact", "lissa"),
    "kfac": ("gauss-newton", "kfac"),
}
#: ``damping="auto"`` of a non-convex family: this fraction of trace(C) / P.
DAMPING_FRACTION = 0.1
#: ``damping="auto"`` of a convex family whose curvature is singular.
SINGULAR_DAMPING_FRACTION = 1e-8
#: Test points the cost model assumes will be explained.
TEST_POINTS = 100


@dataclass(frozen=True)
class CurvatureChoice:
    """The resolved ``hessian``, ``solver`` (None: no inversion needed, or
    "auto" until the cost model decides), ``damping`` (a float, or "auto"
    until the curvature is known) and the solver's options."""

    hessian: str
    solver: str | None
    damping: float | str
    options: dict


def valid_pairs(adapter_class: Any) -> list[tuple[str, str | None]]:
    """Every (hessian, solver) pair that works for the family."""
    pairs = []
    for curvature, provides in adapter_class.curvatures.items():
        pairs += [(curvature, n) for n, s in SOLVERS.items() if s.requires in provides]
    if adapter_class.curvatures:
        pairs.append(("identity", None))
    return pairs


def _pairs_text(adapter_class: Any) -> str:
    return ", ".join(
        f'hessian="{h}"' + (f', solver="{s}"' if s else "")
        for h, s in valid_pairs(adapter_class)
    )


def resolve(
    adapter_class: Any,
    *,
    method: str,
    hessian: str,
    solver: str,
    damping: float | str,
    options: dict | None,
    name: str,
) -> CurvatureChoice:
    """Check and resolve the options before any work (``ValueError``, naming
    the pairs that work); ``name`` is the estimator's class name. Emits the
    ``FutureWarning`` of an old ``hessian`` spelling."""
    if method not in adapter_class.methods:
        answered = ", ".join(repr(m) for m in adapter_class.methods)
        why = ""
        if method == "newton":
            why = (
                f" method='newton' needs the curvature of the model's loss; "
                f"{name} has none ({adapter_class.curvature_note})."
            )
        raise ValueError(
            f"method={method!r} does not apply to {name}.{why} Use one of {answered}."
        )
    if not adapter_class.curvatures:  # a sum over training examples
        if hessian != "auto" or solver != "auto" or damping not in ("auto", 0, 0.0):
            raise ValueError(
                f"{name} is explained as a sum over its training examples "
                f"({adapter_class.curvature_note}): hessian, solver and damping do "
                "not apply. Leave them at their defaults."
            )
        return CurvatureChoice("identity", None, 0.0, {})
    if hessian in LEGACY_HESSIANS:
        curvature, legacy_solver = LEGACY_HESSIANS[hessian]
        if curvature not in adapter_class.curvatures:
            curvature = next(iter(adapter_class.curvatures))
        if solver not in ("auto", legacy_solver):
            raise ValueError(
                f'hessian="{hessian}" is the old spelling of hessian="{curvature}", '
                f'solver="{legacy_solver}"; it cannot be combined with '
                f'solver="{solver}".'
            )
        warnings.warn(
            f'hessian="{hessian}" is deprecated and will be removed in a future '
            f'release: use hessian="{curvature}", solver="{legacy_solver}".',
            FutureWarning,
            stacklevel=4,
        )
        hessian, solver = curvature, legacy_solver
    curvature = next(iter(adapter_class.curvatures)) if hessian == "auto" else hessian
    if curvature != "identity" and curvature not in adapter_class.curvatures:
        raise ValueError(
            f'hessian="{curvature}" does not apply to {name}. What works: '
            f"{_pairs_text(adapter_class)}. {adapter_class.curvature_note}".rstrip()
        )
    if method == "newton" and curvature == "identity":
        raise ValueError(
            "method='newton' needs the model's curvature: with hessian='identity' "
            "its leave-one-out step is meaningless. Use hessian='auto'."
        )
    if curvature == "identity":
        if solver != "auto":
            raise ValueError(
                f'hessian="identity" needs no solver; got solver="{solver}". '
                'Leave solver="auto".'
            )
        if options:
            raise ValueError('hessian="identity" takes no solver_options.')
        return CurvatureChoice(
            "identity", None, 0.0 if damping == "auto" else damping, {}
        )
    if solver != "auto":
        provides = adapter_class.curvatures[curvature]
        if SOLVERS[solver].requires not in provides:
            raise ValueError(
                f'solver="{solver}" does not apply to hessian="{curvature}" for '
                f"{name}. What works: {_pairs_text(adapter_class)}."
            )
        options = SOLVERS[solver].check_options(options, solver)
    elif options:
        raise ValueError(
            "solver_options are the options of one solver: name it with solver= "
            f"(got solver='auto' and solver_options={options!r})."
        )
    return CurvatureChoice(curvature, solver, damping, dict(options or {}))


def candidates(adapter_class: Any, curvature: str) -> dict[str, type[InverseHessian]]:
    """The solvers that can invert ``curvature`` for the family."""
    provides = adapter_class.curvatures[curvature]
    return {n: s for n, s in SOLVERS.items() if s.requires in provides}


def n_solves(method: str, n_train: int, n_outputs: int) -> int:
    """Right-hand sides ``method`` needs solved: every training example's
    normaliser (RelatIF), Jacobian rows (Newton), and the test points."""
    if method == "if":
        return TEST_POINTS
    if method == "newton":
        return (n_train + TEST_POINTS) * n_outputs
    return n_train + TEST_POINTS

"""``solver="auto"``: the cheapest solver that fits in memory, preferring
an exact one, from the solvers' own cost estimates.

Each candidate (a solver whose operator need the curvature meets, and that
may be chosen automatically) estimates its seconds and peak bytes on the
problem (:class:`~skrelatif._solvers._base.ProblemSize`). Those that would
take more than ``MEMORY_SHARE`` of the available memory are dropped; if none
is left the choice is refused before anything is allocated. Among the rest,
the cheapest exact solver is chosen unless an approximate one is estimated
more than ``EXACT_PREFERENCE`` times faster (and the exact one takes more
than ``SMALL_SECONDS``): an approximation is never taken for a small gain.
Among approximations, one of a lower ``approximation_rank`` (more accurate:
EK-FAC against K-FAC) is taken over the fastest when at most
``EXACT_PREFERENCE`` times slower.

Where the choice matters (every estimate above ``SMALL_SECONDS``) the
estimates are measured on this machine, now: the BLAS-3 ones rescaled by the
rate of a small GEMM, and an iterative solver's replaced by a pilot solve of
a few training gradients (its iterations and its time per iteration).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ._base import DENSE_RATE, Estimate, InverseHessian, ProblemSize, available_memory
from ._direct import MEMORY_SHARE

#: An approximate solver is chosen only when this many times faster.
EXACT_PREFERENCE = 1.5
#: ... and when the fastest exact one is estimated to take longer than this.
SMALL_SECONDS = 1.0


def estimate_all(
    candidates: dict[str, type[InverseHessian]], size: ProblemSize
) -> dict[str, Estimate]:
    """Each automatic candidate's estimate on ``size`` (those that apply)."""
    estimates = {}
    for name, solver in candidates.items():
        estimate = solver.estimate(size) if solver.automatic else None
        if estimate is not None:
            estimates[name] = estimate
    return estimates


def dense_rate(size: int = 768) -> float:
    """FLOP/s of one ``size``-cubed GEMM on this machine now."""
    rng = np.random.RandomState(0)
    A, B = rng.standard_normal((2, size, size))
    start = time.perf_counter()
    A @ B
    return 2 * size**3 / max(time.perf_counter() - start, 1e-9)


def choose_solver(
    candidates: dict[str, type[InverseHessian]],
    size: ProblemSize,
    *,
    memory: float | None = None,
    pilot: Callable[[type[InverseHessian]], Estimate | None] | None = None,
    check_seconds: Callable[[dict[str, Estimate]], float] | None = None,
) -> tuple[str, dict[str, Estimate]]:
    """The name of the solver to use and every candidate's estimate.

    ``pilot(solver)``, when given, measures a solver that can be measured
    (an iterative one) on the problem itself. ``check_seconds(estimates)``
    is added to every approximate solver's estimate: the cost of measuring
    its error (``normaliser_error_``) against an exact inverse, from the
    exact solvers' (measured) estimates.

    Raises
    ------
    MemoryError
        When no candidate fits in ``MEMORY_SHARE`` of ``memory`` (default:
        the memory available now).
    """
    memory = available_memory() if memory is None else memory
    estimates = estimate_all(candidates, size)
    if estimates and min(e.seconds for e in estimates.values()) > SMALL_SECONDS:
        scale = DENSE_RATE / dense_rate()
        for name, solver in candidates.items():
            if name not in estimates:
                continue
            measured = pilot(solver) if pilot and solver.iterative else None
            estimate = estimates[name]
            estimates[name] = measured or Estimate(
                estimate.seconds * scale, estimate.bytes
            )
    check = check_seconds(estimates) if check_seconds else 0.0
    for name, estimate in estimates.items():
        if not candidates[name].exact:
            estimates[name] = Estimate(estimate.seconds + check, estimate.bytes)
    fitting = {n: e for n, e in estimates.items() if e.bytes <= MEMORY_SHARE * memory}
    if not fitting:
        needs = ", ".join(
            f'solver="{n}" {e.bytes / 2**30:.1f} GiB' for n, e in estimates.items()
        )
        raise MemoryError(
            f"No solver fits in the {memory / 2**30:.1f} GiB available for this "
            f"problem ({size.n_params} parameters, {size.n_solves} solves): "
            f'{needs}. Use method="if" (one solve per test point) with '
            'solver="cg", or free memory.'
        )
    fastest = min(fitting, key=lambda n: fitting[n].seconds)
    # a more accurate approximation about as fast (EK-FAC against K-FAC)
    closer = [
        n
        for n in fitting
        if not candidates[n].exact
        and candidates[n].approximation_rank < candidates[fastest].approximation_rank
        # (a relative slack: estimates in a ratio of exactly EXACT_PREFERENCE
        # must not flip with the rounding of the measured rate)
        and fitting[n].seconds
        <= EXACT_PREFERENCE * fitting[fastest].seconds * (1 + 1e-9)
    ]
    if closer and not candidates[fastest].exact:
        fastest = min(closer, key=lambda n: candidates[n].approximation_rank)
    exact = [n for n in fitting if candidates[n].exact]
    if exact:
        best_exact = min(exact, key=lambda n: fitting[n].seconds)
        seconds = fitting[best_exact].seconds
        if (
            seconds <= EXACT_PREFERENCE * fitting[fastest].seconds
            or seconds <= SMALL_SECONDS
        ):
            return best_exact, estimates
    return fastest, estimates

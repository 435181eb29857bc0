"""Chunking under scikit-learn's ``working_memory`` and joblib dispatch.

Three ways to dispatch work:

- :func:`parallel_map`: one joblib task per argument tuple (results in order);
- :func:`parallel_chunks`: a function of each chunk of one pass over the data,
  the chunks grouped into about ``effective_n_jobs`` tasks;
- :func:`parallel_sum`: the same for a sum over the chunks, each task
  returning its partial sums.

So a pass is a handful of tasks whatever the number of chunks.

With one job, or a single task, neither creates a joblib ``Parallel``: a plain
loop runs in this process.

:func:`parallel_sum` adds the chunks' terms in a fixed order, a binary tree
over the chunks that depends on their number only (each internal node adds its
left child to its right one). A task folds the nodes that lie wholly in its
run of chunks and returns what it could not complete; this process completes
the tree. Every node is the same sum of the same two numbers whichever process
computed it, so the total is bitwise the same for any ``n_jobs`` or backend
(chunk boundaries, that is ``working_memory``, change it by rounding only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from joblib import effective_n_jobs
from scipy import sparse
from sklearn.utils import gen_batches
from sklearn.utils._chunking import get_chunk_n_rows
from sklearn.utils.parallel import Parallel, delayed


def chunk_size(row_bytes: int, n_rows: int, working_memory: float | None = None) -> int:
    """Rows of ``row_bytes`` bytes each that fit in ``working_memory`` MiB (>= 1):
    scikit-learn's ``get_chunk_n_rows`` (which warns when one row does not fit)."""
    return get_chunk_n_rows(
        max(int(row_bytes), 1),
        max_n_rows=max(int(n_rows), 1),
        working_memory=working_memory,
    )


def chunk_slices(
    n_rows: int, row_bytes: int, working_memory: float | None = None
) -> list[slice]:
    """Slices covering ``range(n_rows)`` in chunks that fit in ``working_memory``."""
    return list(gen_batches(n_rows, chunk_size(row_bytes, n_rows, working_memory)))


def parallel_map(
    function: Callable[..., Any], arguments: Iterable[tuple], *, n_jobs: int | None
) -> Iterator[Any]:
    """``function(*args)`` for each tuple of ``arguments``, in order, lazily.

    Dispatched with joblib (so ``joblib.parallel_config`` chooses the backend, a
    Dask cluster included), one task per tuple. With one job, or a single
    tuple, a plain loop in this process: no ``Parallel`` is created.
    """
    arguments = iter(arguments)
    if effective_n_jobs(n_jobs) == 1:
        return (function(*args) for args in arguments)
    first = next(arguments, None)
    second = next(arguments, None)
    if second is None:  # nothing to run side by side
        return (function(*args) for args in ([] if first is None else [first]))
    tasks = (delayed(function)(*args) for args in (first, second, *arguments))
    parallel = Parallel(n_jobs=n_jobs)
    if getattr(parallel._backend, "supports_return_generator", False):
        parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    # else (e.g. the Dask backend of joblib < 1.5): a list, returned whole
    return iter(parallel(tasks))


def _split(lo: int, hi: int) -> int:
    """Where the tree node over chunks ``[lo, hi)`` splits: after the largest
    power of two below its size (aligned blocks of 2^j chunks are nodes)."""
    return lo + (1 << ((hi - lo - 1).bit_length() - 1))


def _siblings(left: tuple[int, int], right: tuple[int, int], n: int) -> bool:
    """Whether adjacent nodes ``left`` and ``right`` are the two children of a
    node of the tree over ``n`` chunks."""
    lo, hi = 0, n
    start, stop = left[0], right[1]
    while hi - lo > 1:
        mid = _split(lo, hi)
        if (lo, hi) == (start, stop):
            return mid == left[1]
        if stop <= mid:
            hi = mid
        elif start >= mid:
            lo = mid
        else:
            return False
    return False


def _fold(stack: list, nodes: Iterable[tuple], n: int) -> list:
    """Push ``(node, value)`` pairs (left to right) on ``stack``, adding two
    siblings into their parent (left + right) as soon as both are there."""
    for node, value in nodes:
        stack.append((node, value))
        while len(stack) > 1 and _siblings(stack[-2][0], stack[-1][0], n):
            (right_node, right), (left_node, left) = stack.pop(), stack.pop()
            left = _add(left, right)
            stack.append(((left_node[0], right_node[1]), left))
    return stack


def _add(left, right):
    """``left + right``, in place when ``left`` is a writeable array of the
    result's dtype (a partial sum received from a worker may be read-only)."""
    if (
        isinstance(left, np.ndarray)
        and left.flags.writeable
        and np.result_type(left, right) == left.dtype
    ):
        left += right
        return left
    return left + right


def _sum_run(function, chunks, start, n, *shared):
    """The tree over ``n`` chunks, folded over ``chunks`` (chunk ``start`` on):
    the (node, partial sum) pairs this run could complete."""
    return _fold(
        [],
        (
            ((start + i, start + i + 1), function(*shared, c))
            for i, c in enumerate(chunks)
        ),
        n,
    )


def _runs(n: int, n_jobs: int | None) -> list[tuple[int, int]]:
    """``n`` chunks cut into about ``effective_n_jobs(n_jobs)`` contiguous runs
    (one run for one chunk or one job)."""
    n_runs = min(n, effective_n_jobs(n_jobs)) if n > 1 else 1
    bounds = [n * r // n_runs for r in range(n_runs + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _map_run(function, chunks, *shared):
    return [function(*shared, chunk) for chunk in chunks]


def parallel_chunks(
    function: Callable[..., Any],
    shared: tuple,
    chunks: Sequence[Any],
    *,
    n_jobs: int | None,
) -> list:
    """``[function(*shared, chunk) for chunk in chunks]`` in about
    ``effective_n_jobs(n_jobs)`` tasks, each over a contiguous run of chunks
    (one job, or one chunk: a plain loop here). Each task gets the ``shared``
    arguments once, not once per chunk."""
    parts = parallel_map(
        _map_run,
        ((function, chunks[a:b], *shared) for a, b in _runs(len(chunks), n_jobs)),
        n_jobs=n_jobs,
    )
    return [result for part in parts for result in part]


def parallel_sum(
    function: Callable[..., Any],
    shared: tuple,
    chunks: Sequence[Any],
    *,
    n_jobs: int | None,
) -> Any:
    """``sum(function(*shared, chunk) for chunk in chunks)``, in about
    ``effective_n_jobs(n_jobs)`` tasks.

    ``chunks`` (slices or index arrays, one pass over the data in
    ``working_memory``-sized pieces) are cut into contiguous runs, one task
    per run; each task gets the ``shared`` arguments (each array shipped once
    per call: the Dask backend scatters it) and returns its partial sums.
    One job, or one chunk: a plain loop here. The order of the additions is
    that of the module docstring: the result does not depend on ``n_jobs``.
    """
    n = len(chunks)
    if n == 0:
        raise ValueError("parallel_sum needs at least one chunk.")
    stack = []
    for part in parallel_map(
        _sum_run,
        ((function, chunks[a:b], a, n, *shared) for a, b in _runs(n, n_jobs)),
        n_jobs=n_jobs,
    ):
        _fold(stack, part, n)
    ((_, total),) = stack
    return total


def outer_rows(residuals: np.ndarray, design: Any) -> np.ndarray:
    """Kronecker-factored gradients ``r_i ⊗ x̃_i`` as rows of a dense array.

    ``residuals`` has shape (n, K) and ``design`` (n, d) (dense or sparse); the
    result has shape (n, K * d), in the parameter layout ``[class][feature]``.
    """
    if sparse.issparse(design):
        design = design.toarray()
    dtype = np.result_type(residuals.dtype, design.dtype)
    product = residuals.astype(dtype, copy=False)[:, :, None] * design[:, None, :]
    return product.reshape(design.shape[0], -1)


def log(verbose: int, level: int, message: str) -> None:
    """Print a progress message when ``verbose >= level`` (scikit-learn style)."""
    if verbose >= level:
        print(f"[skrelatif] {message}", flush=True)

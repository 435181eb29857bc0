"""Chunking under scikit-learn's ``working_memory`` and joblib dispatch.

Three ways to dispatch work:

- :func:`parallel_map`: one joblib task per argument tuple (results in order);
- :func:`parallel_chunks`: a function of each chunk of one pass over the
  examples, the chunks grouped into about ``effective_n_jobs`` contiguous
  runs, one task each, which gets the examples of its run only;
- :func:`parallel_sum`: the same for a sum over the chunks, each task
  returning its partial sums.

So a pass is a handful of tasks whatever the number of chunks. With one job,
or a single task, none of them creates a joblib ``Parallel``: a plain loop
runs in this process.

:func:`parallel_sum` adds the chunks' terms in a fixed order, a binary tree
over the chunks that depends on their number only (each internal node adds
its right child to its left one). A task folds the nodes that lie wholly in
its run of chunks and returns what it could not complete; this process
completes the tree. Every node is the same sum of the same two numbers
whichever process computed it, so the total depends on neither ``n_jobs``
nor the backend, as long as the chunks' terms do not (BLAS may round
differently with another number of threads); chunk boundaries, that is
``working_memory``, change it by rounding.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import sklearn
from joblib import effective_n_jobs
from scipy import sparse
from sklearn.utils import gen_batches
from sklearn.utils._chunking import get_chunk_n_rows
from sklearn.utils.parallel import Parallel, delayed
from threadpoolctl import ThreadpoolController

#: Work (floating-point operations) below which BLAS runs on one thread.
ONE_THREAD_FLOPS = 2e9


@functools.cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def blas_threads(flops: float) -> contextlib.AbstractContextManager:
    """One BLAS thread while doing ``flops`` of work below ``ONE_THREAD_FLOPS``.

    A small problem is a sequence of small products from two OpenBLAS
    thread pools (numpy's and SciPy's), and the idle threads of each pool
    keep spinning for a while after its last call, slowing the other's (see
    the digits row of ``benchmarks/bench_peers.py``, about 7e8 flops, and
    the scaling page of the user guide). Large problems gain from every
    thread, so above the threshold the caller's own limits hold.
    """
    if flops >= ONE_THREAD_FLOPS:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=1, user_api="blas")


def compute_threads() -> int:
    """Threads for work BLAS does not do (SciPy's sparse products, numpy's
    element-wise passes, both of which release the GIL): as many as BLAS
    may use now, so :func:`blas_threads` and ``threadpool_limits`` hold for
    them too."""
    libraries = _blas_controller().select(user_api="blas").info()
    return max(1, min((info["num_threads"] for info in libraries), default=1))


def thread_map(function: Callable[[Any], Any], items: Sequence, threads: int) -> list:
    """``[function(item) for item in items]``, on ``threads`` threads when
    there is more than one item (for functions that release the GIL)."""
    if threads <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(min(threads, len(items))) as pool:
        return list(pool.map(function, items))


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


def _runs(n: int, n_jobs: int | None) -> list[tuple[int, int]]:
    """``n`` chunks cut into about ``effective_n_jobs(n_jobs)`` contiguous runs
    (one run for one chunk or one job)."""
    n_runs = min(n, effective_n_jobs(n_jobs)) if n > 1 else 1
    bounds = [n * r // n_runs for r in range(n_runs + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _tasks(rows: tuple, chunks: Sequence[slice], n_jobs: int | None):
    """Per run of chunks: ``(first chunk, chunks, rows)``, with ``rows`` (the
    per-example arrays, or None) cut to the run's examples and the chunks made
    relative to them, so that a task gets only its own examples. A single
    run keeps the arrays whole (no copy of a sparse matrix)."""
    runs = _runs(len(chunks), n_jobs)
    if len(runs) == 1:
        yield 0, list(chunks), rows
        return
    for a, b in runs:
        start, stop = chunks[a].start, chunks[b - 1].stop
        yield (
            a,
            [slice(c.start - start, c.stop - start) for c in chunks[a:b]],
            tuple(None if r is None else r[start:stop] for r in rows),
        )


def _apply(function, chunk, n_rows, arguments):
    rows, shared = arguments[:n_rows], arguments[n_rows:]
    return function(*(None if r is None else r[chunk] for r in rows), *shared)


# The arrays are positional arguments of a task, not inside a tuple: joblib's
# Dask backend scatters such (large) arguments instead of putting them into
# the task graph.
def _map_run(function, chunks, n_rows, *arguments):
    return [_apply(function, chunk, n_rows, arguments) for chunk in chunks]


def _sum_run(function, chunks, first, n, n_rows, *arguments):
    """The tree over ``n`` chunks folded over this run's ``chunks`` (chunk
    ``first`` on): the (node, partial sum) pairs the run could complete."""
    return _fold(
        [],
        (
            ((first + i, first + i + 1), _apply(function, chunk, n_rows, arguments))
            for i, chunk in enumerate(chunks)
        ),
        n,
    )


def parallel_chunks(
    function: Callable[..., Any],
    rows: tuple,
    shared: tuple,
    chunks: Sequence[slice],
    *,
    n_jobs: int | None,
) -> list:
    """``function(*(r[chunk] for r in rows), *shared)`` for each chunk, in order.

    ``chunks`` (contiguous slices, one pass over the examples in
    ``working_memory``-sized pieces) are cut into about ``effective_n_jobs``
    runs, one task each; a task gets the rows of ``rows`` (arrays indexed by
    example; None stays None) its run covers and ``shared`` (the other
    arguments) once. One job, or one chunk: a plain loop here.
    """
    parts = parallel_map(
        _map_run,
        (
            (function, c, len(rows), *r, *shared)
            for _, c, r in _tasks(rows, chunks, n_jobs)
        ),
        n_jobs=n_jobs,
    )
    return [result for part in parts for result in part]


def parallel_sum(
    function: Callable[..., Any],
    rows: tuple,
    shared: tuple,
    chunks: Sequence[slice],
    *,
    n_jobs: int | None,
) -> Any:
    """The sum of :func:`parallel_chunks`'s results, each task returning its
    partial sums, added in the order of the module docstring: the result does
    not depend on ``n_jobs``."""
    n = len(chunks)
    if n == 0:
        raise ValueError("parallel_sum needs at least one chunk.")
    stack = []
    for part in parallel_map(
        _sum_run,
        (
            (function, c, a, n, len(rows), *r, *shared)
            for a, c, r in _tasks(rows, chunks, n_jobs)
        ),
        n_jobs=n_jobs,
    ):
        _fold(stack, part, n)
    ((_, total),) = stack
    return total


def transposed(A: np.ndarray, block: int = 1024) -> np.ndarray:
    """``A.T`` as a C-contiguous copy, in blocks of ``block`` rows (numpy's
    own copy of a transposed wide array strides through memory: 5 times
    slower on a 100,000 x 447 array)."""
    out = np.empty((A.shape[1], A.shape[0]), dtype=A.dtype)
    for start in range(0, A.shape[0], block):
        out[:, start : start + block] = A[start : start + block].T
    return out


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


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_SKLEARN_DIR = os.path.dirname(os.path.abspath(sklearn.__file__))


def caller_stacklevel() -> int:
    """The ``stacklevel`` at which a warning issued by the function calling
    this one points at the user's code: the first frame outside skrelatif and
    scikit-learn (whose ``_fit_context`` wraps ``fit``)."""
    frame, level = sys._getframe(1), 1
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith((_PACKAGE_DIR, _SKLEARN_DIR)):
            return level
        frame, level = frame.f_back, level + 1
    return level

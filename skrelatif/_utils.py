"""Chunking under scikit-learn's ``working_memory`` and joblib dispatch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
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
    Dask cluster included); with one job everything runs in this process.
    """
    parallel = Parallel(n_jobs=n_jobs)
    if getattr(parallel._backend, "supports_return_generator", False):
        parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    # else (e.g. the Dask backend of joblib < 1.5): a list, returned whole
    return iter(parallel(delayed(function)(*args) for args in arguments))


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

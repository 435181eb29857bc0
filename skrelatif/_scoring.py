"""Streaming score computation and top-k selection over training chunks.

Scores are ``influence.cross(...) * influence.train_scale_`` (see
:mod:`skrelatif._influence`). Test points are processed in batches and
training examples in chunks sized by scikit-learn's ``working_memory``; the
chunks of one test batch are dispatched with joblib. ``explain`` keeps only a
running top-k per chunk, so the full (n_test, n_train) matrix never exists.
"""

from __future__ import annotations

import functools
import time

import numpy as np
from sklearn.utils import gen_batches

from ._utils import blas_threads, chunk_size, chunk_slices, log, parallel_map


def _scores_chunk(cross, test_state, payload, scale):
    return cross(test_state, *payload) * scale


def best_k(
    scores: np.ndarray, index: np.ndarray, k: int, *, largest: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest (or smallest) ``scores`` per row, in that order, ties
    to the smaller index.

    ``index`` gives the training index of each column: increasing, of shape
    (n_columns,), or one row of indices per score row (n_rows, n_columns).
    Returns (indices, scores), each of shape (n_rows, min(k, n_columns)).
    """
    n_rows, n_cols = scores.shape
    k = min(k, n_cols)
    if k < n_cols:
        if largest:
            chosen = np.argpartition(scores, n_cols - k, axis=1)[:, n_cols - k :]
            kth = np.take_along_axis(scores, chosen, axis=1).min(axis=1)
            tied = np.count_nonzero(scores >= kth[:, None], axis=1) > k
        else:
            chosen = np.argpartition(scores, k - 1, axis=1)[:, :k]
            kth = np.take_along_axis(scores, chosen, axis=1).max(axis=1)
            tied = np.count_nonzero(scores <= kth[:, None], axis=1) > k
        # Rows where the k-th value is tied with an unchosen column: take the
        # smallest indices among the ties (a stable sort; rare outside SVMs).
        if tied.any():
            key = -scores[tied] if largest else scores[tied]
            chosen[tied] = np.argsort(key, axis=1, kind="stable")[:, :k]
    else:
        chosen = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    selected = np.take_along_axis(scores, chosen, axis=1)
    if index.ndim == 2:
        return _sorted(np.take_along_axis(index, chosen, axis=1), selected, k, largest)
    return _sorted(index[chosen], selected, k, largest)


def best_k_beyond(
    scores: np.ndarray,
    index: np.ndarray,
    k: int,
    bound: np.ndarray | None,
    *,
    largest: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`best_k` among the scores strictly beyond a per-row ``bound``.

    ``bound`` is the k-th best score of each row among training examples with
    smaller indices (None: nothing known), so an entry that does not beat it
    can never enter the top k (a tie goes to the smaller index). One pass
    over the block finds the entries that do; only those are partitioned,
    compacted to the left of a narrow block padded with -inf (+inf) and the
    index -1, which a merge with the k known entries never keeps.
    """
    n_rows, n_cols = scores.shape
    if bound is None:
        return best_k(scores, index, k, largest=largest)
    beyond = scores > bound[:, None] if largest else scores < bound[:, None]
    counts = np.count_nonzero(beyond, axis=1)
    width = int(counts.max()) if n_rows else 0
    if 4 * width >= n_cols:  # most entries qualify: partition the block itself
        return best_k(scores, index, k, largest=largest)
    rows, cols = np.nonzero(beyond)  # row-major: columns increase within a row
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    pad = -np.inf if largest else np.inf
    narrow = np.full((n_rows, max(width, 1)), pad, dtype=scores.dtype)
    narrow_index = np.full(narrow.shape, -1, dtype=np.intp)
    narrow[rows, slot] = scores[rows, cols]
    narrow_index[rows, slot] = index[cols]
    return best_k(narrow, narrow_index, k, largest=largest)


def _sorted(indices, scores, k, largest=True):
    order = np.lexsort((indices, -scores if largest else scores), axis=-1)[:, :k]
    return np.take_along_axis(indices, order, 1), np.take_along_axis(scores, order, 1)


def _top_k_chunk(cross, test_state, payload, scale, index, k, bounds):
    scores = cross(test_state, *payload)
    scores *= scale.astype(scores.dtype, copy=False)  # float32 stays float32
    top_bound, bottom_bound = bounds
    return (
        best_k_beyond(scores, index, k, top_bound),
        best_k_beyond(scores, index, k, bottom_bound, largest=False),
    )


def _top_k_tasks(influence, state, chunks, k, best):
    """Arguments of :func:`_top_k_chunk` per chunk, made as it is dispatched:
    each chunk is handed the k-th best scores of the chunks merged so far
    (chunks come in increasing index order), so it only partitions the
    entries that can still enter the top k."""
    for rows in chunks:
        yield (
            influence.cross,
            state,
            influence.train_chunk(_as_rows(rows)),
            influence.train_scale_[rows],
            rows,
            k,
            (_kth(best["top"], k), _kth(best["bottom"], k)),
        )


def _kth(best, k):
    """The k-th best score of each row of a running top-k (None before k)."""
    if best is None or best[1].shape[1] < k:
        return None
    return best[1][:, k - 1].copy()


def _test_batches(influence, n_test: int) -> list[slice]:
    return chunk_slices(n_test, influence.test_row_bytes())


#: Temporary bytes per (test, train) pair of the top-k selection, one direction
#: at a time: argpartition's int64 indices and a boolean mask (with margin).
TOP_K_BYTES_PER_PAIR = 8 + 1 + 8


def _train_chunks(influence, n_test_batch: int, extra: int = 0) -> list[np.ndarray]:
    """Chunks of candidate training indices for one test batch; each pair
    needs ``influence.cross_bytes_per_pair() + extra`` bytes."""
    candidates = influence.candidates_
    if candidates is None:
        candidates = np.arange(influence.n_train_)
    pair_bytes = influence.cross_bytes_per_pair() + extra
    size = chunk_size(pair_bytes * n_test_batch, len(candidates))
    return [candidates[rows] for rows in gen_batches(len(candidates), size)]


def _rows(y_encoded, rows):
    """``y_encoded[rows]``, or None (a regressor's predictions are explained)."""
    return None if y_encoded is None else y_encoded[rows]


def _as_rows(index: np.ndarray) -> np.ndarray | slice:
    """A contiguous index array as a slice (cheaper row selection)."""
    if len(index) and index[-1] - index[0] + 1 == len(index):
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def _blas_threads_by_size(function):
    """Run ``function(influence, X, ...)`` under :func:`~._utils.blas_threads`
    for its ``2 n_test n_train P`` flops."""

    @functools.wraps(function)
    def wrapper(influence, X, *args, **kwargs):
        width = max(influence.n_params_, X.shape[1])
        with blas_threads(2 * X.shape[0] * influence.n_train_ * width):
            return function(influence, X, *args, **kwargs)

    return wrapper


@_blas_threads_by_size
def score_matrix(influence, X, y_encoded, *, n_jobs=None) -> np.ndarray:
    """The dense (n_test, n_train) score matrix."""
    n_test = X.shape[0]
    scores = np.zeros((n_test, influence.n_train_))
    for tests in _test_batches(influence, n_test):
        state = influence.prepare_test(X[tests], _rows(y_encoded, tests))
        chunks = _train_chunks(influence, tests.stop - tests.start)
        blocks = parallel_map(
            _scores_chunk,
            (
                (
                    influence.cross,
                    state,
                    influence.train_chunk(_as_rows(rows)),
                    influence.train_scale_[rows],
                )
                for rows in chunks
            ),
            n_jobs=n_jobs,
        )
        for rows, block in zip(chunks, blocks):
            scores[tests, _as_rows(rows)] = block
    return scores


def _merge(best, new, k, largest=True):
    """Running top-k: merge two (indices, scores) candidate sets."""
    if best is None:
        return new
    return _sorted(
        np.hstack([best[0], new[0]]), np.hstack([best[1], new[1]]), k, largest
    )


@_blas_threads_by_size
def top_k(influence, X, y_encoded, k, *, n_jobs=None, verbose=0):
    """Top-k proponents and opponents per test point, streamed over chunks.

    Memory: one test batch's state plus, per chunk in flight, one
    (n_test_batch, chunk) block; the running top-k is merged as chunks arrive.
    """
    n_test = X.shape[0]
    parts = []
    start = time.perf_counter()
    for tests in _test_batches(influence, n_test):
        state = influence.prepare_test(X[tests], _rows(y_encoded, tests))
        chunks = _train_chunks(
            influence, tests.stop - tests.start, TOP_K_BYTES_PER_PAIR
        )
        best = {"top": None, "bottom": None}  # running top-k, merged in order
        for top_part, bottom_part in parallel_map(
            _top_k_chunk, _top_k_tasks(influence, state, chunks, k, best), n_jobs=n_jobs
        ):
            best["top"] = _merge(best["top"], top_part, k)
            best["bottom"] = _merge(best["bottom"], bottom_part, k, largest=False)
        top, bottom = best["top"], best["bottom"]
        parts.append((*top, *bottom))
        log(
            verbose,
            1,
            f"explained {tests.stop} of {n_test} test points against "
            f"{len(chunks)} training chunks ({time.perf_counter() - start:.1f} s)",
        )
    proponents, proponent_scores, opponents, opponent_scores = (
        np.vstack(a) for a in zip(*parts)
    )
    return (
        proponents,
        proponent_scores.astype(np.float64, copy=False),
        opponents,
        opponent_scores.astype(np.float64, copy=False),
    )

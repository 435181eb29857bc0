"""Running the retrainings of :mod:`skrelatif.validation`: reuse and progress.

Retraining is what validation costs; three things make it cheaper to live with.

**Reuse.** The outputs of every retraining (a few floats per test point, never
the retrained model) are kept in a bounded in-process cache, :data:`REFITS`,
keyed by :func:`joblib.hash` of everything the output depends on: the fitted
estimator (its hyper-parameters and fitted state), the training data, target
and ``sample_weight``, the removed indices, the test points and the tracked
output (the test loss at given labels, or the prediction), the kind of
retraining and its tolerance. Asking
:func:`~skrelatif.validation.linear_datamodeling_score` again with the same
``subsets`` for another explainer method, or
:func:`~skrelatif.validation.removal_curve` for another method (its reference
refit and random baseline are the same), repeats no retraining. A key can
only match when all of these are equal, so a reuse is never stale; the cache
is bounded (least recently used entries are dropped beyond
:data:`MAX_BYTES`), lives in the calling process only (joblib workers never
see it) and is bypassed with ``cache=False``.

This is a choice against the two scikit-learn patterns it resembles:
``Pipeline(memory=joblib.Memory(...))`` caches fitted transformers on disk
and must be configured by the user, and passing an earlier result back in
(an explicit ``reuse=``) would only cover exactly repeated calls. Outputs are
small and cheap to key, so reuse can be on by default; hashing the training
data costs one pass over it per call.

**Progress.** With ``verbose > 0`` a one-line bar on standard error counts the
finished retrainings (joblib's ``return_as="generator_unordered"``; with a
backend that cannot return a generator the count appears when all are done).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TextIO

import joblib
import numpy as np
from sklearn.utils.parallel import Parallel, delayed

#: Bytes of retraining outputs the cache keeps at most.
MAX_BYTES = 64 * 2**20


def _nbytes(value: Any) -> int:
    """Approximate size of a cached value (arrays, floats and tuples of them)."""
    if isinstance(value, np.ndarray):
        return value.nbytes + 112
    if isinstance(value, (tuple, list)):
        return 56 + sum(_nbytes(v) for v in value)
    return 32


class RefitCache:
    """A bounded, thread-safe, least-recently-used map of retraining outputs.

    Parameters
    ----------
    max_bytes : int
        Entries are dropped, least recently used first, beyond this size.

    Examples
    --------
    >>> cache = RefitCache(max_bytes=1000)
    >>> cache.put("a", 1.0)
    >>> cache.get_many(["a", "b"])
    {0: 1.0}
    """

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def get_many(self, keys: Sequence[Hashable]) -> dict[int, Any]:
        """``{position: value}`` for the keys held (marked as recently used)."""
        found = {}
        with self._lock:
            for position, key in enumerate(keys):
                if key in self._entries:
                    self._entries.move_to_end(key)
                    found[position] = self._entries[key][0]
        return found

    def put(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` under ``key`` (dropping old entries beyond the bound)."""
        size = _nbytes(value)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                self._bytes -= self._entries.pop(key)[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped


#: The retraining outputs of this process (see the module docstring).
REFITS = RefitCache()


def fingerprint(*parts: Any) -> str:
    """:func:`joblib.hash` of ``parts`` (arrays by content, estimators by their
    pickled state)."""
    return joblib.hash(parts)


class Progress:
    """A one-line count of finished retrainings, redrawn in place on ``stream``.

    Parameters
    ----------
    total : int
        Retrainings in all (reused ones included).
    label : str
        What runs (the public function's name).
    verbose : int
        0: draw nothing.
    reused : int, default=0
        Retrainings taken from the cache (counted as done from the start).
    stream : file-like, default=None
        Where to draw; None: ``sys.stderr`` at drawing time.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> progress = Progress(4, "removal_curve", verbose=1, reused=2, stream=out)
    >>> progress.advance(2)
    >>> progress.close()
    >>> out.getvalue().split("\\r")[-1].split(" in ")[0]
    'removal_curve: [##############################] 4/4 retrainings (2 reused)'
    """

    width = 30

    def __init__(
        self,
        total: int,
        label: str,
        *,
        verbose: int,
        reused: int = 0,
        stream: TextIO | None = None,
    ) -> None:
        self.total, self.label, self.enabled = total, label, verbose > 0
        self.reused = self.done = reused
        self.stream = stream
        self.start = time.perf_counter()
        self._percent, self._drawn = -1, -1
        if self.enabled:
            self._draw()

    def _draw(self) -> None:
        elapsed = time.perf_counter() - self.start
        filled = self.width * self.done // max(self.total, 1)
        text = (
            f"{self.label}: [{'#' * filled}{' ' * (self.width - filled)}] "
            f"{self.done}/{self.total} retrainings"
        )
        if self.reused:
            text += f" ({self.reused} reused)"
        text += f" in {elapsed:.1f} s"
        computed = self.done - self.reused
        if 0 < computed and self.done < self.total:
            left = elapsed / computed * (self.total - self.done)
            text += f", about {left:.0f} s left"
        stream = sys.stderr if self.stream is None else self.stream
        stream.write("\r" + text.ljust(79))
        stream.flush()
        self._drawn = self.done

    def advance(self, count: int = 1) -> None:
        """Count ``count`` more retrainings as finished (redrawn at most once
        per percent)."""
        self.done += count
        percent = 100 * self.done // max(self.total, 1)
        if self.enabled and (percent != self._percent or self.done == self.total):
            self._percent = percent
            self._draw()

    def close(self) -> None:
        """End the line (the final count stays visible)."""
        if self.enabled:
            if self._drawn != self.done:
                self._draw()
            stream = sys.stderr if self.stream is None else self.stream
            stream.write("\n")
            stream.flush()


def _indexed(position: int, function: Callable, arguments: tuple) -> tuple[int, Any]:
    return position, function(*arguments)


def run(
    function: Callable,
    arguments: Sequence[tuple],
    *,
    n_jobs: int | None,
    progress: Progress,
    counts: Sequence[int] | None = None,
) -> list:
    """``function(*args)`` for each tuple of ``arguments`` in one joblib
    ``Parallel``, in order; ``progress`` advances by ``counts[i]`` (default 1)
    as task i finishes."""
    counts = [1] * len(arguments) if counts is None else counts
    results: list = [None] * len(arguments)
    if not arguments:
        return results
    parallel = None
    if progress.enabled:
        try:
            parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        except ValueError:  # a backend that cannot return a generator
            parallel = None
    if parallel is None:
        results = Parallel(n_jobs=n_jobs)(delayed(function)(*a) for a in arguments)
        progress.advance(sum(counts))
        return list(results)
    for position, result in parallel(
        delayed(_indexed)(i, function, a) for i, a in enumerate(arguments)
    ):
        results[position] = result
        progress.advance(counts[position])
    return results


def run_tasks(
    function: Callable,
    n_tasks: int,
    arguments: Callable[[int], tuple],
    *,
    keys: Sequence[Hashable] | None,
    n_jobs: int | None,
    verbose: int,
    label: str,
    found: dict[int, Any] | None = None,
    counts: Sequence[int] | None = None,
) -> list:
    """``function(*arguments(i))`` for the tasks ``i < n_tasks``, with a
    :class:`Progress` line; with ``keys``, those :data:`REFITS` holds are
    taken from it (``found``: the hits of an earlier
    :meth:`RefitCache.get_many` on ``keys``) and the others stored.
    ``counts[i]``: retrainings task i stands for (default 1)."""
    counts = [1] * n_tasks if counts is None else list(counts)
    if found is None:
        found = {} if keys is None else REFITS.get_many(keys)
    missing = [i for i in range(n_tasks) if i not in found]
    progress = Progress(
        sum(counts),
        label,
        verbose=verbose,
        reused=sum(counts[i] for i in found),
    )
    computed = run(
        function,
        [arguments(i) for i in missing],
        n_jobs=n_jobs,
        progress=progress,
        counts=[counts[i] for i in missing],
    )
    progress.close()
    results = [found.get(i) for i in range(n_tasks)]
    for i, value in zip(missing, computed):
        results[i] = value
        if keys is not None:
            REFITS.put(keys[i], value)
    return results

"""The result of an explanation: :class:`Explanation`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The columns of :meth:`Explanation.to_records` and :meth:`Explanation.to_frame`.
COLUMNS = (
    "test_index",
    "target",
    "kind",
    "rank",
    "train_index",
    "train_target",
    "score",
)


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(repr=False)
class Explanation:
    """Top-k training examples for each explained test point.

    Attributes
    ----------
    proponents : ndarray of shape (n_test, k)
        Training indices with the largest scores (they support ``target``),
        strongest first; ties go to the smaller index.
    proponent_scores : ndarray of shape (n_test, k)
    opponents : ndarray of shape (n_test, k)
        Training indices with the most negative scores, most negative first.
        Proponents and opponents are the top and bottom ``k`` whatever their
        sign: when fewer than ``k`` scores are positive (or negative), the rest
        are the next ones in order; check the sign of the scores.
    opponent_scores : ndarray of shape (n_test, k)
    target : ndarray of shape (n_test,)
        The labels explained (the model's predictions unless given).
    method : str
        The scoring method.
    train_target : ndarray of shape (n_train,) or None
        The training labels, to read off ``train_target[proponents]``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skrelatif import InfluenceExplainer
    >>> X, y = load_iris(return_X_y=True)
    >>> model = LogisticRegression(max_iter=1000, tol=1e-8).fit(X, y)
    >>> e = InfluenceExplainer(model).fit(X, y).explain(X[:2], k=3)
    >>> e.proponents.shape
    (2, 3)
    >>> bool((e.train_target[e.proponents] == e.target[:, None]).all())
    True
    """

    proponents: np.ndarray
    proponent_scores: np.ndarray
    opponents: np.ndarray
    opponent_scores: np.ndarray
    target: np.ndarray
    method: str
    train_target: np.ndarray | None = field(default=None)

    def __repr__(self) -> str:
        n_test, k = self.proponents.shape
        return f"Explanation(method={self.method!r}, n_test={n_test}, k={k})"

    def __len__(self) -> int:
        return len(self.target)

    @classmethod
    def concatenate(cls, parts: Sequence[Explanation]) -> Explanation:
        """One explanation of the test points of ``parts``, in order.

        The parts must come from the same explainer (same ``method``, ``k``
        and training set), e.g. :meth:`~skrelatif.InfluenceExplainer.explain`
        called on consecutive batches of test points.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.linear_model import LogisticRegression
        >>> from skrelatif import Explanation, InfluenceExplainer
        >>> X, y = load_iris(return_X_y=True)
        >>> model = LogisticRegression(max_iter=1000, tol=1e-8).fit(X, y)
        >>> ex = InfluenceExplainer(model).fit(X, y)
        >>> e = Explanation.concatenate([ex.explain(X[:2]), ex.explain(X[2:5])])
        >>> len(e), e.proponents.shape
        (5, (5, 5))
        """
        parts = list(parts)
        if not parts:
            raise ValueError("Explanation.concatenate needs at least one part.")
        if len({(p.method, p.proponents.shape[1]) for p in parts}) > 1:
            raise ValueError(
                "Explanation.concatenate needs parts with the same method and k; got "
                f"{sorted({(p.method, p.proponents.shape[1]) for p in parts})}."
            )
        return cls(
            proponents=np.vstack([p.proponents for p in parts]),
            proponent_scores=np.vstack([p.proponent_scores for p in parts]),
            opponents=np.vstack([p.opponents for p in parts]),
            opponent_scores=np.vstack([p.opponent_scores for p in parts]),
            target=np.concatenate([p.target for p in parts]),
            method=parts[0].method,
            train_target=parts[0].train_target,
        )

    def to_records(self) -> list[dict]:
        """One dict per (test point, kind, rank), proponents before opponents.

        Keys are :data:`COLUMNS` (``train_target`` is None when unknown);
        values are Python scalars, ready for :mod:`csv` or :mod:`json`. Needs
        no optional dependency (see :meth:`to_frame` for a DataFrame).
        """
        records = []
        n_test, k = self.proponents.shape
        for t in range(n_test):
            target = _python(self.target[t])
            for kind, index, scores in (
                ("proponent", self.proponents, self.proponent_scores),
                ("opponent", self.opponents, self.opponent_scores),
            ):
                for rank in range(k):
                    i = int(index[t, rank])
                    train_target = (
                        None
                        if self.train_target is None
                        else _python(self.train_target[i])
                    )
                    values = (t, target, kind, rank + 1, i, train_target)
                    records.append(
                        dict(zip(COLUMNS, (*values, float(scores[t, rank]))))
                    )
        return records

    def to_frame(self) -> Any:
        """One row per (test point, kind, rank) as a :class:`pandas.DataFrame`.

        Columns: ``test_index``, ``target``, ``kind`` ("proponent" or
        "opponent"), ``rank`` (1 = strongest), ``train_index``, ``score`` and,
        when known, ``train_target``.
        """
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - exercised without pandas
            raise ImportError(
                "Explanation.to_frame requires pandas: pip install 'skrelatif[pandas]'"
            ) from exc
        frames = []
        for kind, index, score in (
            ("proponent", self.proponents, self.proponent_scores),
            ("opponent", self.opponents, self.opponent_scores),
        ):
            n_test, k = index.shape
            frame = {
                "test_index": np.repeat(np.arange(n_test), k),
                "target": np.repeat(self.target, k),
                "kind": kind,
                "rank": np.tile(np.arange(1, k + 1), n_test),
                "train_index": index.ravel(),
                "score": score.ravel(),
            }
            if self.train_target is not None:
                frame["train_target"] = self.train_target[index.ravel()]
            frames.append(pd.DataFrame(frame))
        return (
            pd.concat(frames, ignore_index=True)
            .sort_values(["test_index", "kind", "rank"], ascending=[True, False, True])
            .reset_index(drop=True)
        )

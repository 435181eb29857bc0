"""The errors skrelatif raises for input it cannot explain, with the facts a
caller (such as the command line) needs as attributes instead of in the
message text. Each is a ``ValueError``, so ``except ValueError`` still
catches them."""

from __future__ import annotations

__all__ = ["FeatureCountError", "SingularCurvatureError", "TooFewCandidatesError"]


class SingularCurvatureError(ValueError):
    """The curvature matrix (plus damping) cannot be inverted.

    It is not positive definite, so its inverse is not defined.

    Parameters
    ----------
    rcond : float, default=0.0
        See Attributes.
    indefinite : bool, default=False
        See Attributes.
    advice : str, default=""
        See Attributes.

    Attributes
    ----------
    rcond : float
        LAPACK's reciprocal condition number estimate (0 when the
        factorisation failed or an iterative solver met negative curvature).
    indefinite : bool
        True when a direction of negative curvature was seen (the matrix is
        indefinite, not merely singular).
    advice : str
        What to do, in the model family's own terms.
    """

    def __init__(
        self, rcond: float = 0.0, *, indefinite: bool = False, advice: str = ""
    ) -> None:
        self.rcond, self.indefinite, self.advice = rcond, indefinite, advice
        if indefinite:
            what = "indefinite (it has a direction of negative curvature)"
        elif rcond > 0:
            what = (
                f"singular, or numerically so (reciprocal condition number {rcond:.1e})"
            )
        else:  # the factorisation stopped at a non-positive pivot
            what = "not positive definite (indefinite, or singular)"
        super().__init__(
            f"The curvature matrix of the training objective is {what}, so its "
            "inverse is not defined. "
            + (advice or "Pass damping > 0 (for example damping=1e-3).")
        )

    def with_advice(self, advice: str) -> SingularCurvatureError:
        """The same error with the family's advice.

        Parameters
        ----------
        advice : str
            What to do, in the model family's own terms.

        Returns
        -------
        error : SingularCurvatureError
            A new error with the same facts.
        """
        return SingularCurvatureError(
            self.rcond, indefinite=self.indefinite, advice=advice
        )


class TooFewCandidatesError(ValueError):
    """``k`` (or a size) is more than the training examples that can score.

    Parameters
    ----------
    k : int
        See Attributes.
    n_candidates : int
        See Attributes.
    what : str
        See Attributes.

    Attributes
    ----------
    k : int
        What was asked for.
    n_candidates : int
        How many training examples can score.
    what : str
        What they are (``"training examples"``, ``"support vectors"``).
    """

    def __init__(self, k: int, n_candidates: int, what: str) -> None:
        self.k, self.n_candidates, self.what = k, n_candidates, what
        super().__init__(
            f"k must be an integer between 1 and the number of {what} that can be "
            f"scored ({n_candidates}); got k={k!r}."
        )


class FeatureCountError(ValueError):
    """X has another number of features than the model was fitted on.

    Parameters
    ----------
    got, expected : int
        See Attributes.
    who : str
        The estimator that expects ``expected`` features (the message).

    Attributes
    ----------
    got, expected : int
        The features of X and those the model expects.
    """

    def __init__(self, got: int, expected: int, who: str) -> None:
        self.got, self.expected = got, expected
        super().__init__(
            f"X has {got} features, but {who} is expecting {expected} features as "
            "input."
        )

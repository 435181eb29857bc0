"""The command line's one error type, and one-line messages from exceptions."""

from __future__ import annotations


class CommandLineError(Exception):
    """Bad input: reported as one line on stderr with exit status 2."""


def one_line(exc: BaseException | str) -> str:
    """The message of ``exc`` on one line (its type name if it has none)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def described(exc: BaseException) -> str:
    """``KeyError: 110``: for errors whose message alone says little."""
    return f"{type(exc).__name__}: {one_line(exc)}"

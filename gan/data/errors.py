"""The one error type of :mod:`fwp.gan.data`, and the "did you mean" hint of its messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["DataError", "did_you_mean"]


class DataError(ValueError):
    """A data source or argument that cannot be used; the message says what to do about it."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` naming the choice closest to ``word`` (a typo, a plural), or ``""``
    when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""

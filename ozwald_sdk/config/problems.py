"""Validation errors raised by the config model, in the words diagnostics print.

Every check in the model raises one of these instead of a bare ValueError, so that the
diagnostic reads "expected X, found Y" (the "found" part is added from the input) and
can carry a "did you mean" suggestion.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Final

from pydantic_core import PydanticCustomError

ERROR_TYPE: Final = "ozwald"


def expected(what: str, *, suggestion: str | None = None) -> PydanticCustomError:
    """The input is not `what`; the diagnostic adds what was found."""
    return PydanticCustomError(
        ERROR_TYPE, "expected {expected}", {"expected": what, "suggestion": suggestion}
    )


def refused(message: str, *, suggestion: str | None = None) -> PydanticCustomError:
    """The input has the right shape but breaks a rule; `message` says which."""
    return PydanticCustomError(ERROR_TYPE, message, {"suggestion": suggestion})


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like `word`, when one is close enough to be a likely typo."""
    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return matches[0] if matches else None

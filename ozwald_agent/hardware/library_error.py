"""The one error every vendor library adapter raises, whatever the library threw."""

from __future__ import annotations

# Codes for failures that happen before the library itself can answer; every other code
# is the library's own name for its error (e.g. "NVML_ERROR_DRIVER_NOT_LOADED").
IMPORT_MODULE_MISSING = "IMPORT_MODULE_MISSING"
IMPORT_FAILED = "IMPORT_FAILED"
# A replayed snapshot holds no answer for this call.
NOT_RECORDED = "NOT_RECORDED"


class LibraryCallError(Exception):
    """A GPU library call failed; `code` names the failure, `message` is the library's text."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message

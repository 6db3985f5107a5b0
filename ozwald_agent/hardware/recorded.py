"""One library call's recorded answer in a hardware snapshot, and how to read and write it.

In JSON an answer is {"value": V} or {"error": {"code": C, "message": M}}, where C is the
library's own error name (or one of library_error's codes) and M its text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from ozwald_agent.hardware.library_answers import ProcessMemory
from ozwald_agent.hardware.library_error import NOT_RECORDED, LibraryCallError

T = TypeVar("T")
Parse = Callable[[object, str], T]


class Recorded(Generic[T]):
    """A replayable answer: `get()` returns the value or raises the recorded error."""

    def __init__(self, answer: T | LibraryCallError) -> None:
        self._answer = answer

    def get(self) -> T:
        if isinstance(self._answer, LibraryCallError):
            # A fresh exception each time, so tracebacks do not pile up on one object.
            raise LibraryCallError(self._answer.code, self._answer.message)
        return self._answer


def capture(call: Callable[[], T], encode: Callable[[T], object]) -> dict[str, object]:
    """Runs a real library call and records its answer as JSON-ready data."""
    try:
        return {"value": encode(call())}
    except LibraryCallError as e:
        return {"error": {"code": e.code, "message": e.message}}


def decode(section: Mapping[str, object], call: str, parse: Parse[T], where: str) -> Recorded[T]:
    """The answer recorded for `call` in `section`; a missing one fails as NOT_RECORDED."""
    path = f"{where}.{call}"
    if call not in section:
        return Recorded(LibraryCallError(NOT_RECORDED, f"the snapshot has no answer for {path}"))
    answer = section[call]
    if isinstance(answer, dict) and set(answer) == {"value"}:
        return Recorded(parse(answer["value"], f"{path}.value"))
    if isinstance(answer, dict) and set(answer) == {"error"}:
        error = answer["error"]
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            return Recorded(LibraryCallError(error["code"], str(error.get("message", ""))))
    raise ValueError(f'{path}: expected {{"value": ...}} or {{"error": {{"code": ...}}}}')


def check_keys(section: Mapping[str, object], allowed: set[str], where: str) -> None:
    """Refuses keys the format does not know, so a misspelt call is not silently unanswered."""
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known: {sorted(allowed)}")


def as_mapping(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{where}: expected an object")
    return value


def as_list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list")
    return value


def as_none(value: object, where: str) -> None:
    if value is not None:
        raise ValueError(f"{where}: expected null")


def as_str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a string")
    return value


def as_int(value: object, where: str) -> int:
    # bool is an int in Python, but true is no answer to a numeric call.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{where}: expected an integer")
    return value


def as_int_pair(value: object, where: str) -> tuple[int, int]:
    items = as_list(value, where)
    if len(items) != 2:
        raise ValueError(f"{where}: expected two integers")
    return as_int(items[0], f"{where}[0]"), as_int(items[1], f"{where}[1]")


def parse_processes(value: object, where: str) -> list[ProcessMemory]:
    processes = []
    for i, item in enumerate(as_list(value, where)):
        fields = as_mapping(item, f"{where}[{i}]")
        check_keys(fields, {"pid", "used_bytes"}, f"{where}[{i}]")
        used = fields.get("used_bytes")
        processes.append(
            ProcessMemory(
                pid=as_int(fields.get("pid"), f"{where}[{i}].pid"),
                used_bytes=None if used is None else as_int(used, f"{where}[{i}].used_bytes"),
            )
        )
    return processes


def encode_processes(processes: list[ProcessMemory]) -> object:
    return [dataclasses.asdict(p) for p in processes]


def count_of(answer: dict[str, object]) -> int:
    """The device count in a captured answer; 0 when the count itself failed."""
    value = answer.get("value")
    return value if isinstance(value, int) else 0

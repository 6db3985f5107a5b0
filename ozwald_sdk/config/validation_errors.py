"""pydantic's ValidationError, in words: each error located, with expected vs found.

pydantic reports where an error is as a `loc` through the model (which may include
union member names and a "[key]" marker for dict keys); this module walks the loc
against the data to find the key path the user wrote, and against the model's types
to know which keys were allowed where one was unknown.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Sequence
from typing import Any, Final

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ozwald_sdk.config.diagnostics import Diagnostic, Path
from ozwald_sdk.config.model_service import ServiceOverride
from ozwald_sdk.config.names import PATTERN_RULES
from ozwald_sdk.config.problems import ERROR_TYPE, closest
from ozwald_sdk.config.source import SourceMap

_KEY_MARKER: Final = "[key]"
_SERVICE_ONLY: Final = frozenset({"persistent", "varieties", "profiles"})
_EXPECTED_BY_TYPE: Final[dict[str, str]] = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}


def diagnostics_from(
    error: ValidationError, data: Any, source: SourceMap, root: type[BaseModel]
) -> list[Diagnostic]:
    """One diagnostic per distinct place pydantic found wrong."""
    out: list[Diagnostic] = []
    seen: set[tuple[Path, bool]] = set()
    for detail in error.errors(include_url=False):
        path, on_key = _data_path(data, detail["loc"])
        if detail["type"] == "extra_forbidden":
            on_key = True
        if detail["type"] == "missing":
            path = (*path, str(detail["loc"][-1]))
        # A value that fits no member of a union is reported once per member; one is enough.
        if (path, on_key) in seen:
            continue
        seen.add((path, on_key))
        message, suggestion = _describe(detail, root)
        out.append(source.diagnostic(path, message, suggestion=suggestion, key=on_key))
    return out


def found(value: Any) -> str:
    """How a YAML value reads in "found ..." (text quoted, containers by kind)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f'"{shown}"' if "'" in shown else f"'{shown}'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return str(value)


def _data_path(data: Any, loc: Sequence[int | str]) -> tuple[Path, bool]:
    """The part of `loc` that names real keys and indices in `data`; and whether it ends
    on a mapping key rather than its value."""
    path: list[str | int] = []
    node = data
    on_key = False
    for part in loc:
        if part == _KEY_MARKER:
            on_key = True
        elif _has(node, part):
            path.append(part)
            node = node[part]
        # Anything else is a union member's or validator's name, or a missing key
        # (which the caller adds): not in the file.
    return tuple(path), on_key


def _has(node: Any, part: int | str) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _describe(detail: ErrorDetails, root: type[BaseModel]) -> tuple[str, str | None]:
    kind = detail["type"]
    ctx: dict[str, Any] = dict(detail.get("ctx") or {})
    value = detail["input"]
    loc = detail["loc"]
    if kind == ERROR_TYPE:
        suggestion = ctx.get("suggestion")
        if "expected" in ctx:
            return f"expected {ctx['expected']}, found {found(value)}", suggestion
        return detail["msg"], suggestion
    if kind == "missing":
        return f"required key '{loc[-1]}' is missing", None
    if kind == "extra_forbidden":
        return _unknown_key(str(loc[-1]), _allowed_keys(root, loc[:-1]))
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return (
            f"expected {ctx.get('expected')}, found {found(value)}",
            closest(str(value), choices) if isinstance(value, str) else None,
        )
    if kind == "union_tag_not_found":
        key = str(ctx.get("discriminator", "")).strip("'")
        tags = ", ".join(_tags(root, loc, key))
        return f"expected a '{key}' key ({tags}), found none", None
    if kind == "union_tag_invalid":
        tags = ctx.get("expected_tags", "")
        choices = re.findall(r"'([^']*)'", str(tags))
        return (
            f"expected type {tags}, found {found(ctx.get('tag'))}",
            closest(str(ctx.get("tag")), choices),
        )
    if kind == "string_pattern_mismatch":
        rule = PATTERN_RULES.get(str(ctx.get("pattern")), f"text matching {ctx.get('pattern')}")
        return f"expected {rule}, found {found(value)}", None
    return f"expected {_expected_words(kind, ctx, detail['msg'])}, found {found(value)}", None


def _expected_words(kind: str, ctx: dict[str, Any], fallback: str) -> str:
    if kind in _EXPECTED_BY_TYPE:
        return _EXPECTED_BY_TYPE[kind]
    if kind == "greater_than":
        return f"a number greater than {ctx['gt']}"
    if kind == "greater_than_equal":
        return f"a number of at least {ctx['ge']}"
    if kind == "less_than_equal":
        return f"a number of at most {ctx['le']}"
    if kind == "too_short":
        return f"at least {ctx['min_length']} item(s)"
    if kind == "literal_error":
        return str(ctx["expected"])
    # pydantic's own words, minus its "Input should be" preamble.
    return re.sub(r"^Input should be ", "", fallback)


def _unknown_key(key: str, allowed: list[str]) -> tuple[str, str | None]:
    if key in _SERVICE_ONLY and ServiceOverride.__name__ in allowed:
        return (
            f"'{key}' can be set only on the service itself, not in a variety or profile",
            None,
        )
    names = [name for name in allowed if name != ServiceOverride.__name__]
    suggestion = closest(key, names)
    message = f"unknown key '{key}'"
    if suggestion is None and names:
        message += f" (expected one of: {', '.join(names)})"
    return message, suggestion


def _allowed_keys(root: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys the model accepts at `loc`; empty when the walk loses its way.

    When that model is a ServiceOverride its class name is added, so the caller can
    say why a service-only key is refused there.
    """
    current: Any = root
    for part in loc:
        current = _step(_unwrap(current), part)
        if current is None:
            return []
    model = _unwrap(current)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    keys = list(model.model_fields)
    if issubclass(model, ServiceOverride):
        keys.append(ServiceOverride.__name__)
    return keys


def _tags(root: type[BaseModel], loc: Sequence[int | str], key: str) -> list[str]:
    """The values the discriminator `key` may take for the union at `loc`."""
    current: Any = root
    for part in loc:
        current = _step(_unwrap(current), part)
        if current is None:
            return []
    tags: list[str] = []
    for member in typing.get_args(_unwrap(current)):
        if (
            isinstance(member, type)
            and issubclass(member, BaseModel)
            and key in member.model_fields
        ):
            tags.extend(str(t) for t in typing.get_args(member.model_fields[key].annotation))
    return tags


def _step(current: Any, part: int | str) -> Any:
    if isinstance(current, type) and issubclass(current, BaseModel):
        field = current.model_fields.get(str(part))
        return field.annotation if field else None
    origin = typing.get_origin(current)
    args = typing.get_args(current)
    if origin is dict:
        return args[1]
    if origin in (list, tuple):
        return args[0]
    if origin in (typing.Union, types.UnionType):
        for candidate in args:
            member = _unwrap(candidate)
            if isinstance(member, type) and issubclass(member, BaseModel):
                tag = member.model_fields.get("type")
                if tag is not None and part in typing.get_args(tag.annotation):
                    return member
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and `| None` until a model, a container or a plain type is left."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            members = [m for m in typing.get_args(annotation) if m is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation

"""YAML text to plain data, remembering where every key and value sits in the file.

PyYAML's compose API keeps each node's start mark; the constructors that would turn
nodes into Python objects drop them, and silently keep the last of two equal keys. So
the document is composed, checked for repeated keys, and walked here: scalars are
built by PyYAML's safe constructor (YAML 1.1 types), mapping keys stay the text as
written (`no:` is the key "no", not False), and merge keys (`<<: *defaults`) work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from ozwald_sdk.config.diagnostics import Diagnostic, Path, format_path

_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
Position = tuple[int, int]


@dataclass
class SourceMap:
    """1-based (line, column) of every value and mapping key, by its path."""

    file: str
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)

    def has(self, path: Path) -> bool:
        return path in self.values

    def position(self, path: Path, *, key: bool = False) -> Position | None:
        """Where `path` is written; the nearest enclosing value's place when it is not."""
        return self._written(path, key=key)[1]

    def diagnostic(
        self, path: Path, message: str, *, suggestion: str | None = None, key: bool = False
    ) -> Diagnostic:
        """A diagnostic at `path` (at its key rather than its value when `key`).

        When `path` is not written as such (a key that is missing, a part of a short form
        like "models:/models"), the diagnostic names the nearest enclosing value instead.
        """
        written, position = self._written(path, key=key)
        line, column = position if position else (None, None)
        return Diagnostic(self.file, line, column, format_path(written), message, suggestion)

    def _written(self, path: Path, *, key: bool) -> tuple[Path, Position | None]:
        if key and path in self.keys:
            return path, self.keys[path]
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return path[:end], found
        return path, None


@dataclass
class Document:
    """A parsed file: its data (None when it could not be read), places, and problems."""

    data: Any
    source: SourceMap
    problems: list[Diagnostic]


def parse_yaml(text: str, file: str) -> Document:
    """Compose `text`; YAML syntax errors and repeated keys become diagnostics."""
    source = SourceMap(file)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None, source, [])
        walker = _Walker(loader, source)
        data = walker.build(node, ())
        return Document(data, source, walker.problems)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = " ".join(part for part in (e.context, e.problem) if part) or str(e)
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        message = f"not valid YAML: {problem}"
        return Document(None, source, [Diagnostic(file, line, column, "", message)])
    except yaml.YAMLError as e:
        return Document(None, source, [Diagnostic(file, None, None, "", f"not valid YAML: {e}")])
    finally:
        loader.dispose()


class _Walker:
    def __init__(self, loader: yaml.SafeLoader, source: SourceMap) -> None:
        self._loader = loader
        self._source = source
        self._open: set[int] = set()  # nodes being built: an alias back to one is a cycle
        # Mappings already flattened: an alias visits the same node again, and its merged
        # keys must not then be taken for repeats.
        self._flattened: set[int] = set()
        self.problems: list[Diagnostic] = []

    def build(self, node: yaml.Node, path: Path) -> Any:
        self._source.values[path] = _position(node)
        if isinstance(node, yaml.ScalarNode):
            return self._loader.construct_object(node)
        if id(node) in self._open:
            self.problems.append(self._source.diagnostic(path, "an alias refers to itself"))
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return None  # pragma: no cover - composer yields no other node kinds
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        if id(node) not in self._flattened:
            self._check_repeated_keys(node, path)
            # Merged-in keys come first, so the mapping's own keys override them.
            self._loader.flatten_mapping(node)
            self._flattened.add(id(node))
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(
                    Diagnostic(
                        self._source.file,
                        *_position(key_node),
                        format_path(path),
                        "expected a plain key, found a mapping or list used as a key",
                    )
                )
                continue
            key = str(key_node.value)
            self._source.keys[(*path, key)] = _position(key_node)
            out[key] = self.build(value_node, (*path, key))
        return out

    def _check_repeated_keys(self, node: yaml.MappingNode, path: Path) -> None:
        first: dict[str, Position] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key = str(key_node.value)
            here = _position(key_node)
            if key in first:
                line, column = first[key]
                self.problems.append(
                    Diagnostic(
                        self._source.file,
                        *here,
                        format_path((*path, key)),
                        f"duplicate key '{key}' (first at line {line}, column {column}); "
                        "YAML would silently keep only the last one",
                    )
                )
            else:
                first[key] = here


def _position(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1

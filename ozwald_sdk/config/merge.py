"""Merging a service's layers: base, then variety, then profile.

Each layer is the dict of the keys that layer sets (pydantic's exclude_unset dump).
Rules, by field:

- environment, labels: merge key by key; a key set to null removes it.
- resources, health_check, restart, openai (and inside them gpus, http): merge key by key,
  except that `http` and `command` of a health check, and `count` and `ids` of gpus,
  replace each other: a layer that sets one drops the other from the layers below.
- volumes: merge by container path (`target`): a mount replaces the one below with
  the same target; new targets are added after the inherited ones.
- everything else (image, command, entrypoint, env_files, networks, connector_port,
  depends_on): the upper layer's value replaces the lower one, lists included.
- a field set to null in an upper layer removes it, so the default applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

LayerDict = Mapping[str, Any]

_MAPS: Final = frozenset({"environment", "labels"})
_NESTED: Final = frozenset({"resources", "health_check", "restart", "openai"})
# Within a nested object at this path, the keys of each pair replace each other.
_EXCLUSIVE: Final[dict[tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    ("health_check",): (("http", "command"),),
    ("resources", "gpus"): (("count", "ids"),),
}


def merge_layers(layers: Iterable[LayerDict]) -> dict[str, Any]:
    """The service fields that result from applying `layers` in order."""
    result: dict[str, Any] = {}
    for layer in layers:
        result = _merge_fields(result, layer)
    return result


def _merge_fields(below: Mapping[str, Any], above: LayerDict) -> dict[str, Any]:
    result = dict(below)
    for key, value in above.items():
        if value is None:
            result.pop(key, None)
        elif key in _MAPS:
            result[key] = _merge_map(result.get(key) or {}, value)
        elif key == "volumes":
            result[key] = _merge_mounts(result.get(key) or (), value)
        elif key in _NESTED:
            result[key] = _merge_nested(result.get(key) or {}, value, (key,))
        else:
            result[key] = value
    return result


def _merge_map(below: Mapping[str, Any], above: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(below)
    for key, value in above.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def _merge_mounts(
    below: Iterable[Mapping[str, Any]], above: Iterable[Mapping[str, Any]]
) -> tuple[Mapping[str, Any], ...]:
    by_target = {mount["target"]: mount for mount in below}
    for mount in above:
        by_target[mount["target"]] = mount
    return tuple(by_target.values())


def _merge_nested(
    below: Mapping[str, Any], above: Mapping[str, Any], path: tuple[str, ...]
) -> dict[str, Any]:
    result = dict(below)
    for first, second in _EXCLUSIVE.get(path, ()):
        if first in above and second not in above:
            result.pop(second, None)
        if second in above and first not in above:
            result.pop(first, None)
    for key, value in above.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = _merge_nested(result[key], value, (*path, key))
        else:
            result[key] = value
    return result

"""Device names from Container Device Interface spec files, for engines that do not list them.

Docker 27+ reports the spec directories it reads (CDISpecDirs), and from 28.2 also the
devices it found (DiscoveredDevices). Between the two, the agent reads the specs itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

SPEC_SUFFIXES = (".json", ".yaml", ".yml")


def cdi_devices_in(spec_dirs: Iterable[str]) -> list[str]:
    """Fully qualified names ("nvidia.com/gpu=0") of every device in the dirs' spec files."""
    names: list[str] = []
    for directory in spec_dirs:
        try:
            paths = sorted(p for p in Path(directory).iterdir() if p.suffix in SPEC_SUFFIXES)
        except OSError:
            continue
        for path in paths:
            try:
                text = path.read_text()
            except (OSError, UnicodeDecodeError) as e:
                logger.warning("cannot read CDI spec %s: %s", path, e)
                continue
            kind, devices = parse_cdi_spec(text, is_json=path.suffix == ".json")
            names.extend(f"{kind}={device}" for device in devices if kind)
    return list(dict.fromkeys(names))


def parse_cdi_spec(text: str, *, is_json: bool) -> tuple[str, list[str]]:
    """A spec's kind and device names; ("", []) for a spec that cannot be read."""
    return _parse_json(text) if is_json else _parse_yaml(text)


def _parse_json(text: str) -> tuple[str, list[str]]:
    try:
        spec = json.loads(text)
    except ValueError:
        return "", []
    if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
        return "", []
    devices = spec.get("devices")
    names = [
        d["name"]
        for d in (devices if isinstance(devices, list) else [])
        if isinstance(d, dict) and isinstance(d.get("name"), str)
    ]
    return spec["kind"], names


def _parse_yaml(text: str) -> tuple[str, list[str]]:
    """Reads only top-level `kind` and the `name` of each top-level `devices` item.

    Enough for the block-style YAML that nvidia-ctk and amd-ctk write (keys sorted, so
    `name` often follows `containerEdits` inside an item), without a YAML dependency.
    """
    kind = ""
    names: list[str] = []
    in_devices = False
    item_indent: int | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "---")):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent == 0 and not stripped.startswith("-"):
            key, _, value = stripped.partition(":")
            in_devices = key == "devices"
            item_indent = None
            if key == "kind":
                kind = _scalar(value)
            continue
        if not in_devices:
            continue
        if stripped.startswith("- "):
            item_indent = indent if item_indent is None else item_indent
            if indent == item_indent:
                stripped, indent = stripped[2:].lstrip(), indent + 2
        if item_indent is not None and indent == item_indent + 2:
            key, _, value = stripped.partition(":")
            if key == "name":
                names.append(_scalar(value))
    return kind, names


def _scalar(value: str) -> str:
    text = value.split(" #", 1)[0].strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text

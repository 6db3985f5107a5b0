"""Host labels from `--host-label KEY=VALUE`: what placement constraints match on."""

from __future__ import annotations

from collections.abc import Iterable


def parse_host_labels(items: Iterable[str]) -> dict[str, str]:
    """`["zone=a", "gpu=big"]` -> `{"zone": "a", "gpu": "big"}`; ValueError names the bad one.

    A key given twice with different values is an error rather than "last wins": the
    placement of the fleet depends on it, so a typo must not pass silently."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--host-label {item!r} is not KEY=VALUE (e.g. zone=rack-1)")
        if key in labels and labels[key] != value:
            raise ValueError(
                f"--host-label gives {key!r} twice ({labels[key]!r} and {value!r}); keep one"
            )
        labels[key] = value
    return labels

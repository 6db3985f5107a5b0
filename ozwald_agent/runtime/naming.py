"""Deterministic Docker names for what the agent creates.

A container is `<prefix>-<realm>-<service>` (prefix `ozwald` by default). The name is the
duplicate guard: Docker refuses a second container with the same name, so an agent that
crashed between "create" and "record it" and then retries cannot end up with two copies
of a service. Networks are `<prefix>-<realm>` (the realm's shared bridge) and
`<prefix>-<realm>-<network>` (a declared one).

Names joined with "-" can collide when realm or service names contain "-" themselves
(realm `a-b` + service `c` vs realm `a` + service `b-c`). The labels settle it: whoever
meets an existing container or network under its name compares the labels with what it
wanted and refuses a mismatch (`ContainerExistsError` / `NameConflictError`) rather than
adopt a stranger's resource.

Simulated hosts sharing one engine give each agent its own prefix so their names do not
meet at all.
"""

from __future__ import annotations

import re

from ozwald_agent.runtime.errors import InvalidSpecError

DEFAULT_PREFIX = "ozwald"
# Docker's own rule for container names, applied to each part so the joined name is valid.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# A DNS label: what a service name must be to also serve as the container's hostname.
_DNS_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def check_name(kind: str, value: str) -> str:
    """`value` when it can be part of a Docker name; otherwise InvalidSpecError."""
    if not _NAME.match(value):
        raise InvalidSpecError(
            f"{kind} name {value!r} cannot be used in a Docker name",
            remedy="use letters, digits, '-', '_' and '.', starting with a letter or digit",
        )
    return value


def container_name(realm: str, service: str, prefix: str = DEFAULT_PREFIX) -> str:
    return "-".join(
        (
            check_name("prefix", prefix),
            check_name("realm", realm),
            check_name("service", service),
        )
    )


def realm_network_name(realm: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{check_name('prefix', prefix)}-{check_name('realm', realm)}"


def declared_network_name(realm: str, network: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{realm_network_name(realm, prefix)}-{check_name('network', network)}"


def is_dns_label(value: str) -> bool:
    return bool(_DNS_LABEL.match(value))

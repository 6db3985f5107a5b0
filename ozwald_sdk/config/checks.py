"""Checks across the parts of a config: names that refer to other things, and cycles.

Each check runs on every layer (the service, each variety, each profile) so that a
diagnostic points at the line that wrote the bad reference. The dependency graph is
the union over all layers: a cycle that any choice of varieties could form is an error.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ozwald_sdk.config.build import host_path
from ozwald_sdk.config.diagnostics import Diagnostic
from ozwald_sdk.config.diagnostics import Path as KeyPath
from ozwald_sdk.config.model import Realm
from ozwald_sdk.config.model_service import ServiceDefinition, ServiceFields
from ozwald_sdk.config.problems import closest
from ozwald_sdk.config.source import SourceMap
from ozwald_sdk.config.volume_checks import (
    encrypted_mount_problems as _encrypted_mount_problems,
)
from ozwald_sdk.config.volume_checks import encrypted_volume_problems
from ozwald_sdk.config.webhook_checks import (
    webhook_declaration_problems,
    webhook_reference_problems,
)


@dataclass
class RealmView:
    """A realm as far as it validated, plus every name written in it, valid or not.

    A service whose definition is broken is missing from `realm.services` but still in
    `service_names`, so that references to it are not reported as unknown too.
    """

    name: str
    realm: Realm
    service_names: set[str] = field(default_factory=set)
    network_names: set[str] = field(default_factory=set)
    volume_names: set[str] = field(default_factory=set)
    incomplete: set[str] = field(default_factory=set)
    """Services kept without the fields that failed to validate: their references are
    checked, but their effective specs are not built (they would miss those fields)."""
    webhook_names: set[str] = field(default_factory=set)


@dataclass
class CheckResult:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    broken: set[tuple[str, str]] = field(default_factory=set)
    """(realm, service) pairs with a bad reference: their effective specs are not built."""


def service_path(realm: str, service: str) -> KeyPath:
    return ("realms", realm, "services", service)


def layers(
    realm: str, name: str, service: ServiceDefinition
) -> Iterator[tuple[KeyPath, ServiceFields]]:
    """Each layer of a service with its key path: the service, its varieties, its profiles."""
    base = service_path(realm, name)
    yield base, service
    for variety, override in service.varieties.items():
        yield (*base, "varieties", variety), override
    for profile, override in service.profiles.items():
        yield (*base, "profiles", profile), override


def check_references(views: list[RealmView], base_dir: Path, source: SourceMap) -> CheckResult:
    result = CheckResult()
    for view in views:
        result.broken.update((view.name, name) for name in view.incomplete)
        for name, service in view.realm.services.items():
            before = len(result.diagnostics)
            for path, fields in layers(view.name, name, service):
                result.diagnostics.extend(
                    _layer_problems(
                        view, name=name, path=path, fields=fields, base_dir=base_dir, source=source
                    )
                )
            if len(result.diagnostics) > before:
                result.broken.add((view.name, name))
        result.diagnostics.extend(_portal_problems(view, source))
        result.diagnostics.extend(encrypted_volume_problems(view.name, view.realm, source))
        result.diagnostics.extend(
            webhook_declaration_problems(view.name, view.realm, base_dir, source)
        )
        result.diagnostics.extend(_cycles(view, source))
    result.diagnostics.extend(_host_port_clashes(views, source))
    return result


def _layer_problems(
    view: RealmView,
    *,
    name: str,
    path: KeyPath,
    fields: ServiceFields,
    base_dir: Path,
    source: SourceMap,
) -> Iterator[Diagnostic]:
    realm = view.name
    for i, network in enumerate(fields.networks or ()):
        if network not in view.network_names:
            yield source.diagnostic(
                (*path, "networks", i),
                f"no network '{network}' is declared in realm '{realm}' (every service is "
                f"on the realm's shared network already; declare others under "
                f"realms.{realm}.networks)",
                suggestion=closest(network, view.network_names),
            )
    targets: dict[str, int] = {}
    for i, mount in enumerate(fields.volumes or ()):
        if mount.volume is not None and mount.volume not in view.volume_names:
            yield source.diagnostic(
                (*path, "volumes", i, "volume"),
                f"no volume '{mount.volume}' is declared in realm '{realm}'",
                suggestion=closest(mount.volume, view.volume_names),
            )
        yield from _encrypted_mount_problems(view, (*path, "volumes", i), mount, source)
        if mount.target in targets:
            yield source.diagnostic(
                (*path, "volumes", i, "target"),
                f"two mounts at {mount.target} (the first is volumes[{targets[mount.target]}])",
            )
        targets.setdefault(mount.target, i)
    for i, dependency in enumerate(fields.depends_on or ()):
        if dependency == name:
            yield source.diagnostic((*path, "depends_on", i), f"'{name}' depends on itself")
        elif dependency not in view.service_names:
            yield source.diagnostic(
                (*path, "depends_on", i),
                f"no service '{dependency}' in realm '{realm}'",
                suggestion=closest(dependency, view.service_names - {name}),
            )
        else:
            yield from _persistent_dependency(
                view, name, dependency, (*path, "depends_on", i), source
            )
    yield from webhook_reference_problems(view.name, fields, path, view.webhook_names, source)
    for i, env_file in enumerate(fields.env_files or ()):
        resolved = host_path(base_dir, env_file)
        if not resolved.is_file():
            yield source.diagnostic(
                (*path, "env_files", i), f"env file {resolved} does not exist or is not a file"
            )


def _persistent_dependency(
    view: RealmView, name: str, dependency: str, path: KeyPath, source: SourceMap
) -> Iterator[Diagnostic]:
    service = view.realm.services.get(name)
    target = view.realm.services.get(dependency)
    if service is not None and target is not None and service.persistent and not target.persistent:
        yield source.diagnostic(
            path,
            f"persistent service '{name}' cannot depend on '{dependency}', which is not "
            "persistent: the agent starts persistent services on its own, when "
            f"'{dependency}' may not be running (make '{dependency}' persistent too)",
        )


def _portal_problems(view: RealmView, source: SourceMap) -> Iterator[Diagnostic]:
    for name, portal in view.realm.portals.items():
        if portal.service not in view.service_names:
            yield source.diagnostic(
                ("realms", view.name, "portals", name, "service"),
                f"no service '{portal.service}' in realm '{view.name}'",
                suggestion=closest(portal.service, view.service_names),
            )


def _host_port_clashes(views: list[RealmView], source: SourceMap) -> Iterator[Diagnostic]:
    # Host ports belong to the host, whatever realm a portal is in.
    taken: list[tuple[str, int, KeyPath]] = []
    for view in views:
        for name, portal in view.realm.portals.items():
            path: KeyPath = ("realms", view.name, "portals", name)
            for ip, port, other in taken:
                if port == portal.host_port and _overlap(ip, portal.host_ip):
                    line = source.position(other)
                    at = f" (line {line[0]})" if line else ""
                    yield source.diagnostic(
                        (*path, "host_port"),
                        f"host port {port} on {portal.host_ip} is already taken by portal "
                        f"{other[1]}.{other[3]}{at}",
                    )
                    break
            else:
                taken.append((portal.host_ip, portal.host_port, path))


def _overlap(a: str, b: str) -> bool:
    """Whether listening on both addresses with one port would clash."""
    return (
        a == b or ipaddress.ip_address(a).is_unspecified or ipaddress.ip_address(b).is_unspecified
    )


def _cycles(view: RealmView, source: SourceMap) -> Iterator[Diagnostic]:
    graph: dict[str, list[str]] = {}
    for name, service in view.realm.services.items():
        edges: list[str] = []
        for _, fields in layers(view.name, name, service):
            edges.extend(
                d for d in fields.depends_on or () if d in view.realm.services and d != name
            )
        graph[name] = list(dict.fromkeys(edges))
    reported: set[tuple[str, ...]] = set()
    for cycle in _find_cycles(graph):
        key = tuple(sorted(cycle))
        if key in reported:
            continue
        reported.add(key)
        first, second = cycle[0], cycle[1]
        yield source.diagnostic(
            _dependency_path(view, first, second),
            f"dependency cycle: {' -> '.join([*cycle, first])}",
        )


def _dependency_path(view: RealmView, name: str, dependency: str) -> KeyPath:
    for path, fields in layers(view.name, name, view.realm.services[name]):
        deps = fields.depends_on or ()
        if dependency in deps:
            return (*path, "depends_on", deps.index(dependency))
    return service_path(view.name, name)  # pragma: no cover - the edge came from a layer


def _find_cycles(graph: dict[str, list[str]]) -> Iterator[list[str]]:
    """At least one cycle through every strongly connected part of `graph` that has one.

    Each cycle starts at its smallest name, so the same cycle always reads the same way.
    """
    done: set[str] = set()
    stack: list[str] = []

    def visit(node: str) -> Iterator[list[str]]:
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt in stack:
                cycle = stack[stack.index(nxt) :]
                low = cycle.index(min(cycle))
                yield cycle[low:] + cycle[:low]
            elif nxt not in done:
                yield from visit(nxt)
        stack.pop()
        done.add(node)

    for start in sorted(graph):
        if start not in done:
            yield from visit(start)

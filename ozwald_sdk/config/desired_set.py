"""From SPEC selectors (or every dynamic service) and a host to the desired set of dynamic
services: every selector checked, every problem reported at once (exit code 10)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from ozwald.common.v1.host_profile_pb2 import HostProfile

from ozwald_sdk.config import Config, ConfigInvalidError, EffectiveService, Selector, resolve
from ozwald_sdk.config.selector import selector_error

T = TypeVar("T")
R = TypeVar("R")


def parse_selectors(texts: Sequence[str]) -> list[Selector]:
    """Every SPEC parsed; one ConfigInvalidError lists all the malformed ones."""
    return _each(texts, Selector.parse)


def resolve_selected(
    config: Config, selectors: Sequence[Selector], host: HostProfile
) -> list[EffectiveService]:
    """The effective spec of each selector for `host`. Refuses an unknown realm, service,
    variety or profile (with a did-you-mean), a service named twice, and a persistent
    service (updates never touch those)."""
    resolved = _each(selectors, lambda selector: resolve(config, selector, host))
    seen: dict[tuple[str, str], Selector] = {}
    for selector, service in zip(selectors, resolved, strict=True):
        key = (service.realm, service.name)
        if key in seen:
            raise selector_error(
                str(selector),
                f"{service.realm}:{service.name} is named twice (also as '{seen[key]}'); "
                "the desired set runs one instance of each service",
                remedy="name each service once, with the variety and profile it should run",
            )
        seen[key] = selector
        if service.persistent:
            raise selector_error(
                str(selector),
                f"{service.realm}:{service.name} is a persistent service: the agent runs it "
                "on its own and update_services never starts, stops or changes it",
                remedy="leave it out of the services you name",
            )
    return resolved


def resolve_every_dynamic(config: Config, host: HostProfile) -> list[EffectiveService]:
    """`--all`: every service of every realm that is not persistent, in file order, each
    with the variety chosen for `host` and no profile."""
    selectors = [
        Selector(service=name, realm=realm)
        for realm, name, service in config.services()
        if not service.persistent
    ]
    return _each(selectors, lambda selector: resolve(config, selector, host))


def _each(items: Sequence[T], check: Callable[[T], R]) -> list[R]:
    """`check` of every item; when some raise ConfigInvalidError, one error listing all."""
    out: list[R] = []
    errors: list[ConfigInvalidError] = []
    for item in items:
        try:
            out.append(check(item))
        except ConfigInvalidError as e:
            errors.append(e)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigInvalidError(
            f"{len(errors)} of the services named cannot be used:",
            [diagnostic for e in errors for diagnostic in e.diagnostics],
            remedy=errors[0].remedy,
        )
    return out

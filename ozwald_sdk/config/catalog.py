"""What a config offers, service by service: the data behind `ozwald list_configured_services`."""

from __future__ import annotations

from dataclasses import dataclass

from ozwald_sdk.config.loader import Config
from ozwald_sdk.config.names import Variety


@dataclass(frozen=True)
class PortalSummary:
    name: str
    host_ip: str
    host_port: int
    container_port: int | None
    """The portal's container_port, else the service's own connector_port; None when
    only its varieties or profiles set one."""


@dataclass(frozen=True)
class ConfiguredService:
    realm: str
    name: str
    varieties: tuple[Variety, ...]
    profiles: tuple[str, ...]
    persistent: bool
    portals: tuple[PortalSummary, ...]


def configured_services(config: Config) -> list[ConfiguredService]:
    """Every service in file order, with its varieties, profiles and portals."""
    out = []
    for realm_name, name, service in config.services():
        portals = config.model.realms[realm_name].portals
        out.append(
            ConfiguredService(
                realm=realm_name,
                name=name,
                varieties=tuple(service.varieties),
                profiles=tuple(service.profiles),
                persistent=service.persistent,
                portals=tuple(
                    PortalSummary(
                        p,
                        portal.host_ip,
                        portal.host_port,
                        portal.container_port or service.connector_port,
                    )
                    for p, portal in portals.items()
                    if portal.service == name
                ),
            )
        )
    return out

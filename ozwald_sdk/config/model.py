"""The ozwald.yml file as a pydantic model: version, variety preference, realms, fleet.

This is the shape of the file, checked key by key (unknown keys are errors). Checks
that need several parts at once (a mount names a declared volume, depends_on has no
cycle) are in checks.py; the merged, per-variety view is EffectiveService.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, model_validator

from ozwald_sdk.config.model_fleet import FleetSection
from ozwald_sdk.config.model_service import (
    Port,
    ServiceDefinition,
    StrictModel,
)
from ozwald_sdk.config.model_webhook import WebhookDeclaration
from ozwald_sdk.config.names import DEFAULT_VARIETY_PREFERENCE, Name, Variety
from ozwald_sdk.config.problems import expected, refused
from ozwald_sdk.config.units import PositiveSize

EXTENSION_PREFIX = "x-"
"""Top-level keys starting with this are ignored: a place for YAML anchors to reuse."""


class NetworkDeclaration(StrictModel):
    """A bridge network of the realm, created as `ozwald-<realm>_<name>`."""

    internal: bool = False
    """No route out of the host: its services reach only each other."""


class BindVolume(StrictModel):
    """A host directory or file (relative paths start at the config file's directory)."""

    type: Literal["bind"]
    source: str
    """The host path."""


class NamedVolume(StrictModel):
    """A Docker volume, created when missing."""

    type: Literal["named"]
    name: str | None = None
    """The Docker volume's name; default `ozwald-<realm>_<volume>` (set it to share one)."""


class TmpfsVolume(StrictModel):
    """Memory-backed scratch space, new and empty for each container."""

    type: Literal["tmpfs"]
    size: PositiveSize | None = None
    """Upper bound on its size (default: Docker's, half the host's memory)."""


EncryptionBackend = Literal["gocryptfs", "luks2"]


class VolumeKey(StrictModel):
    """Where the agent's vault keeps an encrypted volume's key; never the key itself."""

    locker: Name
    """A locker declared in the realm's `vault.lockers`."""
    name: str
    """The secret of that locker whose value is the key (one line, e.g. 64 hex digits)."""


class EncryptedVolume(StrictModel):
    """Encrypted at rest on the agent's host; services see its plaintext through a mount
    the agent makes while they run (docs/volumes.md)."""

    type: Literal["encrypted"]
    backend: EncryptionBackend = "gocryptfs"
    """gocryptfs (FUSE, per-file) or luks2 (cryptsetup; needs device-mapper)."""
    key: VolumeKey
    """The vault secret that is the key."""
    size: PositiveSize | None = None
    """luks2 only, required there: the size of the encrypted image."""


class EncryptedTmpVolume(StrictModel):
    """Encrypted scratch space per container instance: a random key that only the agent's
    memory holds, ciphertext wiped when the container is removed."""

    type: Literal["encrypted-tmp"]
    backend: EncryptionBackend = "gocryptfs"
    """gocryptfs or luks2."""


class VersionedVolume(StrictModel):
    """An encrypted volume with a writable working copy and immutable versions made by
    `ozwald volumes snapshot`; a mount picks the working copy or a version."""

    type: Literal["versioned"]
    backend: EncryptionBackend = "gocryptfs"
    """gocryptfs or luks2."""
    key: VolumeKey
    """The vault secret that is the key (of the working copy and every version)."""


VolumeDeclaration = Annotated[
    BindVolume | NamedVolume | TmpfsVolume | EncryptedVolume | EncryptedTmpVolume | VersionedVolume,
    Field(discriminator="type"),
]


def _ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise expected("an IP address of this host, like 127.0.0.1 or 0.0.0.0") from None


class Portal(StrictModel):
    """A host port that forwards to a service's port."""

    service: Name
    """The service of this realm it forwards to."""
    host_port: Port
    """The port on the host."""
    host_ip: Annotated[str, AfterValidator(_ip_address)] = "127.0.0.1"
    """The host address to listen on; 0.0.0.0 opens it to the network."""
    container_port: Port | None = None
    """The service's port; default its connector_port."""


def _empty_if_null(value: Any) -> Any:
    return {} if value is None else value


class VaultDeclaration(StrictModel):
    """The lockers a realm's services may ask for; names only."""

    lockers: tuple[Name, ...] = ()
    """Locker names; each is a named set of secrets in the agent's vault."""


class Realm(StrictModel):
    """A namespace of services, networks, volumes and portals."""

    networks: dict[
        Name,
        Annotated[
            NetworkDeclaration,
            BeforeValidator(_empty_if_null, json_schema_input_type=NetworkDeclaration | None),
        ],
    ] = Field(default_factory=dict)
    """Bridge networks besides the shared `ozwald-<realm>` one every service joins."""
    volumes: dict[Name, VolumeDeclaration] = Field(default_factory=dict)
    """Volumes services mount by name."""
    portals: dict[Name, Portal] = Field(default_factory=dict)
    """Host ports forwarding to services."""
    services: dict[Name, ServiceDefinition] = Field(default_factory=dict)
    """The services."""
    webhooks: dict[Name, WebhookDeclaration] = Field(default_factory=dict)
    """HTTP endpoints that receive signed lifecycle events of the services that name them."""
    vault: VaultDeclaration | None = None
    """The realm's vault: the lockers its services may name (values live in the agent's
    vault, set with `ozwald secrets`, never in this file)."""


def _distinct_varieties(preference: tuple[Variety, ...]) -> tuple[Variety, ...]:
    if not preference:
        raise expected("at least one variety")
    repeated = sorted({v for v in preference if preference.count(v) > 1})
    if repeated:
        raise refused(f"names {', '.join(repeated)} more than once")
    return preference


class OzwaldConfig(StrictModel):
    """An ozwald.yml file."""

    model_config = ConfigDict(
        # Editors must accept the x- keys that _drop_extensions ignores.
        json_schema_extra={"patternProperties": {f"^{EXTENSION_PREFIX}": {}}}
    )

    version: Literal[1]
    """The file format's version: 1."""
    variety_preference: Annotated[tuple[Variety, ...], AfterValidator(_distinct_varieties)] = (
        DEFAULT_VARIETY_PREFERENCE
    )
    """Varieties in order of choice when a selector names none (first defined and present wins)."""
    realms: Annotated[dict[Name, Realm], Field(min_length=1)]
    """Realms by name."""
    fleet: FleetSection | None = None
    """Deployments for the orchestrator to place across hosts (`ozwald apply -f FILE`)."""

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not str(k).startswith(EXTENSION_PREFIX)}
        return data

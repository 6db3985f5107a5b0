"""The effective spec of one service: base, variety and profile merged, every value final.

This is what the agent plans and applies. Nothing in it needs the config file any
more: durations are seconds, sizes are bytes, paths are absolute, volumes and networks
carry their Docker names, `${VAR}` in commands is substituted, defaults are filled in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from ozwald.common.v1.service_spec_pb2 import ServiceSpec
from pydantic import BaseModel, ConfigDict

from ozwald_sdk.config.effective_webhook import EffectiveWebhook
from ozwald_sdk.config.model_service import RestartPolicy
from ozwald_sdk.config.names import GpuVendorName, Variety
from ozwald_sdk.config.service_spec import to_service_spec
from ozwald_sdk.fingerprint import fingerprint as spec_fingerprint

DEFAULT_START_PERIOD: Final = 60.0
DEFAULT_INTERVAL: Final = 10.0
DEFAULT_TIMEOUT: Final = 5.0
DEFAULT_RETRIES: Final = 3
DEFAULT_RESTART_POLICY: Final[RestartPolicy] = "on-failure"


class _Resolved(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EffectiveMount(_Resolved):
    """A mount, with its volume's declaration folded in."""

    type: Literal["bind", "named", "tmpfs", "encrypted", "encrypted-tmp", "versioned"]
    target: str
    source: str | None
    """bind: the absolute host path; named: the Docker volume's name; otherwise None."""
    read_only: bool
    volume: str | None
    """The realm volume's name, None for an inline bind (`source:` on the mount)."""
    size: int | None = None
    """tmpfs: upper bound in bytes, None for Docker's default; luks2: the image's size."""
    backend: Literal["gocryptfs", "luks2"] | None = None
    """Encrypted types: what encrypts it."""
    key_locker: str | None = None
    key_name: str | None = None
    """encrypted and versioned: the vault secret that is the key."""
    version: int | None = None
    """versioned: the pinned version; None for the newest (or the working copy)."""
    working_copy: bool = False
    """versioned: mount the writable working copy."""


class EffectiveNetwork(_Resolved):
    """A network the container joins."""

    name: str | None
    """The realm's name for a declared network; None for the realm's shared network."""
    docker_name: str
    internal: bool


class EffectiveHttpProbe(_Resolved):
    path: str
    port: int


class EffectiveHealthCheck(_Resolved):
    """Exactly one of `http` and `command` is set."""

    http: EffectiveHttpProbe | None
    command: tuple[str, ...] | None
    start_period: float
    interval: float
    timeout: float
    retries: int


class EffectiveGpus(_Resolved):
    count: int
    vendor: GpuVendorName
    ids: tuple[str, ...]
    """Specific GPUs by UUID or index (all digits); empty for any `count` GPUs."""
    vram_per_gpu: int | None


class EffectiveResources(_Resolved):
    gpus: EffectiveGpus | None
    """None when the service needs no GPU."""
    memory: int | None
    cpus: float | None
    shm_size: int | None


class EffectiveRestart(_Resolved):
    policy: RestartPolicy
    max_retries: int | None


class EffectivePortal(_Resolved):
    name: str
    host_ip: str
    host_port: int
    container_port: int


class EffectiveOpenAi(_Resolved):
    """The OpenAI-compatible API the service answers on its connector port."""

    api: Literal["embeddings", "completions", "chat"]
    model: str | None
    """None: the first id GET /v1/models lists."""


class EffectiveService(_Resolved):
    """One service of one realm, for one variety and profile, fully resolved."""

    realm: str
    name: str
    variety: Variety | None
    """None when the service defines no varieties: the base applies as written."""
    profile: str | None
    image: str
    command: tuple[str, ...] | None
    """None: the image's default command."""
    entrypoint: tuple[str, ...] | None
    """None: the image's default entrypoint."""
    environment: dict[str, str]
    env_files: tuple[Path, ...]
    volumes: tuple[EffectiveMount, ...]
    networks: tuple[EffectiveNetwork, ...]
    """The realm's shared network first, then the declared ones the service joins."""
    connector_port: int | None
    health_check: EffectiveHealthCheck | None
    """None: ready as soon as the container runs."""
    resources: EffectiveResources
    restart: EffectiveRestart
    depends_on: tuple[str, ...]
    labels: dict[str, str]
    persistent: bool
    portals: tuple[EffectivePortal, ...]
    openai: EffectiveOpenAi | None = None
    """None: the service declares no OpenAI API (profiling runs no warm-up)."""
    webhooks: tuple[EffectiveWebhook, ...] = ()
    """The realm's hooks the service subscribes to, in the order it names them."""
    secret_lockers: tuple[str, ...] = ()
    """Vault lockers delivered as files under /run/secrets/<locker>/ (names only)."""
    secrets_delivery: Literal["files", "endpoint", "both"] = "files"
    """How the lockers reach the container: files, the agent's endpoint, or both."""

    @property
    def selector(self) -> str:
        """The selector that names exactly this spec, e.g. `default:embed[cpu][fast]`."""
        text = f"{self.realm}:{self.name}"
        if self.variety is not None or self.profile is not None:
            text += f"[{self.variety or ''}]"
        if self.profile is not None:
            text += f"[{self.profile}]"
        return text

    def to_service_spec(self) -> ServiceSpec:
        """The ozwald.common.v1.ServiceSpec message agents plan and run."""
        return to_service_spec(self)

    def fingerprint(self) -> str:
        """Lowercase hex SHA-256 of the ServiceSpec's canonical JSON form.

        Equal specs give equal fingerprints, across releases too: fields left at their
        default are not part of the form, so a new field does not change old fingerprints.
        The agent stores and compares the same value to tell "the effective spec changed".
        """
        return spec_fingerprint(to_service_spec(self))

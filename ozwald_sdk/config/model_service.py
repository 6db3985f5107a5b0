"""How a service is written in ozwald.yml: its fields, and the parts they are made of.

Every field of `ServiceFields` is optional here, because a variety or profile sets only
what it changes; what a running service must have (an image, say) is checked on the
effective spec, after base, variety and profile are merged (see merge.py, build.py).
"""

from __future__ import annotations

import shlex
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from ozwald_sdk.config.names import (
    RESERVED_LABEL_PREFIX,
    EnvName,
    GpuVendorName,
    Name,
    ProfileName,
    Variety,
)
from ozwald_sdk.config.problems import expected, refused
from ozwald_sdk.config.units import Duration, PositiveSize


class StrictModel(BaseModel):
    """Unknown keys are errors; validated values do not change."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _command_line(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as e:
            raise expected(f"a command line that splits into words ({e})") from None
    return value


CommandLine = Annotated[
    tuple[str, ...],
    BeforeValidator(_command_line, json_schema_input_type=list[str] | str),
]
"""A program and its arguments; a single string is split like a shell would (no shell runs)."""


def _text_value(value: Any) -> Any:
    # YAML reads `PORT: 8000` and `DEBUG: true` as a number and a boolean; the container
    # gets text, written the way YAML 1.2 and most people write it.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


TextValue = Annotated[
    str | None,
    BeforeValidator(_text_value, json_schema_input_type=str | int | float | bool | None),
]


def _label_key(key: str) -> str:
    if not key:
        raise expected("a non-empty label key")
    if key.startswith(RESERVED_LABEL_PREFIX):
        raise refused(
            f"label keys starting with '{RESERVED_LABEL_PREFIX}' are reserved: Ozwald sets "
            "them to recognise its own containers"
        )
    return key


LabelKey = Annotated[str, AfterValidator(_label_key)]


def _absolute_target(path: str) -> str:
    if not path.startswith("/"):
        raise expected("an absolute path inside the container (starting with '/')")
    return path


ContainerPath = Annotated[str, AfterValidator(_absolute_target)]
Port = Annotated[int, Field(ge=1, le=65535)]


def _short_mount(value: Any) -> Any:
    """`NAME:/target[:ro|:rw]` or `./path:/target[:ro]` to the long form."""
    if not isinstance(value, str):
        return value
    parts = value.split(":")
    mode = None
    if len(parts) == 3:
        mode = parts.pop()
    if len(parts) != 2 or mode not in (None, "ro", "rw") or not parts[0]:
        raise expected("a mount like NAME:/target, ./dir:/target or NAME:/target:ro")
    source, target = parts
    out: dict[str, Any] = {"target": target, "read_only": mode == "ro"}
    if source.startswith(("/", ".", "~")):
        out["source"] = source
    else:
        out["volume"] = source
    return out


class VolumeMount(StrictModel):
    """A volume mounted into the container: a declared volume by name, or a host path."""

    target: ContainerPath
    """Where it appears inside the container (an absolute path)."""
    volume: Name | None = None
    """A volume declared in the realm's `volumes`."""
    source: str | None = None
    """A host path to bind-mount instead (relative paths start at the config file's directory)."""
    read_only: bool = False
    """Mount it read-only."""
    version: Annotated[int, Field(ge=1)] | Literal["latest", "working"] | None = None
    """Versioned volumes only: `working` (the writable working copy), `latest` (the
    newest version, read-only; the default) or a version number (read-only)."""

    @model_validator(mode="after")
    def _one_origin(self) -> VolumeMount:
        if (self.volume is None) == (self.source is None):
            raise refused("a mount needs exactly one of 'volume' (a declared name) or 'source'")
        return self


MountField = Annotated[
    VolumeMount, BeforeValidator(_short_mount, json_schema_input_type=VolumeMount | str)
]


class HttpProbe(StrictModel):
    """Healthy when an HTTP GET answers 2xx."""

    path: str = "/health"
    """The path to ask."""
    port: Port | None = None
    """The container port to ask; default the service's connector_port."""


class HealthCheck(StrictModel):
    """How to tell the service is ready: an HTTP probe or a command, and its timing."""

    http: HttpProbe | None = None
    """Ask an HTTP path (exclusive with `command`)."""
    command: CommandLine | None = None
    """Run a command inside the container; exit status 0 is healthy (exclusive with `http`)."""
    start_period: Duration | None = None
    """Failures during this time after start do not count (default 60s)."""
    interval: Duration | None = None
    """Time between checks (default 10s)."""
    timeout: Duration | None = None
    """A check that takes longer failed (default 5s)."""
    retries: Annotated[int, Field(ge=1)] | None = None
    """Consecutive failures that make the service unhealthy (default 3)."""


def _gpu_id(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


GpuId = Annotated[str, BeforeValidator(_gpu_id, json_schema_input_type=int | str)]


class GpuRequest(StrictModel):
    """The GPUs a service needs."""

    count: Annotated[int, Field(ge=0)] | None = None
    """How many GPUs (default: as many as `ids` names, else 0)."""
    vendor: GpuVendorName | None = None
    """nvidia or amd; default from the variety (nvidia -> nvidia, amdgpu -> amd)."""
    ids: tuple[GpuId, ...] | None = None
    """Specific GPUs, by UUID or by the vendor's index."""
    vram_per_gpu: PositiveSize | None = None
    """Free GPU memory each GPU must have."""


class Resources(StrictModel):
    """What the service needs from the host; admission refuses what does not fit."""

    gpus: GpuRequest | None = None
    """GPUs by count or id, vendor and memory."""
    memory: PositiveSize | None = None
    """Memory limit of the container."""
    cpus: Annotated[float, Field(gt=0)] | None = None
    """CPU limit, in cores (1.5 = one and a half)."""
    shm_size: PositiveSize | None = None
    """Size of /dev/shm."""


RestartPolicy = Literal["no", "always", "on-failure", "unless-stopped"]


def _restart_policy(value: Any) -> Any:
    # YAML 1.1 reads an unquoted `no` as false.
    return "no" if value is False else value


class Restart(StrictModel):
    """What to do when the container exits."""

    policy: (
        Annotated[
            RestartPolicy,
            BeforeValidator(_restart_policy, json_schema_input_type=RestartPolicy | bool),
        ]
        | None
    ) = None
    """no, always, on-failure (default) or unless-stopped."""
    max_retries: Annotated[int, Field(ge=1)] | None = None
    """With on-failure: give up after this many restarts (default: never give up)."""


OpenAiApiName = Literal["embeddings", "completions", "chat"]


class OpenAi(StrictModel):
    """The service speaks an OpenAI-compatible API on its connector port."""

    api: OpenAiApiName | None = None
    """embeddings, completions or chat: the endpoint `ozwald profile` warms the service up
    through (required once base, variety and profile are merged)."""
    model: str | None = None
    """The model name to ask for (default: the first id GET /v1/models lists)."""


class ServiceFields(StrictModel):
    """The fields a service, a variety and a profile can all set."""

    image: str | None = None
    """The container image, e.g. vllm/vllm-openai:v0.11.0."""
    command: CommandLine | None = None
    """Arguments to the entrypoint (default: the image's); `${VAR}` reads `environment`."""
    entrypoint: CommandLine | None = None
    """The program to run (default: the image's)."""
    environment: dict[EnvName, TextValue] | None = None
    """Environment variables; null removes one set by a lower layer."""
    env_files: tuple[str, ...] | None = None
    """Files of KEY=VALUE lines (relative to the config file's directory)."""
    volumes: tuple[MountField, ...] | None = None
    """Mounts: {volume: NAME | source: PATH, target, read_only} or "NAME:/target[:ro]"."""
    networks: tuple[Name, ...] | None = None
    """Declared networks to join besides the realm's shared one."""
    connector_port: Port | None = None
    """The container port the service answers on."""
    health_check: HealthCheck | None = None
    """How to tell it is ready."""
    resources: Resources | None = None
    """GPUs, memory, cpus, shm size."""
    restart: Restart | None = None
    """Restart policy."""
    depends_on: tuple[Name, ...] | None = None
    """Services of the same realm to start (and see healthy) first."""
    labels: dict[LabelKey, TextValue] | None = None
    """Container labels; keys starting with 'ozwald.' are reserved."""
    openai: OpenAi | None = None
    """The OpenAI-compatible API it answers: {api: embeddings | completions | chat, model}."""
    webhooks: tuple[Name, ...] | None = None
    """Webhooks of the realm (by name) that receive this service's lifecycle events."""
    secrets: tuple[Name, ...] | None = None
    """Lockers of the realm's vault whose secrets the container reads as files under
    /run/secrets/<locker>/<name>; each must be declared in the realm's `vault.lockers`."""
    secrets_delivery: Literal["files", "endpoint", "both"] | None = None
    """How `secrets` reach the container: files (default), endpoint (a short-lived token
    in /run/secrets/.ozwald-token for the agent's socket at /run/ozwald-secrets/agent.sock),
    or both."""


class ServiceOverride(ServiceFields):
    """A variety or profile: the fields it changes, merged over the service's."""


def _empty_if_null(value: Any) -> Any:
    return {} if value is None else value


Override = Annotated[
    ServiceOverride,
    BeforeValidator(_empty_if_null, json_schema_input_type=ServiceOverride | None),
]


class ServiceDefinition(ServiceFields):
    """A service: its base fields, plus hardware varieties and named profiles."""

    persistent: bool = False
    """Started with the agent and never touched by update_services."""
    varieties: dict[Variety, Override] = Field(default_factory=dict)
    """Hardware flavours (nvidia, amdgpu, cpu), each merged over the base."""
    profiles: dict[ProfileName, Override] = Field(default_factory=dict)
    """Named parameter sets, each merged over the base and the variety."""

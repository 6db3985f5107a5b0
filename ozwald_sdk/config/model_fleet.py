"""The `fleet` section of ozwald.yml: deployments the orchestrator places across hosts.

    fleet:
      deployments:
        embed:                  # the deployment's name, unique in the fleet
          service: embed        # a service of the realm
          realm: default        # optional when the file has one realm (or one named default)
          variety: any          # or cpu | nvidia | amdgpu
          profile: small        # optional
          replicas: 2
          constraints: {gpu_vendor: nvidia, gpu_model: H100, min_vram: 40GiB,
                        host_labels: {zone: a}, spread: true}
          strategy: spread      # optional: binpack | spread | fgd | a plugin's name
          update: {max_parallel: 1, min_healthy_time: 10s, healthy_deadline: 5m,
                   progress_deadline: 10m, auto_revert: true, canaries: 1,
                   auto_promote: false}   # optional: how a changed spec rolls out

This is the shape only; whether the service, variety and profile exist, and whether the
service may run in the fleet at all, is checked against the realms in deployments.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BeforeValidator, Field, model_validator

from ozwald_sdk.config.model_service import StrictModel
from ozwald_sdk.config.names import DeploymentName, GpuVendorName, Name, ProfileName
from ozwald_sdk.config.problems import expected, refused
from ozwald_sdk.config.units import Duration, PositiveSize

ANY_VARIETY: Final = "any"
VarietyChoice = Literal["any", "nvidia", "amdgpu", "cpu"]
"""A variety, or `any` of those the service defines."""
DEFAULT_REPLICAS = 1


def _label_value(value: Any) -> Any:
    # `zone: 1` or `fast: true` in YAML are a number and a boolean; agents' labels are text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _label_key(key: str) -> str:
    if not key:
        raise expected("a non-empty label key")
    return key


LabelValue = Annotated[
    str, BeforeValidator(_label_value, json_schema_input_type=str | int | float | bool)
]
LabelKey = Annotated[str, BeforeValidator(_label_key)]


class PlacementConstraintsDeclaration(StrictModel):
    """Where a deployment's instances may go; every constraint written must hold."""

    gpu_vendor: GpuVendorName | None = None
    """The host must have GPUs of this vendor (nvidia or amd)."""
    gpu_model: Annotated[str, Field(min_length=1)] | None = None
    """Part of the GPU's model name, any case, e.g. H100."""
    min_vram: PositiveSize | None = None
    """Each GPU the instance uses has at least this much memory, e.g. 40GiB."""
    host_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    """Labels the host must carry with these values (ozwald-agent --host-label key=value)."""
    spread: bool = False
    """At most one instance of the deployment per host."""


class UpdateStrategyDeclaration(StrictModel):
    """How a change of the deployment's spec rolls out to running instances: a few at a
    time, each proving healthy before the next ones go (docs/operations.md)."""

    max_parallel: Annotated[int, Field(ge=1)] = 1
    """How many instances may be unavailable because of the rollout at once."""
    min_healthy_time: Duration = 10.0
    """How long a new instance must run before it counts as healthy, e.g. 10s."""
    healthy_deadline: Duration = 300.0
    """A new instance not healthy within this long counts as failed, e.g. 5m."""
    progress_deadline: Duration = 600.0
    """The rollout fails when no instance became healthy for this long (at least
    healthy_deadline), e.g. 10m."""
    auto_revert: bool = False
    """When the rollout fails, go back to the last version that was fully rolled out."""
    canaries: Annotated[int, Field(ge=0)] = 0
    """Replace this many instances first, then wait for `ozwald rollout promote`."""
    auto_promote: bool = False
    """Promote the canaries on their own once they are all healthy."""

    @model_validator(mode="after")
    def _deadlines_fit(self) -> UpdateStrategyDeclaration:
        if self.progress_deadline < self.healthy_deadline:
            raise refused(
                f"progress_deadline ({self.progress_deadline:g} s) must not be shorter than "
                f"healthy_deadline ({self.healthy_deadline:g} s): the rollout would fail "
                "before its first instance's own deadline"
            )
        if self.min_healthy_time > self.healthy_deadline:
            raise refused(
                f"min_healthy_time ({self.min_healthy_time:g} s) is longer than "
                f"healthy_deadline ({self.healthy_deadline:g} s): no instance could become "
                "healthy in time"
            )
        return self


class DeploymentDeclaration(StrictModel):
    """A service the fleet runs `replicas` copies of, on hosts the scheduler chooses."""

    service: Name
    """A service of the realm; it must not depend on other services (depends_on)."""
    realm: Name | None = None
    """The service's realm; default the file's only realm, else `default`."""
    variety: VarietyChoice = ANY_VARIETY
    """The variety to run, or `any`: each host gets the first variety the service defines,
    in variety_preference order, that it can run."""
    profile: ProfileName | None = None
    """A profile of the service."""
    replicas: Annotated[int, Field(ge=0)] = DEFAULT_REPLICAS
    """How many instances; 0 keeps the deployment with nothing running."""
    constraints: PlacementConstraintsDeclaration = Field(
        default_factory=PlacementConstraintsDeclaration
    )
    """Where instances may go."""
    strategy: Name | None = None
    """How the scheduler ranks the hosts its instances may go to: binpack, spread, fgd, or
    a plugin's name (docs/operations.md); default the orchestrator's `--strategy`. The
    orchestrator refuses a name it does not have."""
    update: UpdateStrategyDeclaration | None = None
    """How a change of what the deployment runs rolls out (max_parallel, deadlines,
    auto_revert, canaries); default one at a time, 10 s healthy, no revert."""


class FleetSection(StrictModel):
    """Desired state of the fleet, applied with `ozwald apply -f FILE`."""

    deployments: dict[DeploymentName, DeploymentDeclaration] = Field(default_factory=dict)
    """Deployments by name (a DNS label, unique in the fleet; instances are NAME-0, NAME-1,
    ...). Applying the file makes these the complete set of its realms' deployments."""

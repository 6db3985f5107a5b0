"""Rules on the desired set that need no host: one entry per service, well-formed specs.

The config layer enforces most of these already; the agent checks them again because its
API is public and a malformed spec must be refused with a reason, not half-applied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ozwald.agent.v1 import plan_pb2, service_scope_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.admission.keys import ServiceKey, key_of, label
from ozwald_agent.admission.refusals import refusal
from ozwald_agent.admission.running import RunningService

_FIX_CONFIG = "fix the service in ozwald.yml (`ozwald config validate` shows where)"


@dataclass
class Validated:
    # Desired specs that take part in the plan: the first of each key, none that names
    # a persistent service.
    accepted: list[service_spec_pb2.ServiceSpec] = field(default_factory=list)
    # Keys of accepted specs too malformed to admit: they stay in the diff and count as
    # services that will run (for depends_on), but claim no resources.
    malformed: set[ServiceKey] = field(default_factory=set)
    refusals: list[plan_pb2.Refusal] = field(default_factory=list)


def validate(
    desired: Sequence[service_spec_pb2.ServiceSpec],
    persistent: Mapping[ServiceKey, RunningService],
) -> Validated:
    """`persistent`: the running services this update may not change, by key."""
    result = Validated()
    seen: set[ServiceKey] = set()
    for spec in desired:
        key = key_of(spec)
        if key in seen:
            result.refusals.append(
                refusal(
                    key,
                    plan_pb2.REFUSAL_REASON_DUPLICATE_SERVICE,
                    f"{label(key)} appears more than once in the desired set",
                    "name each service once per update",
                )
            )
            continue
        seen.add(key)
        held = persistent.get(key)
        if held is not None:
            result.refusals.append(_held_refusal(key, held))
            continue
        result.accepted.append(spec)
        problems = spec_problems(spec)
        if problems:
            result.malformed.add(key)
            result.refusals.extend(
                refusal(key, plan_pb2.REFUSAL_REASON_INVALID_SPEC, problem, _FIX_CONFIG)
                for problem in problems
            )
    return result


def _held_refusal(key: ServiceKey, held: RunningService) -> plan_pb2.Refusal:
    if held.scope == service_scope_pb2.SERVICE_SCOPE_FLEET:
        remedy = (
            "leave it out of the update and give your service another name; fleet "
            "instances change only through the orchestrator (`ozwald apply`)"
        )
    else:
        remedy = "leave it out of the update, or rename the service in it"
    return refusal(
        key,
        plan_pb2.REFUSAL_REASON_PERSISTENT_SERVICE,
        f"{label(key)} is a {held.held_as()}; this update never stops, restarts or replaces it",
        remedy,
    )


def spec_problems(spec: service_spec_pb2.ServiceSpec) -> list[str]:
    """What is wrong with one spec, in words; empty when it is well-formed."""
    problems: list[str] = []
    if not spec.realm or not spec.name:
        problems.append("the spec has no realm or no name")
    if spec.persistent:
        problems.append(
            "the spec is marked persistent; persistent services start with the agent "
            "and are not part of an update of the dynamic services"
        )
    if not spec.image:
        problems.append("the spec has no image")
    resources = spec.resources
    if not math.isfinite(resources.cpus) or resources.cpus < 0:
        problems.append(f"resources.cpus must be a number >= 0, not {resources.cpus}")
    problems.extend(_gpu_problems(resources.gpus))
    for path in spec.env_files:
        if not path.startswith("/"):
            problems.append(f"env file {path!r} is not an absolute path")
    for volume in spec.volumes:
        if volume.kind == service_spec_pb2.VOLUME_KIND_BIND and not volume.source.startswith("/"):
            problems.append(
                f"bind mount for {volume.target!r} has source {volume.source!r}, "
                "not an absolute host path"
            )
    for portal in spec.portals:
        if not 1 <= portal.host_port <= 65535:
            problems.append(
                f"portal {portal.name!r} has host port {portal.host_port}; "
                "it must be between 1 and 65535"
            )
    return problems


def _gpu_problems(gpus: service_spec_pb2.GpuRequirement) -> list[str]:
    problems: list[str] = []
    ids = list(gpus.device_ids)
    if ids and gpus.count != len(ids):
        problems.append(
            f"resources.gpus.count is {gpus.count} but {len(ids)} device ids are listed; "
            "they must be equal"
        )
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append(f"resources.gpus.ids lists {', '.join(duplicates)} more than once")
    return problems

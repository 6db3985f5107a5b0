"""Checks on deployments before anything is stored: DEPLOYMENT_INVALID, or nothing.

The CLI validates its config, but FleetService is a public API: any client may send a
deployment, so the orchestrator checks what placement and the agents rely on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import grpc
from ozwald.common.v1 import error_reason_pb2, gpu_pb2, service_spec_pb2
from ozwald.orchestrator.v1 import deployment_pb2

from ozwald_orchestrator.rollouts.strategy import update_problems
from ozwald_orchestrator.rpc_errors import OrchestratorError
from ozwald_sdk.config.names import (
    DEPLOYMENT_NAME_PATTERN,
    DEPLOYMENT_NAME_RULE,
    NAME_PATTERN,
    NAME_RULE,
)

MAX_REPLICAS = 1000

_DEPLOYMENT_NAME = re.compile(DEPLOYMENT_NAME_PATTERN)
_NAME = re.compile(NAME_PATTERN)


def deployment_problems(deployment: deployment_pb2.Deployment) -> list[str]:
    """Everything wrong with one deployment, in words; empty when it is valid."""
    problems: list[str] = []
    name = deployment.name
    if not _DEPLOYMENT_NAME.match(name):
        problems.append(f"name {name!r} is not {DEPLOYMENT_NAME_RULE}")
    if not _NAME.match(deployment.realm):
        problems.append(f"realm {deployment.realm!r} is not {NAME_RULE}")
    if deployment.service and not _NAME.match(deployment.service):
        problems.append(f"service {deployment.service!r} is not {NAME_RULE}")
    if deployment.replicas > MAX_REPLICAS:
        problems.append(f"replicas {deployment.replicas} exceeds the limit of {MAX_REPLICAS}")
    vendor = deployment.constraints.gpu_vendor
    if vendor not in gpu_pb2.GpuVendor.values():
        problems.append(f"constraints.gpu_vendor {vendor} is not a known GPU vendor")
    if not deployment.candidates:
        problems.append(
            "no candidates: it needs at least one ServiceSpec (one per variety it may run as)"
        )
    problems.extend(update_problems(deployment.update))
    varieties: set[str] = set()
    for index, spec in enumerate(deployment.candidates):
        if spec.variety in varieties:
            problems.append(f"candidate {index} repeats variety {spec.variety!r}")
        varieties.add(spec.variety)
        problems.extend(_candidate_problems(deployment, index, spec))
    return problems


def _candidate_problems(
    deployment: deployment_pb2.Deployment, index: int, spec: service_spec_pb2.ServiceSpec
) -> list[str]:
    problems: list[str] = []
    where = f"candidate {index} ({spec.variety or 'no variety'})"
    if spec.realm != deployment.realm:
        problems.append(
            f"{where} belongs to realm {spec.realm!r}, the deployment to {deployment.realm!r}"
        )
    if spec.name and spec.name != deployment.name:
        problems.append(f"{where} is named {spec.name!r}; candidates carry the deployment's name")
    if not spec.image:
        problems.append(f"{where} has no image")
    if spec.depends_on:
        problems.append(
            f"{where} depends on {', '.join(spec.depends_on)}: fleet instances are placed "
            "on any host, where those services may not run"
        )
    if spec.persistent:
        problems.append(f"{where} is persistent: fleet instances are assigned, not persistent")
    if spec.resources.gpus.device_ids:
        problems.append(
            f"{where} pins GPU device ids, which name the GPUs of one host; declare a count "
            "and use constraints (gpu_vendor, gpu_model, min_vram) instead"
        )
    return problems


def validate_request(
    deployments: Sequence[deployment_pb2.Deployment],
    realms: Sequence[str],
    *,
    strategy_problem: Callable[[str], str | None] | None = None,
) -> None:
    """Raise DEPLOYMENT_INVALID for the first invalid deployment, naming every problem.
    `strategy_problem` says why a deployment may not name a placement strategy (unknown,
    or a plugin that does not load), or None when it may."""
    seen: set[str] = set()
    for deployment in deployments:
        problems = deployment_problems(deployment)
        if deployment.strategy and strategy_problem is not None:
            problem = strategy_problem(deployment.strategy)
            if problem is not None:
                problems.append(problem)
        if deployment.name in seen:
            problems.insert(0, "the request names it twice")
        seen.add(deployment.name)
        if problems:
            raise OrchestratorError(
                grpc.StatusCode.INVALID_ARGUMENT,
                error_reason_pb2.ERROR_REASON_DEPLOYMENT_INVALID,
                f"deployment {deployment.name!r} is invalid: {'; '.join(problems)}",
                "fix the deployment in the fleet section of ozwald.yml and apply again; "
                "nothing was stored",
                deployment=deployment.name,
            )
    for realm in realms:
        if not _NAME.match(realm):
            raise OrchestratorError(
                grpc.StatusCode.INVALID_ARGUMENT,
                error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT,
                f"realm {realm!r} is not {NAME_RULE}",
                "name realms as in ozwald.yml",
                field="realms",
            )

"""From the `fleet` section to the ozwald.orchestrator.v1.Deployment messages `ozwald apply`
sends: each deployment checked against its realm, its service resolved once per variety.

The orchestrator never reads config. For a deployment with `variety: any` the CLI sends one
candidate ServiceSpec per variety the service defines, in the file's variety_preference
order (a host gets the first one it can run); with a named variety, one candidate. Every
candidate is the same effective spec `update_services` would run (build.py), named by the
deployment; the orchestrator renames each instance's copy to the instance id.

A deployment is refused, located in the file, when its realm, service, variety or profile
does not exist, when the variety contradicts its GPU vendor constraint, and when the
service cannot run in the fleet at all: a persistent service (each agent runs those on
its own) or one with depends_on (fleet instances are placed host by host, and cannot rely
on services placed elsewhere).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ozwald.common.v1 import gpu_pb2
from ozwald.common.v1.service_spec_pb2 import ServiceSpec
from ozwald.orchestrator.v1 import deployment_pb2
from pydantic import TypeAdapter, ValidationError

from ozwald_sdk.config.build import build_effective
from ozwald_sdk.config.checks import layers
from ozwald_sdk.config.diagnostics import Diagnostic
from ozwald_sdk.config.diagnostics import Path as KeyPath
from ozwald_sdk.config.model import OzwaldConfig, Realm
from ozwald_sdk.config.model_fleet import (
    ANY_VARIETY,
    DeploymentDeclaration,
    UpdateStrategyDeclaration,
)
from ozwald_sdk.config.model_service import ServiceDefinition
from ozwald_sdk.config.names import VARIETY_VENDOR, DeploymentName, Variety
from ozwald_sdk.config.problems import closest
from ozwald_sdk.config.source import SourceMap
from ozwald_sdk.errors import ConfigInvalidError

if TYPE_CHECKING:
    from ozwald_sdk.config.loader import Config

DEFAULT_REALM: Final = "default"
_VENDOR: Final = {"nvidia": gpu_pb2.GPU_VENDOR_NVIDIA, "amd": gpu_pb2.GPU_VENDOR_AMD}
_DEPLOYMENTS: Final = TypeAdapter(dict[DeploymentName, DeploymentDeclaration])


@dataclass(frozen=True)
class _Finding:
    """Why a deployment cannot be resolved, and where in the file."""

    path: KeyPath
    message: str
    suggestion: str | None = None


@dataclass
class _Resolution:
    deployment: deployment_pb2.Deployment | None
    findings: list[_Finding] = field(default_factory=list)


def fleet_problems(
    model: OzwaldConfig,
    source: SourceMap,
    base_dir: Path,
    broken: Iterable[tuple[str, str]] = (),
) -> list[Diagnostic]:
    """Every deployment that cannot be resolved, each problem located in the file.

    Services in `broken` (realm, name) have problems of their own, reported where they
    are; their deployments are not built, so that one mistake is not reported twice.
    """
    if model.fleet is None:
        return []
    skipped = set(broken)
    return [
        source.diagnostic(finding.path, finding.message, suggestion=finding.suggestion)
        for name, declaration in model.fleet.deployments.items()
        for finding in _resolve(model, name, declaration, base_dir, skipped).findings
    ]


def model_without_broken_deployments(data: Any) -> OzwaldConfig | None:
    """The file's model with the deployments that are malformed on their own left out, so
    that the others are still checked against the realms; None when something else in the
    file is malformed too."""
    if not isinstance(data, dict) or not isinstance(data.get("fleet"), dict):
        return None
    deployments = data["fleet"].get("deployments")
    if not isinstance(deployments, dict):
        return None
    sound = {}
    for name, declaration in deployments.items():
        try:
            _DEPLOYMENTS.validate_python({name: declaration})
        except ValidationError:
            continue
        sound[name] = declaration
    try:
        return OzwaldConfig.model_validate(
            {**data, "fleet": {**data["fleet"], "deployments": sound}}
        )
    except ValidationError:
        return None


def resolve_deployments(config: Config) -> list[deployment_pb2.Deployment]:
    """The fleet section's deployments, in file order, each with its candidates.

    Raises ConfigInvalidError (exit code 10) when the file has no fleet section, or when
    any deployment cannot be resolved (load_config has refused those already).
    """
    fleet = config.model.fleet
    if fleet is None:
        raise ConfigInvalidError(
            f"{config.path} has no fleet section: nothing says what the fleet should run",
            [
                Diagnostic(
                    str(config.path),
                    None,
                    None,
                    "fleet",
                    "required key 'fleet' is missing (for `ozwald apply`)",
                )
            ],
            remedy="declare deployments under fleet.deployments (docs/configuration.md); "
            "`fleet: {deployments: {}}` removes every deployment of the file's realms",
        )
    out: list[deployment_pb2.Deployment] = []
    findings: list[_Finding] = []
    for name, declaration in fleet.deployments.items():
        resolution = _resolve(config.model, name, declaration, config.base_dir, set())
        findings.extend(resolution.findings)
        if resolution.deployment is not None:
            out.append(resolution.deployment)
    if findings:
        count = len(findings)
        raise ConfigInvalidError(
            f"{count} problem{'s' if count != 1 else ''} in the fleet section of {config.path}:",
            [
                config.source.diagnostic(f.path, f.message, suggestion=f.suggestion)
                for f in findings
            ],
        )
    return out


def fleet_realms(config: Config) -> list[str]:
    """The realms whose deployments `ozwald apply -f FILE` replaces: every realm of the file."""
    return list(config.model.realms)


def _resolve(
    model: OzwaldConfig,
    name: str,
    declaration: DeploymentDeclaration,
    base_dir: Path,
    broken: set[tuple[str, str]],
) -> _Resolution:
    here: KeyPath = ("fleet", "deployments", name)
    realm_name, finding = _realm(model, here, declaration)
    if finding is not None:
        return _Resolution(None, [finding])
    realm = model.realms[realm_name]
    service = realm.services.get(declaration.service)
    if service is None:
        return _Resolution(None, [_unknown_service(model, here, realm_name, realm, declaration)])
    if (realm_name, declaration.service) in broken:
        return _Resolution(None)
    findings = _unfit_service(here, realm_name, declaration, service)
    varieties, variety_findings = _varieties(model, here, declaration, service)
    findings.extend(variety_findings)
    findings.extend(_profile(here, declaration, service))
    if findings:
        return _Resolution(None, findings)
    candidates: list[ServiceSpec] = []
    failures: list[_Finding] = []
    for variety in varieties:
        built = build_effective(
            realm_name=realm_name,
            realm=realm,
            name=declaration.service,
            service=service,
            variety=variety,
            profile=declaration.profile,
            base_dir=base_dir,
        )
        if built.service is None:
            first = built.problems[0]
            what = f"variety {variety}" if variety else "the service"
            failures.append(
                _Finding(
                    (*here, "profile"),
                    f"profile '{declaration.profile}' cannot be used with {what}: {first.message}",
                )
            )
            continue
        spec = built.service.to_service_spec()
        spec.name = name
        candidates.append(spec)
    if not candidates:
        return _Resolution(None, failures[:1])
    return _Resolution(_deployment(name, realm_name, declaration, candidates))


def _realm(
    model: OzwaldConfig, here: KeyPath, declaration: DeploymentDeclaration
) -> tuple[str, _Finding | None]:
    realms = model.realms
    if declaration.realm is not None:
        if declaration.realm in realms:
            return declaration.realm, None
        return "", _Finding(
            (*here, "realm"),
            f"no realm '{declaration.realm}' in the file (it has: {', '.join(realms)})",
            closest(declaration.realm, realms),
        )
    if len(realms) == 1:
        return next(iter(realms)), None
    if DEFAULT_REALM in realms:
        return DEFAULT_REALM, None
    holders = [r for r, realm in realms.items() if declaration.service in realm.services]
    example = holders[0] if holders else next(iter(realms))
    return "", _Finding(
        (*here, "service"),
        f"the file has several realms ({', '.join(realms)}) and none is named "
        f"'{DEFAULT_REALM}': say which realm the service is in (realm: {example})",
    )


def _unknown_service(
    model: OzwaldConfig,
    here: KeyPath,
    realm_name: str,
    realm: Realm,
    declaration: DeploymentDeclaration,
) -> _Finding:
    wanted = declaration.service
    elsewhere = [r for r, other in model.realms.items() if wanted in other.services]
    if elsewhere:
        return _Finding(
            (*here, "service"),
            f"no service '{wanted}' in realm '{realm_name}'; it is in realm '{elsewhere[0]}': "
            f"write realm: {elsewhere[0]}",
        )
    listed = ", ".join(realm.services) or "none"
    return _Finding(
        (*here, "service"),
        f"no service '{wanted}' in realm '{realm_name}' (it has: {listed})",
        closest(wanted, realm.services),
    )


def _unfit_service(
    here: KeyPath, realm_name: str, declaration: DeploymentDeclaration, service: ServiceDefinition
) -> list[_Finding]:
    """Services the fleet cannot place, whatever variety or profile."""
    name = declaration.service
    if service.persistent:
        return [
            _Finding(
                (*here, "service"),
                f"service '{name}' is persistent: every agent runs its persistent services "
                "on its own host, so the fleet cannot place it; deploy a service that is "
                "not persistent",
            )
        ]
    dependencies: list[str] = []
    for path, fields in layers(realm_name, name, service):
        if _layer_applies(path, declaration):
            dependencies.extend(fields.depends_on or ())
    if dependencies:
        listed = ", ".join(dict.fromkeys(dependencies))
        return [
            _Finding(
                (*here, "service"),
                f"service '{name}' depends on {listed} (depends_on): fleet instances are "
                "placed host by host and cannot depend on services placed elsewhere; deploy "
                "a service without depends_on (deploy what it depends on as its own "
                "deployment and point the service at it by address)",
            )
        ]
    return []


def _layer_applies(path: KeyPath, declaration: DeploymentDeclaration) -> bool:
    """Whether a layer (the service, a variety, a profile) can be part of the deployment."""
    if len(path) < 6:
        return True
    kind, which = path[4], path[5]
    if kind == "varieties":
        return declaration.variety in (ANY_VARIETY, which)
    return declaration.profile == which


def _varieties(
    model: OzwaldConfig,
    here: KeyPath,
    declaration: DeploymentDeclaration,
    service: ServiceDefinition,
) -> tuple[list[Variety | None], list[_Finding]]:
    defined: tuple[Variety, ...] = tuple(service.varieties)
    vendor = declaration.constraints.gpu_vendor
    name = declaration.service
    if declaration.variety == ANY_VARIETY:
        if not defined:
            return [None], []
        ordered = [v for v in model.variety_preference if v in defined]
        if not ordered:
            return [], [
                _Finding(
                    (*here, "variety"),
                    f"none of the varieties of service '{name}' ({', '.join(defined)}) is in "
                    f"variety_preference ({', '.join(model.variety_preference)}), so 'any' "
                    "leaves nothing to run",
                )
            ]
        fitting = [v for v in ordered if VARIETY_VENDOR[v] in (None, vendor) or vendor is None]
        if not fitting:
            return [], [
                _Finding(
                    (*here, "constraints", "gpu_vendor"),
                    f"service '{name}' has no variety that runs on {vendor} GPUs or without "
                    f"GPUs (it has: {', '.join(ordered)})",
                )
            ]
        return list(fitting), []
    named: Variety = declaration.variety
    if not defined:
        return [], [
            _Finding(
                (*here, "variety"),
                f"service '{name}' defines no varieties: write variety: any (or leave it out)",
            )
        ]
    if named not in defined:
        return [], [
            _Finding(
                (*here, "variety"),
                f"service '{name}' has no variety '{named}' (it has: {', '.join(defined)})",
                closest(named, defined),
            )
        ]
    runs_on = VARIETY_VENDOR[named]
    if vendor is not None and runs_on is not None and runs_on != vendor:
        return [], [
            _Finding(
                (*here, "constraints", "gpu_vendor"),
                f"the {named} variety runs on {runs_on} GPUs, but the constraint asks for "
                f"a host with {vendor} GPUs: no host could take it",
            )
        ]
    constraints = declaration.constraints
    if runs_on is None and (constraints.gpu_model is not None or constraints.min_vram is not None):
        key = "gpu_model" if constraints.gpu_model is not None else "min_vram"
        return [], [
            _Finding(
                (*here, "constraints", key),
                f"the {named} variety uses no GPU, so a constraint on its GPUs ({key}) can "
                "never hold; drop it or choose a GPU variety",
            )
        ]
    return [named], []


def _profile(
    here: KeyPath, declaration: DeploymentDeclaration, service: ServiceDefinition
) -> list[_Finding]:
    named = declaration.profile
    if named is None or named in service.profiles:
        return []
    if named in service.varieties:
        return [
            _Finding(
                (*here, "profile"),
                f"'{named}' is a variety of service '{declaration.service}', not a profile: "
                f"write variety: {named}",
            )
        ]
    listed = ", ".join(service.profiles) or "none"
    return [
        _Finding(
            (*here, "profile"),
            f"service '{declaration.service}' has no profile '{named}' (it has: {listed})",
            closest(named, service.profiles),
        )
    ]


def _deployment(
    name: str, realm: str, declaration: DeploymentDeclaration, candidates: Sequence[ServiceSpec]
) -> deployment_pb2.Deployment:
    written = declaration.constraints
    constraints = deployment_pb2.PlacementConstraints(
        gpu_model=written.gpu_model or "",
        min_vram_bytes=written.min_vram or 0,
        host_labels=written.host_labels,
        spread_across_hosts=written.spread,
    )
    if written.gpu_vendor is not None:
        constraints.gpu_vendor = _VENDOR[written.gpu_vendor]
    return deployment_pb2.Deployment(
        name=name,
        realm=realm,
        service=declaration.service,
        candidates=candidates,
        replicas=declaration.replicas,
        constraints=constraints,
        strategy=declaration.strategy or "",
        update=_update(declaration.update),
    )


def _update(declared: UpdateStrategyDeclaration | None) -> deployment_pb2.UpdateStrategy | None:
    """The declared update strategy; None (unset) leaves the orchestrator's defaults."""
    if declared is None:
        return None
    update = deployment_pb2.UpdateStrategy(
        max_parallel=declared.max_parallel,
        auto_revert=declared.auto_revert,
        canaries=declared.canaries,
        auto_promote=declared.auto_promote,
    )
    update.min_healthy_time.FromTimedelta(datetime.timedelta(seconds=declared.min_healthy_time))
    update.healthy_deadline.FromTimedelta(datetime.timedelta(seconds=declared.healthy_deadline))
    update.progress_deadline.FromTimedelta(datetime.timedelta(seconds=declared.progress_deadline))
    return update

"""Reading ozwald.yml: YAML, then the model, then cross-references, then every effective spec.

Every stage runs even when an earlier one found problems (on whatever part of the
file is sound), so one run reports all the problems it can, each located in the file.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ozwald_sdk.config.build import Problem, build_effective
from ozwald_sdk.config.checks import RealmView, check_references, service_path
from ozwald_sdk.config.deployments import fleet_problems, model_without_broken_deployments
from ozwald_sdk.config.diagnostics import Diagnostic, sort_diagnostics
from ozwald_sdk.config.diagnostics import Path as KeyPath
from ozwald_sdk.config.model import OzwaldConfig, Realm
from ozwald_sdk.config.model_service import ServiceDefinition, ServiceOverride
from ozwald_sdk.config.names import Variety
from ozwald_sdk.config.source import SourceMap, parse_yaml
from ozwald_sdk.config.validation_errors import diagnostics_from
from ozwald_sdk.errors import ConfigInvalidError


@dataclass(frozen=True)
class Config:
    """A valid ozwald.yml: its model, and where it came from.

    Relative paths in the file (bind sources, env files) are relative to `base_dir`.
    """

    path: Path
    model: OzwaldConfig
    source: SourceMap = field(repr=False, compare=False)

    @property
    def base_dir(self) -> Path:
        return self.path.absolute().parent

    def services(self) -> Iterator[tuple[str, str, ServiceDefinition]]:
        """(realm, name, definition) for every service, in file order."""
        for realm_name, realm in self.model.realms.items():
            for name, service in realm.services.items():
                yield realm_name, name, service


def load_config(path: Path | str) -> Config:
    """Read and check the file at `path`; raises ConfigInvalidError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ConfigInvalidError(
            f"cannot read the config file {path}: {reason}",
            [Diagnostic(str(path), None, None, "", f"cannot read: {reason}")],
            remedy="pass --config PATH or set OZWALD_CONFIG to an ozwald.yml",
        ) from e
    return parse_config(text, path)


def parse_config(text: str, path: Path | str) -> Config:
    """Check `text` as if read from `path` (which places relative paths and names errors)."""
    path = Path(path)
    file = str(path)
    document = parse_yaml(text, file)
    diagnostics = list(document.problems)
    if document.data is None and not diagnostics:
        diagnostics.append(
            Diagnostic(file, None, None, "", "the file is empty: expected version: 1 and realms")
        )
    model: OzwaldConfig | None = None
    if document.data is not None:
        try:
            model = OzwaldConfig.model_validate(document.data)
        except ValidationError as e:
            diagnostics.extend(diagnostics_from(e, document.data, document.source, OzwaldConfig))
    views = _views(model, document.data)
    base_dir = path.absolute().parent
    checked = check_references(views, base_dir, document.source)
    diagnostics.extend(checked.diagnostics)
    for view in views:
        diagnostics.extend(_effective_problems(view, checked.broken, base_dir, document.source))
    fleet_model = model if model is not None else model_without_broken_deployments(document.data)
    if fleet_model is not None:
        diagnostics.extend(fleet_problems(fleet_model, document.source, base_dir, checked.broken))
    if diagnostics:
        count = len(sort_diagnostics(diagnostics))
        raise ConfigInvalidError(
            f"{file} is not valid ({count} problem{'s' if count != 1 else ''}):",
            sort_diagnostics(diagnostics),
        )
    assert model is not None  # no diagnostics means the model validated
    return Config(path, model, document.source)


def _views(model: OzwaldConfig | None, data: Any) -> list[RealmView]:
    if model is not None:
        return [
            RealmView(
                name,
                realm,
                set(realm.services),
                set(realm.networks),
                set(realm.volumes),
                webhook_names=set(realm.webhooks),
            )
            for name, realm in model.realms.items()
        ]
    realms = data.get("realms") if isinstance(data, dict) else None
    if not isinstance(realms, dict):
        return []
    return [_salvage(name, raw) for name, raw in realms.items() if isinstance(raw, dict)]


def _salvage(name: str, raw: dict[str, Any]) -> RealmView:
    """The parts of a realm that validate on their own, for the checks that need them."""
    parts: dict[str, dict[str, Any]] = {}
    names: dict[str, set[str]] = {}
    for section, info in Realm.model_fields.items():
        items = raw.get(section)
        items = items if isinstance(items, dict) else {}
        adapter: TypeAdapter[Any] = TypeAdapter(typing.get_args(info.annotation)[1])
        names[section] = set(items)
        parts[section] = {}
        for key, value in items.items():
            try:
                parts[section][key] = adapter.validate_python(value)
            except ValidationError:
                continue
    incomplete: set[str] = set()
    services = raw.get("services")
    for key, value in (services if isinstance(services, dict) else {}).items():
        if key not in parts["services"] and isinstance(value, dict):
            kept, _ = _sound_fields(ServiceDefinition, value)
            try:
                parts["services"][key] = ServiceDefinition.model_validate(kept)
                incomplete.add(key)
            except ValidationError:
                continue
    return RealmView(
        name,
        Realm.model_construct(
            networks=parts["networks"],
            volumes=parts["volumes"],
            portals=parts["portals"],
            services=parts["services"],
            webhooks=parts["webhooks"],
        ),
        names["services"],
        names["networks"],
        names["volumes"],
        incomplete,
        webhook_names=names["webhooks"],
    )


def _sound_fields(
    model: type[ServiceDefinition | ServiceOverride], raw: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """The fields of a service (or variety, profile) that validate on their own, and
    whether any did not."""
    kept: dict[str, Any] = {}
    lossy = False
    for key, value in raw.items():
        if key in ("varieties", "profiles") and isinstance(value, dict):
            kept[key] = {}
            for name, override in value.items():
                written = {} if override is None else override
                if isinstance(written, dict):
                    sound, lost = _sound_fields(ServiceOverride, written)
                else:
                    sound, lost = {}, True
                lossy = lossy or lost
                if _validates(model, {key: {name: sound}}):
                    kept[key][name] = sound
                else:
                    lossy = True
        elif _validates(model, {key: value}):
            kept[key] = value
        else:
            lossy = True
    return kept, lossy


def _validates(model: type[ServiceDefinition | ServiceOverride], data: dict[str, Any]) -> bool:
    try:
        model.model_validate(data)
    except ValidationError:
        return False
    return True


def _effective_problems(
    view: RealmView, broken: set[tuple[str, str]], base_dir: Path, source: SourceMap
) -> Iterator[Diagnostic]:
    """Build every variety x profile of every sound service; say what cannot be built.

    Every variety must build on its own. A profile must build with at least one variety:
    one made for GPUs (say, tensor parallelism over two of them) need not fit the cpu
    variety, and selecting that pair is refused when it is selected (see resolve).
    """
    for name, service in view.realm.services.items():
        if (view.name, name) in broken:
            continue
        varieties: list[Variety | None] = [*service.varieties] or [None]
        reported: set[KeyPath] = set()
        for profile in [None, *service.profiles]:
            attempts = [
                (
                    variety,
                    build_effective(
                        realm_name=view.name,
                        realm=view.realm,
                        name=name,
                        service=service,
                        variety=variety,
                        profile=profile,
                        base_dir=base_dir,
                    ),
                )
                for variety in varieties
            ]
            if profile is not None and any(built.service for _, built in attempts):
                continue
            for variety, built in attempts:
                for problem in built.problems:
                    path = locate_problem(
                        problem,
                        realm=view.name,
                        name=name,
                        variety=variety,
                        profile=profile,
                        source=source,
                    )
                    if path not in reported:
                        reported.add(path)
                        yield source.diagnostic(
                            path, problem.message, suggestion=problem.suggestion
                        )


def locate_problem(
    problem: Problem,
    *,
    realm: str,
    name: str,
    variety: Variety | None,
    profile: str | None,
    source: SourceMap,
) -> KeyPath:
    """The place in the file that wrote the field a problem is about.

    The topmost layer that sets the field (or its nearest parent) wins; a field no layer
    sets is the variety's concern when there is one, else the service's.
    """
    if problem.portal is not None:
        return ("realms", realm, "portals", problem.portal, *problem.field)
    base = service_path(realm, name)
    variety_path = (*base, "varieties", variety) if variety else None
    candidates = [
        (*base, "profiles", profile) if profile else None,
        variety_path,
        base,
    ]
    layers = [c for c in candidates if c is not None]
    for end in range(len(problem.field), 0, -1):
        for layer_path in layers:
            path = (*layer_path, *problem.field[:end])
            if source.has(path):
                return path
    return variety_path or base

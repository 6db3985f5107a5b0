"""From a selector and a host to the EffectiveService to run."""

from __future__ import annotations

from dataclasses import replace

from ozwald.common.v1.host_profile_pb2 import HostProfile

from ozwald_sdk.config.build import build_effective
from ozwald_sdk.config.diagnostics import Diagnostic
from ozwald_sdk.config.effective import EffectiveService
from ozwald_sdk.config.loader import Config, locate_problem
from ozwald_sdk.config.model import Realm
from ozwald_sdk.config.model_service import ServiceDefinition
from ozwald_sdk.config.names import VARIETIES, Variety
from ozwald_sdk.config.problems import closest
from ozwald_sdk.config.selector import Selector, selector_error
from ozwald_sdk.config.variety import choose_variety, host_varieties
from ozwald_sdk.errors import ConfigInvalidError

DEFAULT_REALM = "default"


def default_realm(config: Config) -> str | None:
    """The realm a selector without one means: the only realm, else `default` if defined."""
    realms = config.model.realms
    if len(realms) == 1:
        return next(iter(realms))
    return DEFAULT_REALM if DEFAULT_REALM in realms else None


def resolve(
    config: Config, selector: Selector | str, host: HostProfile | None = None
) -> EffectiveService:
    """The effective spec `selector` names, with the variety chosen for `host` if not named.

    Without a host profile only the cpu variety is assumed available (nothing is known
    about GPUs). A named variety is used as named, whatever the host has: admission
    decides whether it fits. Raises ConfigInvalidError (exit code 10) for a malformed
    selector, an unknown realm, service, variety or profile, or when no variety of the
    service fits the host.
    """
    if isinstance(selector, str):
        selector = Selector.parse(selector)
    realm_name, realm = _realm(config, selector)
    service = _service(config, selector, realm_name, realm)
    variety = _variety(config, selector, service, host)
    profile = _profile(selector, service)
    built = build_effective(
        realm_name=realm_name,
        realm=realm,
        name=selector.service,
        service=service,
        variety=variety,
        profile=profile,
        base_dir=config.base_dir,
    )
    if built.service is None:  # a profile that does not fit this variety
        diagnostics = [
            config.source.diagnostic(
                locate_problem(
                    p,
                    realm=realm_name,
                    name=selector.service,
                    variety=variety,
                    profile=profile,
                    source=config.source,
                ),
                p.message,
                suggestion=p.suggestion,
            )
            for p in built.problems
        ]
        raise ConfigInvalidError(
            f"{selector} cannot be built:",
            diagnostics,
            remedy="choose another variety or profile, or change the profile to fit this variety",
        )
    return built.service


def resolve_all(config: Config, host: HostProfile | None = None) -> list[EffectiveService]:
    """Every service of every realm (persistent ones too), varieties chosen for `host`,
    no profile. Raises one ConfigInvalidError naming every service that does not fit."""
    out: list[EffectiveService] = []
    problems: list[Diagnostic] = []
    for realm, name, _ in config.services():
        try:
            out.append(resolve(config, Selector(service=name, realm=realm), host))
        except ConfigInvalidError as e:
            problems.extend(e.diagnostics)
    if problems:
        raise ConfigInvalidError(
            f"{len(problems)} service(s) cannot run on this host:",
            problems,
            remedy=problems[0].suggestion
            or "name a variety for each, or run them on a host that has one of their varieties",
        )
    return out


def _realm(config: Config, selector: Selector) -> tuple[str, Realm]:
    realms = config.model.realms
    name = selector.realm or default_realm(config)
    if name is None:
        listed = ", ".join(realms)
        holders = [r for r, realm in realms.items() if selector.service in realm.services]
        example = f"{holders[0] if holders else next(iter(realms))}:{selector}"
        raise selector_error(
            str(selector),
            f"the config has several realms ({listed}) and none is named "
            f"'{DEFAULT_REALM}': name one, e.g. {example}",
        )
    if name not in realms:
        raise selector_error(
            str(selector),
            f"no realm '{name}' in {config.path} (it has: {', '.join(realms)})",
            suggestion=closest(name, realms),
        )
    return name, realms[name]


def _service(
    config: Config, selector: Selector, realm_name: str, realm: Realm
) -> ServiceDefinition:
    service = realm.services.get(selector.service)
    if service is not None:
        return service
    elsewhere = [
        r for r, other in config.model.realms.items() if selector.service in other.services
    ]
    hint = (
        f"; it is in realm '{elsewhere[0]}': write {elsewhere[0]}:{selector.service}"
        if elsewhere
        else ""
    )
    raise selector_error(
        str(selector),
        f"no service '{selector.service}' in realm '{realm_name}'{hint}",
        suggestion=None if elsewhere else closest(selector.service, realm.services),
    )


def _variety(
    config: Config, selector: Selector, service: ServiceDefinition, host: HostProfile | None
) -> Variety | None:
    defined = tuple(service.varieties)
    if selector.variety is not None:
        return _named_variety(selector, selector.variety, service)
    if not defined:
        return None
    available = host_varieties(host)
    chosen = choose_variety(defined, config.model.variety_preference, available)
    if chosen is not None:
        return chosen
    where = (
        f"host '{host.hostname}'"
        if host is not None
        else "this host (no host profile: only cpu is assumed)"
    )
    example = replace(selector, variety=defined[0])
    raise selector_error(
        str(selector),
        f"no variety of service '{selector.service}' (it has: {', '.join(defined)}) fits "
        f"{where}, which offers: {', '.join(v for v in VARIETIES if v in available)}; "
        f"variety_preference is {', '.join(config.model.variety_preference)}",
        remedy=f"name a variety to use it anyway (e.g. '{example}'), add a variety this "
        "host has, or run the service on a host with the hardware it needs",
    )


def _named_variety(selector: Selector, named: str, service: ServiceDefinition) -> Variety:
    defined = tuple(service.varieties)
    for variety in defined:
        if variety == named:
            return variety
    if named in service.profiles:
        example = replace(selector, variety=None, profile=named)
        raise selector_error(
            str(selector),
            f"'{named}' is a profile of service '{selector.service}', not a variety: "
            f"write '{example}' (the first brackets name the variety)",
        )
    if not defined:
        example = replace(selector, variety=None)
        raise selector_error(
            str(selector),
            f"service '{selector.service}' defines no varieties: leave the variety out "
            f"('{example}')",
        )
    raise selector_error(
        str(selector),
        f"service '{selector.service}' has no variety '{named}' (it has: {', '.join(defined)})",
        suggestion=closest(named, defined),
    )


def _profile(selector: Selector, service: ServiceDefinition) -> str | None:
    named = selector.profile
    if named is None or named in service.profiles:
        return named
    if named in service.varieties:
        raise selector_error(
            str(selector),
            f"'{named}' is a variety of service '{selector.service}', not a profile: write "
            f"'{replace(selector, variety=named, profile=None)}'",
        )
    listed = ", ".join(service.profiles) or "none"
    raise selector_error(
        str(selector),
        f"service '{selector.service}' has no profile '{named}' (it has: {listed})",
        suggestion=closest(named, service.profiles),
    )

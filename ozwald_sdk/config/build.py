"""From a service's merged layers to its EffectiveService, or the reasons it cannot be built."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ozwald_sdk.config.effective import (
    DEFAULT_INTERVAL,
    DEFAULT_RESTART_POLICY,
    DEFAULT_RETRIES,
    DEFAULT_START_PERIOD,
    DEFAULT_TIMEOUT,
    EffectiveGpus,
    EffectiveHealthCheck,
    EffectiveHttpProbe,
    EffectiveMount,
    EffectiveNetwork,
    EffectiveOpenAi,
    EffectivePortal,
    EffectiveResources,
    EffectiveRestart,
    EffectiveService,
)
from ozwald_sdk.config.effective_webhook import EffectiveWebhook
from ozwald_sdk.config.interpolate import (
    BUILTIN_PREFIX,
    BUILTIN_VARIABLES,
    UnknownVariableError,
    builtin_variables,
    interpolate,
)
from ozwald_sdk.config.merge import merge_layers
from ozwald_sdk.config.model import (
    BindVolume,
    EncryptedTmpVolume,
    EncryptedVolume,
    NamedVolume,
    Realm,
    TmpfsVolume,
    VersionedVolume,
)
from ozwald_sdk.config.model_service import ServiceDefinition, ServiceFields
from ozwald_sdk.config.names import (
    VARIETY_VENDOR,
    Variety,
    realm_object_name,
    shared_network_name,
)
from ozwald_sdk.config.problems import closest

_SERVICE_ONLY: Final = frozenset({"persistent", "varieties", "profiles"})

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """Why a field of the effective spec cannot be built.

    `field` is a path within the service's fields (or within portal `portal`'s, when
    set); the loader finds which layer wrote it to say where in the file it is.
    """

    field: FieldPath
    message: str
    suggestion: str | None = None
    portal: str | None = None


@dataclass
class Built:
    service: EffectiveService | None
    problems: list[Problem] = field(default_factory=list)


def host_path(base_dir: Path, text: str) -> Path:
    """A path from the config file: `~` expanded, relative to `base_dir`, normalised."""
    return Path(os.path.normpath(base_dir / Path(text).expanduser()))


def layer(fields: ServiceFields) -> dict[str, Any]:
    """The keys a layer sets, as merge.py takes them."""
    return fields.model_dump(exclude_unset=True, exclude=set(_SERVICE_ONLY))


def build_effective(
    *,
    realm_name: str,
    realm: Realm,
    name: str,
    service: ServiceDefinition,
    variety: Variety | None,
    profile: str | None,
    base_dir: Path,
) -> Built:
    """The effective spec of `name` for `variety` and `profile`, which the service defines."""
    layers = [layer(service)]
    if variety is not None:
        layers.append(layer(service.varieties[variety]))
    if profile is not None:
        layers.append(layer(service.profiles[profile]))
    builder = _Builder(
        realm_name=realm_name,
        realm=realm,
        name=name,
        service=service,
        variety=variety,
        profile=profile,
        base_dir=base_dir,
    )
    return builder.build(merge_layers(layers))


@dataclass
class _Builder:
    realm_name: str
    realm: Realm
    name: str
    service: ServiceDefinition
    variety: Variety | None
    profile: str | None
    base_dir: Path
    problems: list[Problem] = field(default_factory=list)

    def problem(
        self,
        where: FieldPath,
        message: str,
        *,
        suggestion: str | None = None,
        portal: str | None = None,
    ) -> None:
        self.problems.append(Problem(where, message, suggestion, portal))

    @property
    def _which(self) -> str:
        """e.g. "service 'embed' (variety nvidia, profile fast)"."""
        parts = []
        if self.variety is not None:
            parts.append(f"variety {self.variety}")
        if self.profile is not None:
            parts.append(f"profile {self.profile}")
        return f"service '{self.name}'" + (f" ({', '.join(parts)})" if parts else "")

    def build(self, merged: Mapping[str, Any]) -> Built:
        environment = {k: v for k, v in (merged.get("environment") or {}).items() if v is not None}
        image = merged.get("image")
        if not image:
            where = f"in varieties.{self.variety}, " if self.variety else ""
            self.problem(
                ("image",),
                f"{self._which} has no image: set one on the service, {where}or in the profile",
            )
        connector_port = merged.get("connector_port")
        resources = self._resources(merged.get("resources") or {})
        variables = self._variables(environment, resources)
        values: dict[str, Any] = {
            "realm": self.realm_name,
            "name": self.name,
            "variety": self.variety,
            "profile": self.profile,
            "image": image or "",
            "command": self._words(merged, ("command",), variables),
            "entrypoint": self._words(merged, ("entrypoint",), variables),
            "environment": dict(sorted(environment.items())),
            "env_files": tuple(self._path(p) for p in merged.get("env_files") or ()),
            "volumes": tuple(
                mount
                for i, spec in enumerate(merged.get("volumes") or ())
                if (mount := self._mount(i, spec)) is not None
            ),
            "networks": self._networks(merged.get("networks") or ()),
            "connector_port": connector_port,
            "health_check": self._health_check(merged, variables, connector_port),
            "resources": resources,
            "restart": self._restart(merged.get("restart") or {}),
            "depends_on": tuple(merged.get("depends_on") or ()),
            "labels": dict(
                sorted((k, v) for k, v in (merged.get("labels") or {}).items() if v is not None)
            ),
            "persistent": self.service.persistent,
            "portals": self._portals(connector_port),
            "openai": self._openai(merged.get("openai")),
            "webhooks": self._webhooks(merged.get("webhooks") or ()),
            "secret_lockers": self._secret_lockers(merged.get("secrets") or ()),
            "secrets_delivery": merged.get("secrets_delivery") or "files",
        }
        if self.problems:
            return Built(None, self.problems)
        return Built(EffectiveService.model_validate(values), [])

    def _variables(
        self, environment: Mapping[str, str], resources: EffectiveResources
    ) -> dict[str, str]:
        """What `${NAME}` can refer to: the environment, then Ozwald's built-ins."""
        for name in sorted(environment.keys() & BUILTIN_VARIABLES.keys()):
            self.problem(
                ("environment", name),
                f"{self._which} sets {name}, the name of a built-in variable: rename it "
                "(Ozwald sets ${" + name + "} itself, from the effective spec)",
            )
        builtins = builtin_variables(
            realm=self.realm_name,
            service=self.name,
            variety=self.variety,
            profile=self.profile,
            gpu_count=resources.gpus.count if resources.gpus is not None else 0,
        )
        return {**environment, **builtins}

    def _secret_lockers(self, names: tuple[str, ...]) -> tuple[str, ...]:
        declared = self.realm.vault.lockers if self.realm.vault is not None else ()
        out = []
        for index, name in enumerate(dict.fromkeys(names)):
            if name not in declared:
                self.problem(
                    ("secrets", index),
                    f"no locker '{name}' is declared in the vault of realm '{self.realm_name}' "
                    "(vault: {lockers: [...]})",
                    suggestion=closest(name, declared),
                )
                continue
            out.append(name)
        return tuple(out)

    def _webhooks(self, names: tuple[str, ...]) -> tuple[EffectiveWebhook, ...]:
        out = []
        for index, name in enumerate(dict.fromkeys(names)):
            declared = self.realm.webhooks.get(name)
            if declared is None:
                self.problem(
                    ("webhooks", index),
                    f"no webhook '{name}' is declared in realm '{self.realm_name}'",
                    suggestion=closest(name, self.realm.webhooks),
                )
                continue
            out.append(
                EffectiveWebhook(
                    name=name,
                    url=declared.url,
                    events=declared.events,
                    timeout=declared.timeout,
                    retries=declared.retries,
                    failure_policy=declared.failure_policy,
                    signing_key_file=str(self._path(declared.signing_key_file)),
                )
            )
        return tuple(out)

    def _openai(self, openai: Mapping[str, Any] | None) -> EffectiveOpenAi | None:
        if not openai:
            return None
        api = openai.get("api")
        if api is None:
            self.problem(
                ("openai", "api"),
                f"{self._which} sets openai without an api: say embeddings, completions or chat",
            )
            return None
        return EffectiveOpenAi(api=api, model=openai.get("model"))

    def _words(
        self, merged: Mapping[str, Any], where: FieldPath, variables: Mapping[str, str]
    ) -> tuple[str, ...] | None:
        words: Any = merged
        for key in where:
            words = words.get(key) if isinstance(words, Mapping) else None
        if words is None:
            return None
        try:
            return interpolate(words, variables)
        except UnknownVariableError as e:
            if e.name.startswith(BUILTIN_PREFIX):
                self.problem(
                    where,
                    f"{self._which} refers to ${{{e.name}}}, which is not a built-in variable "
                    f"(they are {', '.join(BUILTIN_VARIABLES)}; write $$ for a literal $)",
                    suggestion=closest(e.name, BUILTIN_VARIABLES),
                )
            else:
                environment = [n for n in variables if n not in BUILTIN_VARIABLES]
                self.problem(
                    where,
                    f"{self._which} refers to ${{{e.name}}}, which its environment does not set "
                    "(write $$ for a literal $)",
                    suggestion=closest(e.name, environment),
                )
            return None

    def _path(self, text: str) -> Path:
        return host_path(self.base_dir, text)

    def _mount(self, index: int, spec: Mapping[str, Any]) -> EffectiveMount | None:
        target, read_only = spec["target"], spec.get("read_only", False)
        if spec.get("source") is not None:
            return EffectiveMount(
                type="bind",
                target=target,
                source=str(self._path(spec["source"])),
                read_only=read_only,
                volume=None,
            )
        volume = spec["volume"]
        declared = self.realm.volumes.get(volume)
        if isinstance(declared, BindVolume):
            source: str | None = str(self._path(declared.source))
        elif isinstance(declared, NamedVolume):
            source = declared.name or realm_object_name(self.realm_name, volume)
        elif isinstance(declared, TmpfsVolume):
            source = None
        elif isinstance(declared, EncryptedVolume | EncryptedTmpVolume | VersionedVolume):
            return _encrypted_mount(declared, volume, target, read_only, spec.get("version"))
        else:
            self.problem(
                ("volumes", index, "volume"),
                f"no volume '{volume}' is declared in realm '{self.realm_name}'",
                suggestion=closest(volume, self.realm.volumes),
            )
            return None
        return EffectiveMount(
            type=declared.type,
            target=target,
            source=source,
            read_only=read_only,
            volume=volume,
            size=declared.size if isinstance(declared, TmpfsVolume) else None,
        )

    def _networks(self, names: tuple[str, ...]) -> tuple[EffectiveNetwork, ...]:
        out = [
            EffectiveNetwork(
                name=None, docker_name=shared_network_name(self.realm_name), internal=False
            )
        ]
        for index, name in enumerate(dict.fromkeys(names)):
            declared = self.realm.networks.get(name)
            if declared is None:
                self.problem(
                    ("networks", index),
                    f"no network '{name}' is declared in realm '{self.realm_name}'",
                    suggestion=closest(name, self.realm.networks),
                )
                continue
            out.append(
                EffectiveNetwork(
                    name=name,
                    docker_name=realm_object_name(self.realm_name, name),
                    internal=declared.internal,
                )
            )
        return tuple(out)

    def _health_check(
        self, merged: Mapping[str, Any], variables: Mapping[str, str], port: int | None
    ) -> EffectiveHealthCheck | None:
        check = merged.get("health_check")
        if not check:
            return None
        http, command = check.get("http"), check.get("command")
        if (http is None) == (command is None):
            self.problem(
                ("health_check",),
                f"{self._which}: a health check needs exactly one of 'http' and 'command'",
            )
            return None
        probe = None
        if http is not None:
            probe_port = http.get("port") or port
            if probe_port is None:
                self.problem(
                    ("health_check", "http"),
                    f"{self._which}: the http health check needs a port: set "
                    "health_check.http.port or the service's connector_port",
                )
                return None
            probe = EffectiveHttpProbe(path=http.get("path", "/health"), port=probe_port)
        return EffectiveHealthCheck(
            http=probe,
            command=self._words(merged, ("health_check", "command"), variables),
            start_period=check.get("start_period", DEFAULT_START_PERIOD),
            interval=check.get("interval", DEFAULT_INTERVAL),
            timeout=check.get("timeout", DEFAULT_TIMEOUT),
            retries=check.get("retries", DEFAULT_RETRIES),
        )

    def _resources(self, resources: Mapping[str, Any]) -> EffectiveResources:
        return EffectiveResources(
            gpus=self._gpus(resources.get("gpus") or {}),
            memory=resources.get("memory"),
            cpus=resources.get("cpus"),
            shm_size=resources.get("shm_size"),
        )

    def _gpus(self, gpus: Mapping[str, Any]) -> EffectiveGpus | None:
        where = ("resources", "gpus")
        ids = tuple(gpus.get("ids") or ())
        count = gpus.get("count", len(ids))
        if ids and count != len(ids):
            self.problem(
                (*where, "count"),
                f"{self._which} asks for {count} GPU(s) but names {len(ids)} in ids",
            )
            return None
        if count == 0:
            return None
        variety_vendor = VARIETY_VENDOR[self.variety] if self.variety else None
        vendor = gpus.get("vendor") or variety_vendor
        if self.variety == "cpu":
            self.problem(
                (*where, "count"),
                f"{self._which} asks for {count} GPU(s): a cpu variety runs without GPUs "
                "(set resources.gpus: null in the cpu variety to drop the base's request)",
            )
            return None
        if vendor is None:
            self.problem(
                (*where, "vendor"),
                f"{self._which} asks for GPUs without a vendor: set resources.gpus.vendor "
                "(nvidia or amd), or define nvidia/amdgpu varieties",
            )
            return None
        if variety_vendor is not None and vendor != variety_vendor:
            self.problem(
                (*where, "vendor"),
                f"{self._which} asks for {vendor} GPUs, but the {self.variety} variety runs "
                f"on {variety_vendor} GPUs",
            )
            return None
        return EffectiveGpus(
            count=count, vendor=vendor, ids=ids, vram_per_gpu=gpus.get("vram_per_gpu")
        )

    def _restart(self, restart: Mapping[str, Any]) -> EffectiveRestart:
        policy = restart.get("policy", DEFAULT_RESTART_POLICY)
        max_retries = restart.get("max_retries")
        if max_retries is not None and policy != "on-failure":
            self.problem(
                ("restart", "max_retries"),
                f"{self._which}: max_retries applies only to the on-failure policy, "
                f"not to {policy}",
            )
        return EffectiveRestart(policy=policy, max_retries=max_retries)

    def _portals(self, connector_port: int | None) -> tuple[EffectivePortal, ...]:
        out = []
        for portal_name, portal in sorted(self.realm.portals.items()):
            if portal.service != self.name:
                continue
            port = portal.container_port or connector_port
            if port is None:
                self.problem(
                    ("container_port",),
                    f"portal '{portal_name}' needs a container port: set its container_port "
                    f"or the connector_port of {self._which}",
                    portal=portal_name,
                )
                continue
            out.append(
                EffectivePortal(
                    name=portal_name,
                    host_ip=portal.host_ip,
                    host_port=portal.host_port,
                    container_port=port,
                )
            )
        return tuple(out)


def _encrypted_mount(
    declared: EncryptedVolume | EncryptedTmpVolume | VersionedVolume,
    volume: str,
    target: str,
    read_only: bool,
    version: int | str | None,
) -> EffectiveMount:
    """checks.py has refused what does not fit (a version of a non-versioned volume, a
    version mounted writable, a key locker the vault does not declare)."""
    key = declared.key if not isinstance(declared, EncryptedTmpVolume) else None
    versioned = isinstance(declared, VersionedVolume)
    return EffectiveMount(
        type=declared.type,
        target=target,
        source=None,
        read_only=read_only,
        volume=volume,
        size=declared.size if isinstance(declared, EncryptedVolume) else None,
        backend=declared.backend,
        key_locker=key.locker if key is not None else None,
        key_name=key.name if key is not None else None,
        version=version if versioned and isinstance(version, int) else None,
        working_copy=versioned and version == "working",
    )

"""Delivers a service's lockers to its container as files; a `ContainerRuntime` wrapper.

`SecretDeliveringRuntime` wraps the agent's `DockerRuntime` and is what the reconciler
uses. For a spec that names lockers, `create` reads the admitted revision of each locker
from the vault (refusing when the vault is locked: a service never starts without its
secrets), writes the values to a tmpfs directory owned by the container's user
(`secret_files.py`) and adds one read-only bind mount of it at `/run/secrets`. `remove`
deletes the directory with the container. Values never reach the container's
environment, arguments, labels or the agent's logs; the mount's source is a path.

The container's user is the image's `USER` (numeric `uid[:gid]`, or a name looked up in
the image's own /etc/passwd and /etc/group); empty means root.
"""

from __future__ import annotations

import io
import logging
import tarfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import docker.errors
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.runtime.container_info import ContainerInfo, StopResult
from ozwald_agent.runtime.docker_runtime import DockerRuntime
from ozwald_agent.runtime.errors import ContainerNotFoundError, ContainerRuntimeError
from ozwald_agent.runtime.events import RuntimeEvent
from ozwald_agent.runtime.exec import ExecResult
from ozwald_agent.runtime.gpus import GpuAssignment
from ozwald_agent.runtime.naming import container_name
from ozwald_agent.runtime.secret_files import (
    SecretFilesError,
    prepare_base,
    remove_secret_dir,
    write_secret_dir,
)
from ozwald_agent.runtime.streams import StoppableIterator
from ozwald_agent.secrets.errors import VaultError
from ozwald_agent.secrets.vault import Vault

logger = logging.getLogger(__name__)

MOUNT_TARGET = "/run/secrets"


class SecretsUnavailableError(ContainerRuntimeError):
    reason = "SECRETS_UNAVAILABLE"


class SecretDeliveringRuntime:
    """A `ContainerRuntime` that gives containers their lockers as files."""

    def __init__(self, inner: DockerRuntime, vault: Vault, base: Path) -> None:
        self._inner = inner
        self._vault = vault
        self._root = base / inner.agent_id
        self._base = base

    @property
    def agent_id(self) -> str:
        return self._inner.agent_id

    def directory_for(self, realm: str, service: str) -> Path:
        return self._root / container_name(realm, service, self._inner.settings.name_prefix)

    def sweep(self) -> list[Path]:
        """Removes directories whose container is gone (run at agent start)."""
        if not self._root.exists():
            return []
        names = {c.name for c in self._inner.list_managed()}
        removed = []
        for directory in sorted(self._root.iterdir()):
            if directory.name not in names:
                remove_secret_dir(directory)
                removed.append(directory)
        return removed

    def create(
        self,
        spec: service_spec_pb2.ServiceSpec,
        *,
        fingerprint: str,
        gpus: GpuAssignment | None = None,
    ) -> ContainerInfo:
        if not spec.secret_lockers:
            return self._inner.create(spec, fingerprint=fingerprint, gpus=gpus)
        if self._inner.inspect_service(spec.realm, spec.name) is not None:
            # The name is taken: the engine refuses below; its files are not ours to touch.
            return self._inner.create(spec, fingerprint=fingerprint, gpus=gpus)
        lockers = self._read_lockers(spec)
        uid, gid = self._container_user(spec.image)
        prepare_base(self._base)
        self._root.mkdir(mode=0o700, exist_ok=True)
        directory = self.directory_for(spec.realm, spec.name)
        write_secret_dir(directory, lockers, uid, gid)
        mounted = service_spec_pb2.ServiceSpec()
        mounted.CopyFrom(spec)
        mounted.volumes.append(
            service_spec_pb2.VolumeMount(
                kind=service_spec_pb2.VOLUME_KIND_BIND,
                source=str(directory),
                target=MOUNT_TARGET,
                read_only=True,
            )
        )
        try:
            info = self._inner.create(mounted, fingerprint=fingerprint, gpus=gpus)
        except BaseException:
            remove_secret_dir(directory)
            raise
        logger.info(
            "delivered %d locker(s) to %s as files",
            len(lockers),
            info.name,
            extra={"realm": spec.realm, "service": spec.name, "lockers": sorted(lockers)},
        )
        return info

    def _read_lockers(self, spec: service_spec_pb2.ServiceSpec) -> dict[str, dict[str, bytes]]:
        lockers: dict[str, dict[str, bytes]] = {}
        names = [ref.locker for ref in spec.secret_lockers]
        try:
            for ref in spec.secret_lockers:
                lockers[ref.locker] = self._vault.read_revision(
                    spec.realm, ref.locker, ref.revision
                )
        except VaultError as e:
            self._vault.audit(
                "agent", "deliver", realm=spec.realm, locker=",".join(names), outcome=e.reason
            )
            raise SecretsUnavailableError(
                f"the secrets of {spec.realm}:{spec.name} are unavailable: {e.message}",
                remedy=e.remedy,
            ) from e
        for ref in spec.secret_lockers:
            self._vault.audit(
                "agent",
                "deliver",
                realm=spec.realm,
                locker=ref.locker,
                names=list(lockers[ref.locker]),
                correlation_id=f"{spec.name}@{ref.revision}",
            )
        return lockers

    def _container_user(self, image: str) -> tuple[int, int]:
        try:
            config = self._inner.client().images.get(image).attrs.get("Config") or {}
        except docker.errors.DockerException as e:
            raise SecretFilesError(f"cannot read the user of image {image}: {e}") from e
        user = str(config.get("User") or "")
        name, _, group = user.partition(":")
        if not name:
            return 0, 0
        uid = int(name) if name.isdigit() else self._lookup(image, "/etc/passwd", name, 2)
        if group:
            gid = int(group) if group.isdigit() else self._lookup(image, "/etc/group", group, 2)
        elif name.isdigit():
            gid = uid
        else:
            gid = self._lookup(image, "/etc/passwd", name, 3)
        return uid, gid

    def _lookup(self, image: str, path: str, name: str, column: int) -> int:
        """A name's number in the image's own /etc/passwd or /etc/group."""
        client = self._inner.client()
        container = None
        try:
            container = client.containers.create(image, command=["true"], network_disabled=True)
            chunks, _ = container.get_archive(path)
            with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
                member = archive.extractfile(archive.getmembers()[0])
                text = member.read().decode() if member else ""
        except (docker.errors.DockerException, tarfile.TarError, IndexError) as e:
            raise SecretFilesError(
                f"cannot resolve user {name!r} of image {image}: {e}",
                remedy="give the image a numeric USER (uid:gid)",
            ) from e
        finally:
            if container is not None:
                container.remove(force=True)
        for line in text.splitlines():
            fields = line.split(":")
            if fields[0] == name and len(fields) > column and fields[column].isdigit():
                return int(fields[column])
        raise SecretFilesError(
            f"image {image} has no {name!r} in {path}",
            remedy="give the image a numeric USER (uid:gid)",
        )

    def remove(self, container: str, *, force: bool = False) -> bool:
        try:
            info: ContainerInfo | None = self._inner.inspect(container)
        except ContainerNotFoundError:
            info = None
        removed = self._inner.remove(container, force=force)
        if info is not None and info.service is not None:
            directory = self._root / info.name.lstrip("/")
            remove_secret_dir(directory)
        return removed

    # Everything else is the engine's own ---------------------------------------------

    def start(self, container: str) -> None:
        self._inner.start(container)

    def stop(self, container: str, *, timeout_s: float = 10.0) -> StopResult:
        return self._inner.stop(container, timeout_s=timeout_s)

    def inspect(self, container: str) -> ContainerInfo:
        return self._inner.inspect(container)

    def inspect_service(self, realm: str, service: str) -> ContainerInfo | None:
        return self._inner.inspect_service(realm, service)

    def list_managed(
        self, *, realm: str | None = None, service: str | None = None
    ) -> list[ContainerInfo]:
        return self._inner.list_managed(realm=realm, service=service)

    def container_ip(self, container: str, *, network: str | None = None) -> str:
        return self._inner.container_ip(container, network=network)

    def logs(
        self, container: str, *, tail: int | None = 100, timestamps: bool = False
    ) -> list[str]:
        return self._inner.logs(container, tail=tail, timestamps=timestamps)

    def follow_logs(
        self, container: str, *, tail: int | None = 0, timestamps: bool = False
    ) -> StoppableIterator[str]:
        return self._inner.follow_logs(container, tail=tail, timestamps=timestamps)

    def watch_exits(self, *, since: datetime | None = None) -> StoppableIterator[RuntimeEvent]:
        return self._inner.watch_exits(since=since)

    def exec(self, container: str, argv: Sequence[str], *, timeout_s: float) -> ExecResult:
        return self._inner.exec(container, argv, timeout_s=timeout_s)

    def remove_unused_networks(self, *, realm: str | None = None) -> list[str]:
        return self._inner.remove_unused_networks(realm=realm)

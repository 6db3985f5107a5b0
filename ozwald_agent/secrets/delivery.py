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

With `secret_delivery` ENDPOINT or BOTH, the directory also holds `.ozwald-token`, a
short-lived credential for the agent's secrets endpoint (`endpoint.py`), whose socket
directory is mounted read-only at `/run/ozwald-secrets`; ENDPOINT writes no value files.
The token's scope is kept beside the directories (`.scopes/<container>.json`, names and
revisions only) so a restarted agent can re-mint tokens for the containers it adopts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path

from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.runtime.container_info import ContainerInfo, ContainerState, StopResult
from ozwald_agent.runtime.delegating import DelegatingRuntime
from ozwald_agent.runtime.docker_runtime import DockerRuntime
from ozwald_agent.runtime.errors import ContainerNotFoundError, ContainerRuntimeError
from ozwald_agent.runtime.gpus import GpuAssignment
from ozwald_agent.runtime.image_user import image_user
from ozwald_agent.runtime.naming import container_name
from ozwald_agent.runtime.secret_files import (
    prepare_base,
    remove_secret_dir,
    write_secret_dir,
)
from ozwald_agent.secrets import endpoint as ep
from ozwald_agent.secrets.errors import VaultError
from ozwald_agent.secrets.vault import Vault

logger = logging.getLogger(__name__)

MOUNT_TARGET = "/run/secrets"
ENDPOINT_DIR = ".endpoint"
SCOPES_DIR = ".scopes"
_FILES = (
    service_spec_pb2.SECRET_DELIVERY_UNSPECIFIED,
    service_spec_pb2.SECRET_DELIVERY_FILES,
    service_spec_pb2.SECRET_DELIVERY_BOTH,
)
_GONE = (ContainerState.EXITED, ContainerState.DEAD, ContainerState.REMOVING)
_ENDPOINT = (service_spec_pb2.SECRET_DELIVERY_ENDPOINT, service_spec_pb2.SECRET_DELIVERY_BOTH)


class SecretsUnavailableError(ContainerRuntimeError):
    reason = "SECRETS_UNAVAILABLE"


class SecretDeliveringRuntime(DelegatingRuntime[DockerRuntime]):
    """A `ContainerRuntime` that gives containers their lockers as files."""

    def __init__(
        self,
        inner: DockerRuntime,
        vault: Vault,
        base: Path,
        *,
        token_ttl_s: float = ep.DEFAULT_TOKEN_TTL_S,
    ) -> None:
        super().__init__(inner)
        self._vault = vault
        self._root = base / inner.agent_id
        self._base = base
        self.tokens = ep.TokenRegistry(token_ttl_s)
        self.endpoint = ep.SecretsEndpoint(self._root / ENDPOINT_DIR, vault, self.tokens)
        self._endpoint_lock = threading.Lock()
        self._stopping = threading.Event()
        self._copies: set[str] = set()

    def directory_for(self, realm: str, service: str) -> Path:
        return self._root / container_name(realm, service, self._inner.settings.name_prefix)

    def sweep(self) -> list[Path]:
        """Removes directories whose container is gone (run at agent start)."""
        if not self._root.exists():
            return []
        names = {c.name for c in self._inner.list_managed()}
        removed = []
        for directory in sorted(self._root.iterdir()):
            if directory.name.startswith("."):
                continue
            if directory.name not in names:
                remove_secret_dir(directory)
                self._scope_file(directory.name).unlink(missing_ok=True)
                removed.append(directory)
        return removed

    # -- the endpoint's tokens ---------------------------------------------------------

    def reissue(self) -> list[str]:
        """New tokens for the running containers this agent adopts (run at agent start:
        tokens live in memory only, so the ones written before the restart are dead)."""
        scopes = self._root / SCOPES_DIR
        if not scopes.exists():
            return []
        running = self._live()
        reissued = []
        for path in sorted(scopes.glob("*.json")):
            scope = ep.TokenScope.from_json(path.read_text())
            if scope.container not in running:
                continue
            self._ensure_endpoint()
            self._write_token(scope)
            reissued.append(scope.container)
        return reissued

    def refresh_tokens(self) -> None:
        """Writes a fresh token for every container past half its token's life and
        revokes the tokens of containers that are no longer running (exits and crashes
        the agent did not cause)."""
        issued = self.tokens.containers()
        if not issued:
            return
        running = self._live()
        for container in issued - running:
            if self.tokens.revoke(container):
                logger.info("revoked the secrets tokens of %s: it stopped", container)
        for scope in self.tokens.due():
            if scope.container in running:
                self._write_token(scope)

    def run_token_refresher(self, interval_s: float) -> None:
        while not self._stopping.wait(interval_s):
            try:
                self.refresh_tokens()
            except (ContainerRuntimeError, OSError) as e:
                logger.warning("could not refresh secrets tokens: %s", e)

    def close(self) -> None:
        """Revokes every token and closes the endpoint (agent stop)."""
        self._stopping.set()
        self.endpoint.stop()

    def _live(self) -> set[str]:
        with self._endpoint_lock:
            copies = set(self._copies)
        return copies | {c.name for c in self._inner.list_managed() if c.state not in _GONE}

    def _ensure_endpoint(self) -> None:
        with self._endpoint_lock:
            if self.endpoint.socket_path.exists():
                return
            prepare_base(self._base)
            self._root.mkdir(mode=0o700, exist_ok=True)
            self.endpoint.start()

    def _scope_file(self, container: str) -> Path:
        return self._root / SCOPES_DIR / f"{container}.json"

    def _write_token(self, scope: ep.TokenScope) -> None:
        """Mints a token and replaces the container's token file with it, atomically."""
        directory = self._root / scope.container
        info = os.stat(directory)
        token = self.tokens.mint(scope)
        staging = directory / (ep.TOKEN_FILE + ".new")
        staging.unlink(missing_ok=True)
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
        try:
            os.write(fd, token.encode())
            os.fchown(fd, info.st_uid, info.st_gid)
            os.fchmod(fd, 0o400)
        finally:
            os.close(fd)
        os.replace(staging, directory / ep.TOKEN_FILE)

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
        mounted, scope = self._deliver(spec, self.directory_for(spec.realm, spec.name))
        try:
            info = self._inner.create(mounted, fingerprint=fingerprint, gpus=gpus)
        except BaseException:
            self.withdraw(scope.container)
            raise
        return info

    def deliver_to(
        self, spec: service_spec_pb2.ServiceSpec, container: str
    ) -> service_spec_pb2.ServiceSpec:
        """For a container the caller creates itself (a profiling copy named `container`):
        its secrets delivered exactly as a service's; returns the spec with the mounts.
        `withdraw(container)` undoes it."""
        if not spec.secret_lockers:
            return spec
        with self._endpoint_lock:
            self._copies.add(container)
        try:
            return self._deliver(spec, self._root / container)[0]
        except BaseException:
            self.withdraw(container)
            raise

    def withdraw(self, container: str) -> None:
        """Revokes the container's tokens and removes its secret files."""
        self.tokens.revoke(container)
        with self._endpoint_lock:
            self._copies.discard(container)
        self._scope_file(container).unlink(missing_ok=True)
        remove_secret_dir(self._root / container)

    def _deliver(
        self, spec: service_spec_pb2.ServiceSpec, directory: Path
    ) -> tuple[service_spec_pb2.ServiceSpec, ep.TokenScope]:
        as_files = spec.secret_delivery in _FILES
        as_endpoint = spec.secret_delivery in _ENDPOINT
        # Read even when only the endpoint serves them: a service never starts without
        # its secrets (locked vault, missing revision).
        lockers = self._read_lockers(spec, audit=as_files)
        uid, gid = image_user(self._inner.client(), spec.image)
        prepare_base(self._base)
        self._root.mkdir(mode=0o700, exist_ok=True)
        write_secret_dir(directory, lockers if as_files else {}, uid, gid)
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
        scope = ep.TokenScope(
            spec.realm,
            spec.name,
            directory.name,
            {ref.locker: ref.revision for ref in spec.secret_lockers},
        )
        try:
            if as_endpoint:
                self._add_endpoint(mounted, scope)
        except BaseException:
            self.withdraw(scope.container)
            raise
        how = (
            "files and an endpoint token"
            if as_files and as_endpoint
            else ("files" if as_files else "an endpoint token")
        )
        logger.info(
            "delivering %d locker(s) to %s as %s",
            len(lockers),
            directory.name,
            how,
            extra={"realm": spec.realm, "service": spec.name, "lockers": sorted(lockers)},
        )
        return mounted, scope

    def _add_endpoint(self, spec: service_spec_pb2.ServiceSpec, scope: ep.TokenScope) -> None:
        self._ensure_endpoint()
        scopes = self._root / SCOPES_DIR
        scopes.mkdir(mode=0o700, exist_ok=True)
        self._scope_file(scope.container).write_text(scope.to_json())
        self._write_token(scope)
        spec.volumes.append(
            service_spec_pb2.VolumeMount(
                kind=service_spec_pb2.VOLUME_KIND_BIND,
                source=str(self.endpoint.directory),
                target=ep.MOUNT_TARGET,
                read_only=True,
            )
        )
        # Paths only, never a value: where the socket and the token are.
        spec.environment[ep.SOCKET_ENV] = f"{ep.MOUNT_TARGET}/{ep.SOCKET_NAME}"
        spec.environment[ep.TOKEN_FILE_ENV] = f"{MOUNT_TARGET}/{ep.TOKEN_FILE}"

    def _read_lockers(
        self, spec: service_spec_pb2.ServiceSpec, *, audit: bool = True
    ) -> dict[str, dict[str, bytes]]:
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
        for ref in spec.secret_lockers if audit else ():
            self._vault.audit(
                "agent",
                "deliver",
                realm=spec.realm,
                locker=ref.locker,
                names=list(lockers[ref.locker]),
                correlation_id=f"{spec.name}@{ref.revision}",
            )
        return lockers

    def remove(self, container: str, *, force: bool = False) -> bool:
        try:
            info: ContainerInfo | None = self._inner.inspect(container)
        except ContainerNotFoundError:
            info = None
        if info is not None:
            self.tokens.revoke(info.name.lstrip("/"))
        removed = self._inner.remove(container, force=force)
        if info is not None and info.service is not None:
            directory = self._root / info.name.lstrip("/")
            remove_secret_dir(directory)
            self._scope_file(directory.name).unlink(missing_ok=True)
        return removed

    def stop(self, container: str, *, timeout_s: float = 10.0) -> StopResult:
        # Revoked before the stop: a stopping container reads nothing more.
        with contextlib.suppress(ContainerNotFoundError):
            self.tokens.revoke(self._inner.inspect(container).name.lstrip("/"))
        return self._inner.stop(container, timeout_s=timeout_s)

"""`VolumeMountingRuntime`: a `ContainerRuntime` wrapper that opens encrypted volumes.

Wired around the secret-delivering runtime (see `agent_volumes.py`), so the reconciler
needs no change. `create` mounts the plaintext of each encrypted volume of the spec (key
from the vault) and hands the inner runtime a copy of the spec in which those mounts are
plain bind mounts of the plaintext directory (read-only for versions); `remove` drops the
container as a user of its mounts, unmounting what nobody uses any more and wiping the
ciphertext of its encrypted-tmp volumes.
"""

from __future__ import annotations

import logging

from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.runtime.container_info import ContainerInfo
from ozwald_agent.runtime.delegating import DelegatingRuntime
from ozwald_agent.runtime.docker_runtime import DockerRuntime
from ozwald_agent.runtime.errors import ContainerNotFoundError
from ozwald_agent.runtime.gpus import GpuAssignment
from ozwald_agent.runtime.image_user import image_user
from ozwald_agent.runtime.naming import container_name
from ozwald_agent.runtime.protocol import ContainerRuntime
from ozwald_agent.secrets.errors import SecretNotFoundError, VaultError
from ozwald_agent.secrets.vault import Vault
from ozwald_agent.volumes import gocryptfs
from ozwald_agent.volumes.errors import VolumeKeyError
from ozwald_agent.volumes.mounts import VolumeMounts, is_encrypted

logger = logging.getLogger(__name__)


class VaultKeys:
    """Reads volume keys from the vault; audited as `volume-key`, never logged."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    def _key(self, realm: str, volume: service_spec_pb2.EncryptedVolume) -> bytes:
        """The key at the revision admission pinned (the current one when none was), so a
        restart after a crash opens the volume with the key it was admitted with."""
        if not volume.key_revision:
            return self._vault.reveal(realm, volume.key_locker, volume.key_name)[1]
        values = self._vault.read_revision(realm, volume.key_locker, volume.key_revision)
        if volume.key_name not in values:
            raise SecretNotFoundError(realm, volume.key_locker, volume.key_name)
        return values[volume.key_name]

    def __call__(self, realm: str, service: str, volume: service_spec_pb2.EncryptedVolume) -> bytes:
        try:
            value = self._key(realm, volume)
        except VaultError as e:
            self._vault.audit(
                "agent",
                "volume-key",
                realm=realm,
                locker=volume.key_locker,
                names=[volume.key_name],
                outcome=e.reason,
                correlation_id=f"{service}:{volume.volume}",
            )
            raise VolumeKeyError(
                f"the key of volume {realm}/{volume.volume} is unavailable: {e.message}",
                remedy=e.remedy,
            ) from e
        self._vault.audit(
            "agent",
            "volume-key",
            realm=realm,
            locker=volume.key_locker,
            names=[volume.key_name],
            correlation_id=f"{service}:{volume.volume}",
        )
        return gocryptfs.check_key(value)


class VolumeMountingRuntime(DelegatingRuntime[ContainerRuntime]):
    """A `ContainerRuntime` whose containers see their encrypted volumes' plaintext."""

    def __init__(
        self, inner: ContainerRuntime, docker: DockerRuntime, mounts: VolumeMounts, keys: VaultKeys
    ) -> None:
        super().__init__(inner)
        self._docker = docker
        self._mounts = mounts
        self._keys = keys

    def binds(self) -> dict[str, list[str]]:
        """Every container of this agent (any state) -> the host paths it bind-mounts."""
        out: dict[str, list[str]] = {}
        for info in self._docker.list_managed():
            try:
                attrs = self._docker.client().containers.get(info.id).attrs
            except Exception:  # gone meanwhile: it binds nothing
                continue
            out[info.name.lstrip("/")] = [
                str(m.get("Source", ""))
                for m in attrs.get("Mounts") or []
                if m.get("Type") == "bind"
            ]
        return out

    def create(
        self,
        spec: service_spec_pb2.ServiceSpec,
        *,
        fingerprint: str,
        gpus: GpuAssignment | None = None,
    ) -> ContainerInfo:
        if not any(is_encrypted(v) for v in spec.volumes):
            return self._inner.create(spec, fingerprint=fingerprint, gpus=gpus)
        if self._inner.inspect_service(spec.realm, spec.name) is not None:
            # The name is taken: the engine refuses below; its mounts are not ours to touch.
            return self._inner.create(spec, fingerprint=fingerprint, gpus=gpus)
        name = container_name(spec.realm, spec.name, self._docker.settings.name_prefix)
        uid, gid = image_user(self._docker.client(), spec.image)
        plains = self._mounts.acquire(name, spec, uid, gid, self._keys)
        mounted = service_spec_pb2.ServiceSpec()
        mounted.CopyFrom(spec)
        for index, plain in plains.items():
            original = spec.volumes[index]
            version = (
                original.kind == service_spec_pb2.VOLUME_KIND_VERSIONED
                and not original.encrypted.working_copy
            )
            mounted.volumes[index].CopyFrom(
                service_spec_pb2.VolumeMount(
                    kind=service_spec_pb2.VOLUME_KIND_BIND,
                    source=str(plain),
                    target=original.target,
                    read_only=original.read_only or version,
                )
            )
        try:
            return self._inner.create(mounted, fingerprint=fingerprint, gpus=gpus)
        except BaseException:
            self._mounts.release(name)
            raise

    def remove(self, container: str, *, force: bool = False) -> bool:
        try:
            info: ContainerInfo | None = self._inner.inspect(container)
        except ContainerNotFoundError:
            info = None
        removed = self._inner.remove(container, force=force)
        if info is not None:
            self._mounts.release(info.name.lstrip("/"))
        return removed

"""Admission for services with encrypted volumes: pin what they open, refuse what cannot.

`stamp` sets, in a copy of each spec, the key locker's current revision (a changed key
changes the fingerprint: the volume's services restart at the next apply) and, for a
version mount of a versioned volume, the version it resolves to (the newest, unless
pinned), so a new snapshot restarts the readers of the newest at the next apply.
`refuse` adds a refusal to every START or RESTART whose backend cannot run here
(VOLUME_BACKEND_UNAVAILABLE, e.g. LUKS2 without device-mapper), whose key locker or key
is missing (LOCKER_MISSING, VOLUME_KEY_MISSING), whose vault is locked (VAULT_LOCKED), or
whose version does not exist (VOLUME_VERSION_MISSING), and a LUKS2 volume that is not
of type encrypted or has no usable size (INVALID_SPEC; config validation says so first,
this catches specs sent without it). Admission stays atomic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.admission.refusals import by_service, refusal
from ozwald_agent.secrets.vault import Vault
from ozwald_agent.volumes import luks
from ozwald_agent.volumes.mounts import VolumeMounts, backend_unavailable_reason, is_encrypted

_STARTS = (plan_pb2.ACTION_KIND_START, plan_pb2.ACTION_KIND_RESTART)
_KEYED = (service_spec_pb2.VOLUME_KIND_ENCRYPTED, service_spec_pb2.VOLUME_KIND_VERSIONED)


class VolumesGate:
    def __init__(
        self,
        vault: Vault,
        mounts: VolumeMounts,
        unavailable: Callable[
            [service_spec_pb2.EncryptionBackend.ValueType], str | None
        ] = backend_unavailable_reason,
    ) -> None:
        self._vault = vault
        self._mounts = mounts
        self._unavailable = unavailable

    def stamp(
        self, services: Sequence[service_spec_pb2.ServiceSpec]
    ) -> list[service_spec_pb2.ServiceSpec]:
        stamped = []
        for spec in services:
            if not any(is_encrypted(v) for v in spec.volumes):
                stamped.append(spec)
                continue
            copy = service_spec_pb2.ServiceSpec()
            copy.CopyFrom(spec)
            for mount in copy.volumes:
                enc = mount.encrypted
                if mount.kind in _KEYED:
                    enc.key_revision = self._vault.current_revision(spec.realm, enc.key_locker) or 0
                if mount.kind == service_spec_pb2.VOLUME_KIND_VERSIONED and not enc.working_copy:
                    enc.resolved_version = enc.version or self._mounts.newest_version(
                        spec.realm, enc.volume
                    )
            stamped.append(copy)
        return stamped

    def refuse(self, result: plan_pb2.Plan) -> None:
        """Adds refusals for volumes that cannot be opened; changes `result`."""
        found: list[plan_pb2.Refusal] = []
        for action in result.actions:
            if action.kind in _STARTS:
                found.extend(self._refusals(action))
        if found:
            result.refusals.extend(found)
            ordered = by_service(list(result.refusals))
            del result.refusals[:]
            result.refusals.extend(ordered)
            result.admitted = False

    def _refusals(self, action: plan_pb2.PlannedAction) -> list[plan_pb2.Refusal]:
        key = (action.realm, action.name)
        found = []
        locked_reported = False
        for mount in action.spec.volumes:
            if not is_encrypted(mount):
                continue
            enc = mount.encrypted
            what = f"volume {enc.volume!r} (at {mount.target})"
            reason = self._unavailable(enc.backend)
            if reason is not None:
                found.append(
                    refusal(
                        key,
                        plan_pb2.REFUSAL_REASON_VOLUME_BACKEND_UNAVAILABLE,
                        f"{what} needs the {_backend(enc.backend)} backend, which cannot run "
                        f"on this host: {reason}",
                        "run the service on a host where it can, or declare the volume with "
                        "backend: gocryptfs",
                        subject=enc.volume,
                    )
                )
                continue
            invalid = _luks2_invalid(mount)
            if invalid is not None:
                found.append(
                    refusal(
                        key,
                        plan_pb2.REFUSAL_REASON_INVALID_SPEC,
                        f"{what}: {invalid}",
                        "declare it as type encrypted with a size (e.g. size: 10GiB), or use "
                        "backend: gocryptfs",
                        subject=enc.volume,
                    )
                )
                continue
            if mount.kind in _KEYED:
                if enc.key_revision == 0:
                    found.append(
                        refusal(
                            key,
                            plan_pb2.REFUSAL_REASON_LOCKER_MISSING,
                            f"{what} takes its key from locker {enc.key_locker!r}, which the "
                            f"vault of realm {action.realm!r} does not hold",
                            f"set it: `ozwald secrets set {enc.key_locker} {enc.key_name} "
                            f"--realm {action.realm}` (a long random value on stdin)",
                            subject=enc.key_locker,
                        )
                    )
                elif not self._has_key(action.realm, enc):
                    found.append(
                        refusal(
                            key,
                            plan_pb2.REFUSAL_REASON_VOLUME_KEY_MISSING,
                            f"{what} takes its key from secret {enc.key_name!r} of locker "
                            f"{enc.key_locker!r}, which has no such secret",
                            f"set it: `ozwald secrets set {enc.key_locker} {enc.key_name} "
                            f"--realm {action.realm}` (a long random value on stdin)",
                            subject=enc.volume,
                        )
                    )
                elif not self._vault.unlocked and not locked_reported:
                    locked_reported = True
                    found.append(
                        refusal(
                            key,
                            plan_pb2.REFUSAL_REASON_VAULT_LOCKED,
                            f"{what} takes its key from the vault, and the agent's vault is locked",
                            "unlock it with `ozwald secrets unlock` (passphrase on stdin), or "
                            "start the agent with --vault-passphrase-file",
                        )
                    )
            if mount.kind == service_spec_pb2.VOLUME_KIND_VERSIONED and not enc.working_copy:
                number = enc.resolved_version
                if number == 0 or not self._mounts.has_version(action.realm, enc.volume, number):
                    which = f"version {number}" if number else "any version yet"
                    found.append(
                        refusal(
                            key,
                            plan_pb2.REFUSAL_REASON_VOLUME_VERSION_MISSING,
                            f"{what} is versioned and this host has no {which} of it",
                            f"make one: `ozwald volumes snapshot {action.realm} {enc.volume}` "
                            "(after a service wrote its working copy), or pin an existing "
                            f"one (`ozwald volumes versions {action.realm} {enc.volume}`)",
                            subject=enc.volume,
                        )
                    )
        return found

    def _has_key(self, realm: str, enc: service_spec_pb2.EncryptedVolume) -> bool:
        states = self._vault.lockers(realm, enc.key_locker)
        return bool(states) and any(s.name == enc.key_name for s in states[0].secrets)


def _luks2_invalid(mount: service_spec_pb2.VolumeMount) -> str | None:
    if mount.encrypted.backend != service_spec_pb2.ENCRYPTION_BACKEND_LUKS2:
        return None
    if mount.kind != service_spec_pb2.VOLUME_KIND_ENCRYPTED:
        return "the luks2 backend supports only volumes of type encrypted"
    if mount.encrypted.size_bytes < luks.MIN_SIZE_BYTES:
        return (
            f"a luks2 volume needs a size of at least {luks.MIN_SIZE_BYTES // 2**20} MiB "
            f"(got {mount.encrypted.size_bytes} bytes)"
        )
    return None


def _backend(backend: service_spec_pb2.EncryptionBackend.ValueType) -> str:
    return {
        service_spec_pb2.ENCRYPTION_BACKEND_GOCRYPTFS: "gocryptfs",
        service_spec_pb2.ENCRYPTION_BACKEND_LUKS2: "luks2",
    }.get(backend, "unset")

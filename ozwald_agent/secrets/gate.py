"""Admission for services that need lockers: pin revisions, refuse what cannot start.

The provisioner calls `stamp` on the services of every plan: each `SecretLockerRef`
gets the locker's current revision, which makes the revision part of the service's
fingerprint (a re-apply after a secret changed restarts exactly the services that use
it; nothing else) and of its stored desired spec (a restart after a crash delivers the
same values). `refuse` then adds a refusal to every START or RESTART whose locker is
missing (LOCKER_MISSING) or whose vault is locked (VAULT_LOCKED): a service never
starts without its secrets. `retire_unused` lets the vault drop revisions that no
desired service names any more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.admission.refusals import by_service, refusal
from ozwald_agent.secrets.vault import Vault

_STARTS = (plan_pb2.ACTION_KIND_START, plan_pb2.ACTION_KIND_RESTART)


class SecretsGate:
    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    def stamp(
        self, services: Sequence[service_spec_pb2.ServiceSpec]
    ) -> list[service_spec_pb2.ServiceSpec]:
        stamped = []
        for spec in services:
            if not spec.secret_lockers:
                stamped.append(spec)
                continue
            copy = service_spec_pb2.ServiceSpec()
            copy.CopyFrom(spec)
            for ref in copy.secret_lockers:
                ref.revision = self._vault.current_revision(spec.realm, ref.locker) or 0
            stamped.append(copy)
        return stamped

    def refuse(self, result: plan_pb2.Plan) -> None:
        """Adds refusals for lockers that are missing or locked; changes `result`."""
        found: list[plan_pb2.Refusal] = []
        for action in result.actions:
            if action.kind not in _STARTS or not action.spec.secret_lockers:
                continue
            key = (action.realm, action.name)
            missing = [r.locker for r in action.spec.secret_lockers if r.revision == 0]
            for locker in missing:
                found.append(
                    refusal(
                        key,
                        plan_pb2.REFUSAL_REASON_LOCKER_MISSING,
                        f"needs locker {locker!r}, which the vault of realm {action.realm!r} "
                        "does not hold",
                        f"create it: `ozwald secrets set {locker} NAME --realm {action.realm}` "
                        "(value on stdin) or `ozwald secrets import`",
                        subject=locker,
                    )
                )
            if not missing and not self._vault.unlocked:
                found.append(
                    refusal(
                        key,
                        plan_pb2.REFUSAL_REASON_VAULT_LOCKED,
                        "needs secrets from lockers "
                        + ", ".join(r.locker for r in action.spec.secret_lockers)
                        + ", and the agent's vault is locked",
                        "unlock it with `ozwald secrets unlock` (passphrase on stdin), or start "
                        "the agent with --vault-passphrase-file",
                    )
                )
        if found:
            result.refusals.extend(found)
            ordered = by_service(list(result.refusals))
            del result.refusals[:]
            result.refusals.extend(ordered)
            result.admitted = False

    def retire_unused(self, specs: Iterable[service_spec_pb2.ServiceSpec]) -> None:
        specs = list(specs)
        in_use = {
            (spec.realm, ref.locker, ref.revision) for spec in specs for ref in spec.secret_lockers
        }
        # Encrypted volumes open with the key revision admission pinned: keep it too.
        in_use |= {
            (spec.realm, mount.encrypted.key_locker, mount.encrypted.key_revision)
            for spec in specs
            for mount in spec.volumes
            if mount.encrypted.key_locker and mount.encrypted.key_revision
        }
        self._vault.retire_unused(in_use)

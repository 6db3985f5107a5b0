"""Applying the orchestrator's Assignment as the agent's FLEET set, and answering it.

An assignment is the host's complete fleet set, so applying one is the provisioner's
atomic apply of the FLEET scope: all of it is admitted and stored, or nothing changes and
the refused plan goes back. Its version and a digest of its services are stored after the
apply, so a restarted agent tells the orchestrator what it runs and the same assignment is
not applied twice (a re-apply would bump the generation and retry failed instances behind
the orchestrator's back). The digest guards against an orchestrator whose versions started
again from 1 (a new store): the same number with other services is applied.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable

from ozwald.agent.v1 import plan_pb2, service_scope_pb2
from ozwald.common.v1 import service_spec_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2 as link_pb2

from ozwald_agent.fleet.protocols import AssignmentVersions, FleetProvisioner
from ozwald_agent.provisioning.provisioner import AdmissionRefusedError
from ozwald_agent.runtime.errors import ContainerRuntimeError

logger = logging.getLogger(__name__)

FLEET = service_scope_pb2.SERVICE_SCOPE_FLEET


class AssignmentHandler:
    """Runs on the link's thread, one assignment at a time."""

    def __init__(self, provisioner: FleetProvisioner, versions: AssignmentVersions) -> None:
        self._provisioner = provisioner
        self._versions = versions

    def applied_version(self) -> int:
        return self._versions.fleet_assignment()[0]

    def handle(self, assignment: link_pb2.Assignment) -> link_pb2.AssignmentResult:
        version = assignment.version
        digest = assignment_digest(assignment.services)
        wanted = {(s.realm, s.name) for s in assignment.services}
        # Already applied unless the FLEET set lost a service since (stopped by name on
        # this host): then it is applied again, which restores it.
        if (version, digest) == self._versions.fleet_assignment() and (
            wanted == self._provisioner.scope_keys(FLEET)
        ):
            logger.debug("fleet assignment v%d is already applied", version)
            return link_pb2.AssignmentResult(version=version, admitted=True)
        try:
            admitted, _, _ = self._provisioner.apply(list(assignment.services), FLEET)
        except AdmissionRefusedError as e:
            logger.warning(
                "refused fleet assignment v%d: %s",
                version,
                "; ".join(f"{r.realm}:{r.name}: {r.message}" for r in e.plan.refusals),
                extra={"assignment_version": version},
            )
            return link_pb2.AssignmentResult(version=version, admitted=False, plan=e.plan)
        except ContainerRuntimeError as e:
            logger.warning("cannot apply fleet assignment v%d: %s", version, e)
            return link_pb2.AssignmentResult(
                version=version, admitted=False, error=f"the container engine failed: {e}"
            )
        except Exception as e:
            logger.exception("cannot apply fleet assignment v%d", version)
            return link_pb2.AssignmentResult(
                version=version, admitted=False, error=f"the agent failed to apply it: {e}"
            )
        self._versions.set_fleet_assignment(version, digest)
        logger.info(
            "applied fleet assignment v%d: %s",
            version,
            _summary(admitted) or "no fleet services",
            extra={"assignment_version": version},
        )
        return link_pb2.AssignmentResult(version=version, admitted=True, plan=admitted)


def assignment_digest(services: Iterable[service_spec_pb2.ServiceSpec]) -> str:
    """SHA-256 of the services, sorted: the order they come in does not matter."""
    digest = hashlib.sha256()
    for blob in sorted(s.SerializeToString(deterministic=True) for s in services):
        digest.update(len(blob).to_bytes(8, "big"))
        digest.update(blob)
    return digest.hexdigest()


def _summary(admitted: plan_pb2.Plan) -> str:
    """`2 start, 1 keep` for this scope's actions (other scopes' are not ours to count)."""
    kinds = Counter(
        plan_pb2.ActionKind.Name(a.kind).removeprefix("ACTION_KIND_").lower()
        for a in admitted.actions
        if not a.persistent
    )
    return ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))

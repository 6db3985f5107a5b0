"""plan(): the diff between desired and running services, admitted against the host.

The order of work, which is also the order a reader can follow in a plan:

1. Validate the desired set (one entry per service, well-formed specs, no persistent
   names) and diff it against what runs.
2. Services that stay (kept, persistent) hold their CPUs, GPUs and ports first.
3. Services that leave (stopped, and the old instance of restarted ones) give their
   memory back.
4. Arriving services (started, and the new instance of restarted ones) are admitted one by
   one, hardest to place first (first-fit decreasing): pinned GPUs, then whole GPUs, then
   shared GPUs, each by decreasing VRAM and GPU count, then by decreasing memory and CPUs;
   ties by realm and name. The order depends on the specs alone, not on the order they
   were given in, so the same input always gives the same GPUs. Each
   resource is checked on its own and every refusal is kept: a service refused for one
   reason still claims what fits of the others, so the plan shows all that must change.
5. depends_on is checked across everything that will run.

The result is all or nothing: `admitted` only when there is no refusal. Nothing here does
I/O; the host's facts come in through `facts`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import host_profile_pb2, service_spec_pb2

from ozwald_agent.admission.capacity import CpuLedger, MemoryLedger
from ozwald_agent.admission.dependencies import check_dependencies, start_order, stop_order
from ozwald_agent.admission.diff import KEEP, STOP, Change, diff
from ozwald_agent.admission.facts import HostFacts
from ozwald_agent.admission.figures import Figures, figures_for, wants_gpus, wants_whole_gpus
from ozwald_agent.admission.footprints import FootprintBook, NoFootprints
from ozwald_agent.admission.gpu_assignment import GpuLedger, Holding
from ozwald_agent.admission.host_checks import check_host
from ozwald_agent.admission.keys import ServiceKey, ref
from ozwald_agent.admission.ports import PortBook
from ozwald_agent.admission.refusals import by_service
from ozwald_agent.admission.running import RunningService
from ozwald_agent.admission.validation import validate


def plan(
    desired: Sequence[service_spec_pb2.ServiceSpec],
    running: Sequence[RunningService],
    host: host_profile_pb2.HostProfile,
    facts: HostFacts,
    footprints: FootprintBook | None = None,
) -> plan_pb2.Plan:
    """Plans the complete desired set of dynamic services against `host`.

    `running` is every service the agent runs now, persistent ones included (for a key
    listed twice the first entry counts). The inputs are not modified.
    """
    book: FootprintBook = footprints if footprints is not None else NoFootprints()
    now = _by_key(running)
    checked = validate(desired, {k: r for k, r in now.items() if r.persistent})
    changes = diff(checked.accepted, list(now.values()))
    wanted = {c.key: figures_for(c.spec, book) for c in changes if c.spec is not None}
    current = {k: figures_for(r.spec, book) for k, r in now.items()}

    admission = _Admission(host, now, current, facts)
    for change in changes:
        if change.kind == KEEP:
            admission.hold(change, wanted[change.key])
    for change in changes:
        if change.leaves:
            admission.release(change)
    refusals = list(checked.refusals)
    arriving = [c for c in changes if c.arrives and c.key not in checked.malformed]
    for change in sorted(arriving, key=lambda c: _hardest_first(c, wanted[c.key])):
        refusals.extend(admission.admit(change, wanted[change.key]))
    will_run = {c.key: c.spec for c in changes if c.spec is not None}
    refusals.extend(check_dependencies(will_run, {c.key for c in changes if c.kind == STOP}))
    leaving = {c.key for c in changes if c.leaves}
    starting = {c.key for c in changes if c.arrives}

    result = plan_pb2.Plan(
        admitted=not refusals,
        actions=[
            _action(c, wanted.get(c.key) or current[c.key], admission.assignments) for c in changes
        ],
        stop_order=[ref(k) for k in stop_order({k: r.spec for k, r in now.items()}, leaving)],
        start_order=[ref(k) for k in start_order(will_run, starting)],
        refusals=by_service(refusals),
        budget=admission.budget(),
        hostname=host.hostname,
    )
    if host.HasField("collected_at"):
        result.profile_collected_at.CopyFrom(host.collected_at)
    return result


class _Admission:
    """The host's ledgers (memory, CPU, GPUs, ports) while one plan is made."""

    def __init__(
        self,
        host: host_profile_pb2.HostProfile,
        now: dict[ServiceKey, RunningService],
        current: dict[ServiceKey, Figures],
        facts: HostFacts,
    ) -> None:
        self._now = now
        self._current = current
        self._facts = facts
        self._holdings = {k: _holding(r, current[k]) for k, r in now.items()}
        self._memory = MemoryLedger(host.memory)
        self._cpu = CpuLedger(host.cpu)
        self._gpus = GpuLedger(host, list(self._holdings.values()))
        self._ports = PortBook(r.spec for r in now.values())
        self.assignments: dict[ServiceKey, plan_pb2.GpuAssignment] = {}

    def hold(self, change: Change, figures: Figures) -> None:
        """A service that stays (kept, persistent) keeps its CPUs, GPUs and ports."""
        assert change.spec is not None  # only STOP has none
        self._cpu.hold(change.key, figures.cpus)
        self._ports.hold(change.spec)
        holding = self._holdings[change.key]
        if holding.uuids:
            self.assignments[change.key] = self._gpus.keep(
                holding, change.spec.resources.gpus.vendor
            )

    def release(self, change: Change) -> None:
        """A service that stops or restarts gives its memory back; its GPUs and ports were
        never held for the plan."""
        self._memory.release(self._current[change.key].memory)
        holding = self._holdings[change.key]
        if change.kind == STOP and holding.uuids:
            vendor = self._now[change.key].spec.resources.gpus.vendor
            self.assignments[change.key] = self._gpus.describe(holding, vendor)

    def admit(self, change: Change, figures: Figures) -> list[plan_pb2.Refusal]:
        """Claims what fits of an arriving service's needs; refusals for the rest."""
        spec = change.spec
        assert spec is not None  # arrivals always have a spec
        refusals = check_host(spec, self._facts)
        for refused in (
            self._memory.claim(change.key, figures.memory),
            self._cpu.claim(change.key, figures.cpus),
        ):
            if refused is not None:
                refusals.append(refused)
        if figures.vram_per_gpu is not None:
            outcome = self._gpus.assign(change.key, spec, figures.vram_per_gpu)
            if isinstance(outcome, plan_pb2.GpuAssignment):
                self.assignments[change.key] = outcome
            else:
                refusals.extend(outcome)
        refusals.extend(self._ports.claim(spec, self._facts))
        return refusals

    def budget(self) -> plan_pb2.HostBudget:
        return plan_pb2.HostBudget(
            memory=self._memory.budget(), cpu=self._cpu.budget(), gpus=self._gpus.budget()
        )


def _by_key(running: Sequence[RunningService]) -> dict[ServiceKey, RunningService]:
    now: dict[ServiceKey, RunningService] = {}
    for service in running:
        now.setdefault(service.key, service)
    return now


def _holding(service: RunningService, figures: Figures) -> Holding:
    vram = figures.vram_per_gpu.amount if figures.vram_per_gpu is not None else 0
    return Holding(service.key, service.gpu_uuids, wants_whole_gpus(service.spec), vram)


def _hardest_first(change: Change, figures: Figures) -> tuple[int, int, int, int, float, str, str]:
    spec = change.spec
    assert spec is not None
    gpus = spec.resources.gpus
    if gpus.device_ids:
        tier = 0
    elif wants_whole_gpus(spec):
        tier = 1
    elif wants_gpus(spec):
        tier = 2
    else:
        tier = 3
    vram = figures.vram_per_gpu.amount if figures.vram_per_gpu is not None else 0
    return (
        tier,
        -vram,
        -gpus.count,
        -figures.memory.amount,
        -figures.cpus,
        spec.realm,
        spec.name,
    )


def _action(
    change: Change,
    figures: Figures,
    assignments: dict[ServiceKey, plan_pb2.GpuAssignment],
) -> plan_pb2.PlannedAction:
    action = plan_pb2.PlannedAction(
        kind=change.kind,
        realm=change.key[0],
        name=change.key[1],
        reason=change.reason,
        changed_fields=change.changed_fields,
        fingerprint=change.fingerprint,
        running_fingerprint=change.running.fingerprint if change.running is not None else "",
        persistent=change.running is not None and change.running.persistent,
    )
    if change.spec is not None:
        action.spec.CopyFrom(change.spec)
    action.resources.CopyFrom(figures.to_proto())
    if change.key in assignments:
        action.gpus.CopyFrom(assignments[change.key])
    return action

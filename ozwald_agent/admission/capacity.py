"""Main memory and CPU accounting.

Memory. The kernel's MemAvailable, taken when the host was profiled, already excludes
what every running process uses, Ozwald's services included. So:

    free for arrivals = available_bytes
                        + figure of every service that stops or restarts (it gives it back)
                        - figure of every service admitted before this one

where a service's figure is its recorded footprint (peak memory), else its declared
memory limit, else 0. Kept and persistent services are not counted again: they are inside
MemAvailable already.

Known limits, all of them ways the model can be wrong about the future:
- A running service still growing (a model loading) has not taken its peak yet, so
  MemAvailable overstates what is free by the difference.
- A stopping service gives back its figure, not what it really holds: with a declared
  limit far above its real use, admission counts memory that will not come back.
- A service with neither footprint nor declared memory counts 0, so it is admitted
  whatever memory is left.
- Page cache the kernel could drop counts as available (that is what MemAvailable means);
  swap does not count.

CPU. A budget of declared limits: the CPUs declared by everything that will run (kept,
persistent, started, restarted) may not exceed the cores the agent may schedule on. A
service that declares no CPUs claims none.
"""

from __future__ import annotations

from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import host_profile_pb2

from ozwald_agent.admission.figures import Figure
from ozwald_agent.admission.keys import ServiceKey, labels
from ozwald_agent.admission.refusals import BYTES, CPU_CORES, quantity, refusal
from ozwald_agent.admission.units import cores, counted, gib


class MemoryLedger:
    def __init__(self, memory: host_profile_pb2.MemoryInfo) -> None:
        self._total = memory.total_bytes
        self._available = memory.available_bytes
        self._released = 0
        self._leavers = 0
        self._claims: dict[ServiceKey, int] = {}

    def release(self, figure: Figure) -> None:
        """A running service stops (or restarts): its figure comes back."""
        self._released += figure.amount
        if figure.amount:
            self._leavers += 1

    def claim(self, key: ServiceKey, figure: Figure) -> plan_pb2.Refusal | None:
        """Counts an arriving service's figure, or says why it does not fit."""
        left = self.left
        if figure.amount <= left:
            if figure.amount:
                self._claims[key] = figure.amount
            return None
        claimed = sum(self._claims.values())
        arithmetic = f"{gib(self._available)} available on the host"
        if self._released:
            arithmetic += (
                f" + {gib(self._released)} given back by "
                f"{counted(self._leavers, 'stopped or restarted service')}"
            )
        if claimed:
            arithmetic += (
                f" - {gib(claimed)} claimed by {counted(len(self._claims), 'other service')} "
                f"admitted before it ({labels(self._claims)})"
            )
        return refusal(
            key,
            plan_pb2.REFUSAL_REASON_INSUFFICIENT_MEMORY,
            f"needs {gib(figure.amount)} memory ({figure.provenance()}); "
            f"{gib(left)} is free for it of {gib(self._total)}: {arithmetic}",
            "lower the service's memory (resources.memory), stop services this host "
            "runs, or run it on a host with more memory",
            quantity=quantity(figure.amount, left, self._total, BYTES),
            involved=self._claims,
        )

    @property
    def left(self) -> int:
        return self._available + self._released - sum(self._claims.values())

    def budget(self) -> plan_pb2.MemoryBudget:
        return plan_pb2.MemoryBudget(
            total_bytes=self._total,
            available_bytes=self._available,
            released_bytes=self._released,
            claimed_bytes=sum(self._claims.values()),
            left_bytes=max(0, self.left),
        )


class CpuLedger:
    def __init__(self, cpu: host_profile_pb2.CpuInfo) -> None:
        self._usable = cpu.usable_cores
        self._holders: dict[ServiceKey, float] = {}

    def hold(self, key: ServiceKey, cpus: float) -> None:
        """A service that stays (kept or persistent) keeps its CPUs, fit or not."""
        if cpus:
            self._holders[key] = cpus

    def claim(self, key: ServiceKey, cpus: float) -> plan_pb2.Refusal | None:
        """Counts an arriving service's declared CPUs, or says why they do not fit."""
        claimed = sum(self._holders.values())
        left = self._usable - claimed
        # A little slack so that 0.1 + 0.2 cores fit in 0.3.
        if cpus <= left + 1e-9:
            self.hold(key, cpus)
            return None
        others = (
            f", after {cores(claimed)} declared by "
            f"{counted(len(self._holders), 'other service')} that will run "
            f"({labels(sorted(self._holders))})"
            if self._holders
            else ""
        )
        return refusal(
            key,
            plan_pb2.REFUSAL_REASON_INSUFFICIENT_CPU,
            f"needs {cores(cpus)} CPU {'core' if cpus == 1 else 'cores'} (declared); "
            f"{cores(max(0.0, left))} of {self._usable} usable cores left{others}",
            "lower the service's cpus (resources.cpus), stop services that declare CPUs, "
            "or run it on a host with more cores",
            quantity=quantity(cpus, max(0.0, left), self._usable, CPU_CORES),
            involved=self._holders,
        )

    def budget(self) -> plan_pb2.CpuBudget:
        return plan_pb2.CpuBudget(
            usable_cores=self._usable, claimed_cores=sum(self._holders.values())
        )

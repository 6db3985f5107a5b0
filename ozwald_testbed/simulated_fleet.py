"""Many simulated agents on one event loop: a fleet for scenario tests and benchmarks.

Hosts come from the recorded GPU fixtures (cycled, with varied cores and memory) or from
rows of the openb node list. Each agent holds its own channel: its client certificate is
its identity, and gRPC keeps one TCP connection per distinct set of credentials anyway.
Starting thousands at once would make the orchestrator do thousands of TLS handshakes in
the same second, so `start` can pace them.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ozwald_testbed.sim_pki import FleetPki
from ozwald_testbed.simulated_agent import SimulatedAgent
from ozwald_testbed.simulated_hardware import (
    GIB,
    SimulatedHardware,
    from_fixture,
    from_openb_row,
    openb_rows,
)
from ozwald_testbed.simulated_runtime import RuntimeTiming

# Cores and memory given to fixture hosts in turn (the fixtures record only GPUs).
_FIXTURE_SIZES: tuple[tuple[int, int], ...] = ((32, 256 * GIB), (64, 512 * GIB), (16, 128 * GIB))
# Fixtures whose GPUs a scheduler can use; the others are failure cases of detection.
USABLE_FIXTURES: tuple[str, ...] = (
    "nvidia_h100_x8",
    "nvidia_h100_x1",
    "nvidia_rtx4090_x2",
    "nvidia_a100_x2_gpu_lost",
    "amd_mi300x_x1",
    "amd_mi210_x2_sysfs",
    "mixed_nvidia_amd",
    "cpu_only",
)


@dataclass(frozen=True)
class SimulatedHost:
    """One host to simulate: its id (its certificate's CN), hardware and labels."""

    host_id: str
    hardware: SimulatedHardware
    labels: Mapping[str, str] = field(default_factory=dict)


def hosts_from_fixtures(
    directory: Path,
    count: int,
    *,
    names: Sequence[str] = USABLE_FIXTURES,
    prefix: str = "sim",
) -> list[SimulatedHost]:
    """`count` hosts cycling through the named fixtures; labels say which fixture and zone."""
    loaded = []
    for i, name in enumerate(names):
        cores, memory = _FIXTURE_SIZES[i % len(_FIXTURE_SIZES)]
        loaded.append(
            (
                name,
                from_fixture(
                    directory / f"{name}.json", logical_cores=cores, memory_total_bytes=memory
                ),
            )
        )
    hosts = []
    for i, (name, hardware) in zip(range(count), itertools.cycle(loaded), strict=False):
        hosts.append(
            SimulatedHost(
                host_id=f"{prefix}-{i:04d}",
                hardware=hardware,
                labels={"fixture": name, "zone": f"zone-{i % 3}"},
            )
        )
    return hosts


def hosts_from_openb(csv_path: Path, count: int, *, prefix: str = "") -> list[SimulatedHost]:
    """The first `count` nodes of an openb node list (cycled when it has fewer)."""
    rows = list(openb_rows(csv_path))
    if not rows:
        raise ValueError(f"{csv_path} lists no nodes")
    hosts = []
    for i, row in zip(range(count), itertools.cycle(rows), strict=False):
        base = row.get("sn", f"openb-{i}")
        host_id = f"{prefix}{base}" if i < len(rows) else f"{prefix}{base}-{i // len(rows)}"
        hosts.append(
            SimulatedHost(
                host_id=host_id,
                hardware=from_openb_row(row),
                labels={"gpu-model": row.get("model") or "none"},
            )
        )
    return hosts


class SimulatedFleet:
    """Simulated agents that dial one orchestrator, each with its own certificate."""

    def __init__(
        self,
        target: str,
        pki: FleetPki,
        *,
        timing: RuntimeTiming | None = None,
        channel_options: tuple[tuple[str, str | int], ...] = (),
    ) -> None:
        self.target = target
        self.pki = pki
        self.timing = timing
        self.channel_options = channel_options
        self.agents: dict[str, SimulatedAgent] = {}

    def add(self, host: SimulatedHost) -> SimulatedAgent:
        agent = SimulatedAgent(
            host.host_id,
            host.hardware,
            target=self.target,
            credentials=self.pki.agent(host.host_id),
            labels=host.labels,
            timing=self.timing,
            channel_options=self.channel_options,
        )
        self.agents[host.host_id] = agent
        return agent

    def add_all(self, hosts: Iterable[SimulatedHost]) -> list[SimulatedAgent]:
        return [self.add(h) for h in hosts]

    def __getitem__(self, host_id: str) -> SimulatedAgent:
        return self.agents[host_id]

    def __iter__(self) -> Iterator[SimulatedAgent]:
        return iter(self.agents.values())

    def __len__(self) -> int:
        return len(self.agents)

    async def start(self, *, per_second: float | None = None) -> None:
        """Starts every agent; with `per_second`, no faster than that."""
        for i, agent in enumerate(self.agents.values()):
            agent.start()
            if per_second and i % max(1, int(per_second / 20)) == 0:
                # Pace in small bursts: sleeping per agent would cost more than it spreads.
                await asyncio.sleep(max(1, int(per_second / 20)) / per_second)

    async def wait_connected(self, timeout: float) -> None:
        """Waits until every running agent is registered; TimeoutError names the others."""
        waiting = [a for a in self.agents.values() if a.running]
        try:
            await asyncio.wait_for(
                asyncio.gather(*(a.wait_connected(timeout) for a in waiting)), timeout
            )
        except TimeoutError:
            missing = [a.host_id for a in waiting if not a.connected]
            raise TimeoutError(
                f"{len(missing)} of {len(waiting)} simulated agents did not register within "
                f"{timeout:g} s (first: {', '.join(missing[:5])})"
            ) from None

    async def stop(self) -> None:
        await asyncio.gather(*(a.stop() for a in self.agents.values()))

    def connected_count(self) -> int:
        return sum(1 for a in self.agents.values() if a.connected)

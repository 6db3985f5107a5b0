"""place-throughput: 10,000 instances placed on 5,000 simulated hosts, committed to the store.

The fleet (seeded, the same every run): the 1,213 GPU nodes of the openb trace
(../shared/data/openb/openb_node_list_gpu_node.csv: P100, T4, V100, A10 and the
undisclosed G2/G3 cards, VRAM as ozwald_testbed.simulated_hardware states it), and 3,787
hosts with the GPUs of the recorded fixtures in tests/fixtures/hardware (H100 x8 with one
GPU in MIG mode, H100, A100, RTX 4090 x2, MI300X, MI210 x2, a mixed NVIDIA + AMD box, and
the CPU-only ones: no driver, failing NVML, no /dev/kfd), with cores and memory drawn from
typical server sizes. Every host has a `zone` label (a, b or c).

The workload (seeded): deployments of 1 to 8 replicas until there are 10,000 instances:
GPU-sharing services (VRAM per GPU 4-40 GiB; some with a CPU fallback variety, some any
vendor), whole-GPU services (1, 2, 4 or 8 GPUs, NVIDIA or AMD), AMD-sharing services and
CPU-only services (some publishing a host port, some spread across hosts); a fifth
require a zone, some a GPU model or a minimum VRAM.

One run: a fresh FleetLedger with the 5,000 hosts (registration is timed on its own), then
Scheduler.place for every instance in turn (binpack, then spread in its own run), then
one Instance message per instance (ASSIGNED with its host and variety, or PENDING with
the reason) written to a new SQLite store with `put_instances`, one transaction. The
placements/s figure counts placing, building the messages and the commit.

For scale, the same Scheduler with a strategy that scans every host for every instance
(the full filter chain, no index) is timed on the first 200 instances.

The peers' figures are published, not run here (no Kubernetes or Nomad on this machine):
the Kubernetes scheduler's CI threshold of 680 pods/s for 10,000 pods on 5,000 nodes, and
Nomad's C1M run, 3,750 containers/s on 5 servers. The goal is >= 3,750 placements/s on
these 2 cores.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import ROOT, Summary, progress, table
from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_orchestrator.placement import (
    Constraints,
    Demand,
    FleetLedger,
    Gpu,
    HostCapacity,
    Placement,
    PlacementRequest,
    Scheduler,
    Strategy,
    strategy_by_name,
)
from ozwald_orchestrator.placement.filters import Probe
from ozwald_orchestrator.placement.host_state import HostState
from ozwald_orchestrator.placement.strategies import Choice, SortKey, scan_all
from ozwald_orchestrator.store.sqlite import SqliteFleetStore
from ozwald_testbed.simulated_hardware import (
    SimulatedHardware,
    from_openb_row,
    load_fixtures,
    openb_rows,
)

GOAL = 3750.0
KUBERNETES = 680.0
HOSTS = 5000
INSTANCES = 10_000
SCAN_SAMPLE = 200
GIB = 1 << 30
NVIDIA, AMD = 1, 2
OPENB_NODES = ROOT.parent / "shared" / "data" / "openb" / "openb_node_list_gpu_node.csv"
FIXTURES = ROOT / "tests" / "fixtures" / "hardware"
ZONES = ("a", "b", "c")
# NVIDIA models of this fleet, as a constraint would name them, and their VRAM.
NVIDIA_MODELS = {"H100": 80 * GIB, "A100": 80 * GIB, "V100": 16 * GIB, "T4": 16 * GIB}
SERVER_SIZES = ((16, 64), (32, 128), (64, 256), (96, 512), (128, 1024))  # cores, GiB


def capacity(host_id: str, hardware: SimulatedHardware, zone: str) -> HostCapacity:
    """The host as placement sees it; GPUs in MIG mode are left out, as the agent does."""
    gpus = tuple(
        Gpu(g.index, g.uuid, g.vendor, g.name, g.memory_total_bytes)
        for g in hardware.gpus
        if not g.mig_enabled
    )
    return HostCapacity(
        host_id, {"zone": zone}, gpus, hardware.memory_total_bytes, hardware.logical_cores
    )


def fleet(rng: random.Random) -> list[HostCapacity]:
    hosts = [
        capacity(row["sn"], from_openb_row(row), ZONES[i % 3])
        for i, row in enumerate(openb_rows(OPENB_NODES))
    ]
    fixtures = load_fixtures(FIXTURES)
    for i in range(HOSTS - len(hosts)):
        cores, memory = rng.choice(SERVER_SIZES)
        base = fixtures[i % len(fixtures)]
        hardware = SimulatedHardware(
            base.description, cores, memory * GIB, base.gpus, absences=base.absences
        )
        hosts.append(capacity(f"sim-{i:04d}", hardware, ZONES[rng.randrange(3)]))
    return hosts


def _constraints(rng: random.Random, candidates: tuple[Demand, ...]) -> Constraints:
    """Constraints a fleet like this one can meet: a zone for a fifth; for NVIDIA
    services of one GPU, sometimes a model that has the VRAM, or a minimum VRAM."""
    labels = {"zone": rng.choice(ZONES)} if rng.random() < 0.2 else {}
    first = candidates[0]
    model, min_vram = "", 0
    if first.gpu_vendor == NVIDIA and first.gpu_count == 1 and rng.random() < 0.15:
        fitting = [m for m, vram in NVIDIA_MODELS.items() if vram >= first.vram_per_gpu_bytes]
        model = rng.choice(fitting)
    elif first.gpu_count and first.vram_per_gpu_bytes and rng.random() < 0.05:
        min_vram = 32 * GIB
    spread = not first.gpu_count and rng.random() < 0.3
    return Constraints(0, model, min_vram, labels, spread)


def _candidates(rng: random.Random, kind: str, number: int) -> tuple[Demand, ...]:
    memory = rng.choice([2, 4, 8, 16, 32]) * GIB
    cpus = rng.choice([0.5, 1.0, 2.0, 4.0])
    if kind == "shared":
        vendor = NVIDIA if rng.random() < 0.9 else 0
        vram = rng.choice([4, 8, 12, 16, 20, 24, 40]) * GIB
        gpu = Demand("nvidia", 1, vendor, vram, memory, cpus)
        if rng.random() < 0.5:
            return (gpu, Demand("cpu", 0, 0, 0, memory, cpus * 2))
        return (gpu,)
    if kind == "amd":
        return (Demand("amdgpu", 1, AMD, rng.choice([8, 16, 32]) * GIB, memory, cpus),)
    if kind == "whole":
        if rng.random() < 0.85:
            count, vendor = rng.choice([1, 1, 1, 2, 2, 4, 8]), NVIDIA
        else:
            count, vendor = rng.choice([1, 1, 2]), AMD  # no host here has more AMD GPUs
        return (Demand("gpu", count, vendor, 0, memory * count, cpus * count),)
    ports = frozenset({20000 + number}) if rng.random() < 0.2 else frozenset()
    return (Demand("cpu", 0, 0, 0, memory // 2, cpus, ports),)


def workload(rng: random.Random) -> list[PlacementRequest]:
    requests: list[PlacementRequest] = []
    number = 0
    while len(requests) < INSTANCES:
        kind = rng.choices(["shared", "whole", "amd", "cpu"], weights=[35, 10, 10, 45])[0]
        name = f"{kind}{number:04d}"
        candidates = _candidates(rng, kind, number)
        constraints = _constraints(rng, candidates)
        replicas = min(rng.randint(1, 8), INSTANCES - len(requests))
        requests += [
            PlacementRequest(f"{name}-{i}", name, candidates, constraints) for i in range(replicas)
        ]
        number += 1
    return requests


class FullScan:
    """binpack's order, found by scanning every host for every instance (no index)."""

    def __init__(self) -> None:
        self._binpack = strategy_by_name("binpack")

    @property
    def name(self) -> str:
        return "binpack-full-scan"

    def key(self, state: HostState, probe: Probe, positions: tuple[int, ...]) -> SortKey:
        return self._binpack.key(state, probe, positions)

    def search(self, ledger: FleetLedger, probe: Probe) -> Choice | None:
        return scan_all(self, ledger, probe)


@dataclass(frozen=True)
class Run:
    register_s: float
    place_s: float
    commit_s: float
    placed: int

    @property
    def total_s(self) -> float:
        return self.place_s + self.commit_s

    @property
    def rate(self) -> float:
        return INSTANCES / self.total_s


def messages(
    requests: Sequence[PlacementRequest], outcomes: Sequence[object], now: float
) -> list[fleet_state_pb2.Instance]:
    out = []
    for request, outcome in zip(requests, outcomes, strict=True):
        instance = fleet_state_pb2.Instance(
            id=request.instance,
            deployment=request.deployment,
            ordinal=int(request.instance.rsplit("-", 1)[1]),
            deployment_version=1,
        )
        instance.state_since.FromNanoseconds(int(now * 1e9))
        if isinstance(outcome, Placement):
            instance.host_id = outcome.host_id
            instance.variety = outcome.variety
            instance.state = fleet_state_pb2.INSTANCE_STATE_ASSIGNED
        else:
            instance.state = fleet_state_pb2.INSTANCE_STATE_PENDING
            instance.reason = getattr(outcome, "summary", "")
        out.append(instance)
    return out


def one_run(
    hosts: Sequence[HostCapacity], requests: Sequence[PlacementRequest], strategy: Strategy
) -> Run:
    began = time.perf_counter()
    ledger = FleetLedger()
    for host in hosts:
        ledger.upsert_host(host)
    registered = time.perf_counter()
    scheduler = Scheduler(ledger, strategy)
    with tempfile.TemporaryDirectory(prefix="place-throughput-") as directory:
        store = SqliteFleetStore(Path(directory) / "fleet.db")
        try:
            start = time.perf_counter()
            outcomes = scheduler.place_all(requests)
            placed = time.perf_counter()
            store.put_instances(messages(requests, outcomes, time.time()))
            committed = time.perf_counter()
        finally:
            store.close()
    return Run(
        registered - began,
        placed - start,
        committed - placed,
        sum(isinstance(o, Placement) for o in outcomes),
    )


def scan_rate(hosts: Sequence[HostCapacity], requests: Sequence[PlacementRequest]) -> float:
    ledger = FleetLedger()
    for host in hosts:
        ledger.upsert_host(host)
    scheduler = Scheduler(ledger, FullScan())
    began = time.perf_counter()
    scheduler.place_all(requests[:SCAN_SAMPLE])
    return SCAN_SAMPLE / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    hosts = fleet(rng)
    requests = workload(rng)
    gpus = sum(len(h.gpus) for h in hosts)
    progress(f"{len(hosts)} hosts ({gpus} GPUs), {len(requests)} instances")

    runs: dict[str, list[Run]] = {"binpack": [], "spread": []}
    for turn in range(args.warmup + args.runs):
        for name in ("binpack", "spread") if turn % 2 == 0 else ("spread", "binpack"):
            run = one_run(hosts, requests, strategy_by_name(name))
            which = f"run {turn - args.warmup + 1}" if turn >= args.warmup else "warm-up"
            progress(
                f"{which}: {name} placed {run.placed} in {run.place_s:.3f} s, "
                f"committed in {run.commit_s:.3f} s: {run.rate:,.0f}/s"
            )
            if turn >= args.warmup:
                runs[name].append(run)
    scans = [scan_rate(hosts, requests) for _ in range(3)]

    print(
        f"place-throughput: {len(requests):,} instances on {len(hosts):,} simulated hosts "
        f"({gpus:,} GPUs), committed to SQLite (WAL, synchronous=FULL) in one transaction"
    )
    print(f"{args.runs} measured runs per strategy after {args.warmup} warm-up(s)\n")
    rows = []
    for name, measured in runs.items():
        rates = Summary.of([r.rate for r in measured])
        rows.append(
            [
                f"ozwald {name}",
                f"{rates.median:,.0f}",
                f"{rates.low:,.0f}",
                f"{rates.high:,.0f}",
                f"{rates.spread:.0%}",
                f"{statistics.median(r.place_s for r in measured):.3f}",
                f"{statistics.median(r.commit_s for r in measured):.3f}",
                f"{measured[0].placed:,}",
            ]
        )
    scan = Summary.of(scans)
    rows.append(
        [
            f"binpack, every host scanned (first {SCAN_SAMPLE})",
            f"{scan.median:,.0f}",
            f"{scan.low:,.0f}",
            f"{scan.high:,.0f}",
            f"{scan.spread:.0%}",
            "-",
            "-",
            "-",
        ]
    )
    rows.append(["Nomad C1M (published)", f"{GOAL:,.0f}", "", "", "", "", "", ""])
    rows.append(
        ["Kubernetes CI threshold (published)", f"{KUBERNETES:,.0f}", "", "", "", "", "", ""]
    )
    headers = ["", "placements/s", "min", "max", "spread", "place s", "commit s", "placed"]
    print(table(headers, rows))
    register = statistics.median(r.register_s for r in runs["binpack"])
    print(f"\nregistering the {len(hosts):,} hosts in the ledger (not counted): {register:.3f} s")
    ours = Summary.of([r.rate for r in runs["binpack"]]).median
    print(f"ozwald binpack / Kubernetes: {ours / KUBERNETES:.2f}")
    print(f"goal (>= {GOAL:,.0f} placements/s) met: {'yes' if ours >= GOAL else 'no'}")
    print(f"RATIO place-throughput={ours / GOAL:.2f} (ozwald binpack / Nomad C1M, goal >= 1.00)")


if __name__ == "__main__":
    main()

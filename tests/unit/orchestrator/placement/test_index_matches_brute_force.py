"""The indexed search chooses exactly the host a scan of every host would choose.

The brute force here is written from the documented rules alone (filters, the agent's GPU
choice, the strategies' orderings), keeps its own copy of every host's free figures, and
is compared with the Scheduler on random small fleets and random request sequences that
include releases, hosts going down and coming back, and capacity updates.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from ozwald_orchestrator.placement import (
    Constraints,
    Demand,
    FleetLedger,
    Gpu,
    HostCapacity,
    Placement,
    PlacementRequest,
    Scheduler,
    strategy_by_name,
)

GIB = 1 << 30
NVIDIA, AMD = 1, 2

# GPU shapes to draw hosts from: uniform, mixed sizes of one vendor, mixed vendors.
SHAPES: list[tuple[tuple[int, str, int], ...]] = [
    (),
    ((NVIDIA, "NVIDIA H100 80GB", 80),) * 2,
    ((NVIDIA, "NVIDIA H100 80GB", 80),) * 4,
    ((NVIDIA, "NVIDIA RTX 4090", 24),) * 2,
    ((NVIDIA, "NVIDIA A100 40GB", 40), (NVIDIA, "NVIDIA RTX 4090", 24)),
    ((AMD, "AMD Instinct MI300X", 192),),
    ((NVIDIA, "NVIDIA RTX 4090", 24), (AMD, "AMD Radeon RX 7900 XTX", 24)),
]


@dataclass
class Host:
    """The brute force's own view of a host."""

    host_id: str
    seq: int
    labels: dict[str, str]
    gpus: list[tuple[int, int, str, int]]  # (vendor, index, model, total bytes), sorted
    gpu_free: list[int]
    memory: int
    cpu: int
    schedulable: bool = True
    ports: list[int] = field(default_factory=list)
    deployments: list[str] = field(default_factory=list)


@dataclass
class Held:
    host_id: str
    deployment: str
    demand: Demand
    positions: list[int]
    amounts: list[int]


def _milli(cpus: float) -> int:
    return round(cpus * 1000)


def _admits(host: Host, request: PlacementRequest) -> bool:
    """Schedulable, not avoided, labels as required."""
    labels = request.constraints.host_labels
    return (
        host.schedulable
        and host.host_id not in request.avoid_hosts
        and all(host.labels.get(k) == v for k, v in labels.items())
    )


def _fits(
    host: Host, request: PlacementRequest, demand: Demand
) -> tuple[int, list[int], int] | None:
    """(vendor used, GPU positions, untouched GPUs it may use) when the host can run
    `demand`, else None."""
    c = request.constraints
    if not _admits(host, request):
        return None
    if demand.gpu_count:
        if demand.gpu_vendor and c.gpu_vendor and demand.gpu_vendor != c.gpu_vendor:
            return None
        vendor = demand.gpu_vendor or c.gpu_vendor
        vendors = [vendor] if vendor else [NVIDIA, AMD]
    else:
        vendors = [0]
    terms = [t.lower() for t in (demand.gpu_model, c.gpu_model) if t]
    for vendor in vendors:
        if c.spread_across_hosts and request.deployment in host.deployments:
            return None
        if any(p in host.ports for p in demand.host_ports):
            return None
        chosen: list[int] = []
        untouched = 0
        if vendor:
            eligible = [
                p
                for p, (v, _, model, total) in enumerate(host.gpus)
                if v == vendor
                and all(t in model.lower() for t in terms)
                and total >= c.min_vram_bytes
            ]
            untouched = sum(1 for p in eligible if host.gpu_free[p] == host.gpus[p][3])
            if demand.vram_per_gpu_bytes == 0:
                free = [p for p in eligible if host.gpu_free[p] == host.gpus[p][3]]
                free.sort(key=lambda p: (-host.gpus[p][3], host.gpus[p][1]))
            else:
                free = [p for p in eligible if host.gpu_free[p] >= demand.vram_per_gpu_bytes]
                free.sort(key=lambda p: (host.gpu_free[p], host.gpus[p][1]))
            if len(free) < demand.gpu_count:
                continue
            chosen = free[: demand.gpu_count]
        if host.memory < demand.memory_bytes or host.cpu < _milli(demand.cpus):
            continue
        return vendor, chosen, untouched
    return None


def _amounts(host: Host, demand: Demand, positions: list[int]) -> list[int]:
    if demand.vram_per_gpu_bytes == 0:
        return [host.gpus[p][3] for p in positions]
    return [demand.vram_per_gpu_bytes] * len(positions)


def _typical(held: dict[str, Held], hosts: dict[str, Host]) -> tuple[float, float] | None:
    """Cores and memory per GPU held, over the instances that hold GPUs."""
    cpu = memory = micro = 0
    for item in held.values():
        host = hosts[item.host_id]
        shares = sum(
            round(a / host.gpus[p][3] * 1_000_000)
            for p, a in zip(item.positions, item.amounts, strict=True)
        )
        if shares > 0:
            cpu += _milli(item.demand.cpus)
            memory += item.demand.memory_bytes
            micro += shares
    if micro <= 0:
        return None
    gpus = micro / 1_000_000
    return cpu / gpus, memory / gpus


def _stranded(gpus: float, cpu: int, memory: int, typical: tuple[float, float]) -> float:
    if gpus <= 0:
        return 0.0
    worst = 0.0
    if typical[0] > 0:
        worst = max(worst, gpus - cpu / typical[0])
    if typical[1] > 0:
        worst = max(worst, gpus - memory / typical[1])
    return worst


def _strands(
    host: Host, demand: Demand, positions: list[int], typical: tuple[float, float] | None
) -> int:
    """How the placement changes the GPUs the host cannot feed, in tenths of a GPU."""
    if typical is None:
        return 0
    free = sum(max(0, f) / g[3] for f, g in zip(host.gpu_free, host.gpus, strict=True))
    if demand.vram_per_gpu_bytes == 0:
        taken = float(len(positions))
    else:
        taken = sum(demand.vram_per_gpu_bytes / host.gpus[p][3] for p in positions)
    cpu, memory = _milli(demand.cpus), demand.memory_bytes
    was = _stranded(free, host.cpu, host.memory, typical)
    will = _stranded(free - taken, host.cpu - cpu, host.memory - memory, typical)
    return round((will - was) * 10)


def _key(
    strategy: str,
    host: Host,
    request: PlacementRequest,
    *,
    demand: Demand,
    vendor: int,
    positions: list[int],
    untouched: int,
    typical: tuple[float, float] | None,
) -> tuple[int, ...]:
    vram = sum(f for (v, _, _, _), f in zip(host.gpus, host.gpu_free, strict=True) if v == vendor)
    if vendor == 0:
        vram = sum(host.gpu_free)
    vram -= sum(_amounts(host, demand, positions))
    memory = host.memory - demand.memory_bytes
    cpu = host.cpu - _milli(demand.cpus)
    if strategy == "binpack":
        rest = (vram, memory, cpu, host.seq)
        strands = _strands(host, demand, positions, typical)
        if not vendor:
            return (strands, *rest)
        if demand.vram_per_gpu_bytes == 0:
            return (strands, untouched - demand.gpu_count, *rest)
        left = sum(host.gpu_free[p] - demand.vram_per_gpu_bytes for p in positions)
        return (left, strands, *rest)
    return (host.deployments.count(request.deployment), -vram, -memory, -cpu, -host.seq)


def brute_force(
    strategy: str, hosts: dict[str, Host], held: dict[str, Held], request: PlacementRequest
) -> tuple[str, Demand, list[int]] | None:
    """(host id, candidate used, GPU positions) of the best host, scanning them all."""
    best: tuple[tuple[int, tuple[int, ...]], str, Demand, list[int]] | None = None
    typical = _typical(held, hosts)
    levels, level = [], -1
    for i, demand in enumerate(request.candidates):
        if i == 0 or demand.variety != request.candidates[i - 1].variety:
            level += 1
        levels.append(level)
    for host in hosts.values():
        for position, demand in zip(levels, request.candidates, strict=True):
            found = _fits(host, request, demand)
            if found is None:
                continue
            vendor, positions, untouched = found
            key = _key(
                strategy,
                host,
                request,
                demand=demand,
                vendor=vendor,
                positions=positions,
                untouched=untouched,
                typical=typical,
            )
            rank = (position, key)
            if best is None or rank < best[0]:
                best = (rank, host.host_id, demand, positions)
            break
    if best is None:
        return None
    return best[1], best[2], best[3]


# Random fleets and requests --------------------------------------------------------------


@st.composite
def demands(draw: st.DrawFn) -> Demand:
    kind = draw(st.sampled_from(["cpu", "shared", "whole"]))
    vendor = draw(st.sampled_from([0, NVIDIA, NVIDIA, AMD]))
    memory = draw(st.integers(0, 40)) * GIB
    cpus = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 4.0, 8.0]))
    ports = frozenset(draw(st.sets(st.sampled_from([8000, 8001]), max_size=1)))
    model = draw(st.sampled_from(["", "", "", "4090", "h100"]))
    if kind == "cpu":
        return Demand("cpu", 0, 0, 0, memory, cpus, ports)
    count = draw(st.integers(1, 3))
    vram = 0 if kind == "whole" else draw(st.sampled_from([4, 10, 16, 24, 40])) * GIB
    return Demand(kind, count, vendor, vram, memory, cpus, ports, model)


@st.composite
def requests(draw: st.DrawFn, number: int) -> PlacementRequest:
    deployment = draw(st.sampled_from(["a", "b", "c"]))
    drawn = draw(st.lists(demands(), min_size=1, max_size=3))
    # Consecutive candidates of the same variety are alternatives of one preference level.
    names = draw(st.lists(st.sampled_from(["x", "y"]), min_size=len(drawn), max_size=len(drawn)))
    candidates = tuple(replace(d, variety=n) for d, n in zip(drawn, names, strict=True))
    constraints = Constraints(
        gpu_vendor=draw(st.sampled_from([0, 0, NVIDIA, AMD])),
        gpu_model=draw(st.sampled_from(["", "", "nvidia"])),
        min_vram_bytes=draw(st.sampled_from([0, 0, 30 * GIB])),
        host_labels=draw(st.sampled_from([{}, {}, {"zone": "a"}])),
        spread_across_hosts=draw(st.booleans()),
    )
    avoid = frozenset(draw(st.sets(st.sampled_from(["h0", "h1", "h2"]), max_size=1)))
    return PlacementRequest(f"{deployment}-{number}", deployment, candidates, constraints, avoid)


@st.composite
def hosts_(draw: st.DrawFn) -> list[HostCapacity]:
    count = draw(st.integers(1, 9))
    out = []
    for i in range(count):
        shape = draw(st.sampled_from(SHAPES))
        gpus = []
        per_vendor: dict[int, int] = {}
        for vendor, model, size in shape:
            index = per_vendor.get(vendor, 0)
            per_vendor[vendor] = index + 1
            gpus.append(Gpu(index, f"h{i}-{vendor}-{index}", vendor, model, size * GIB))
        out.append(
            HostCapacity(
                f"h{i}",
                draw(st.sampled_from([{}, {"zone": "a"}, {"zone": "b"}])),
                tuple(gpus),
                draw(st.sampled_from([16, 64, 128])) * GIB,
                draw(st.sampled_from([4.0, 16.0, 32.5])),
            )
        )
    return out


def _host(capacity: HostCapacity, seq: int) -> Host:
    gpus = sorted((g.vendor, g.index, g.model, g.vram_bytes) for g in capacity.gpus)
    return Host(
        capacity.host_id,
        seq,
        dict(capacity.labels),
        gpus,
        [g[3] for g in gpus],
        capacity.memory_bytes,
        _milli(capacity.cpus),
    )


Step = tuple[str, int]


@given(
    strategy=st.sampled_from(["binpack", "spread"]),
    fleet=hosts_(),
    steps=st.lists(
        st.tuples(
            st.sampled_from(
                ["place", "place", "place", "place", "release", "down", "up", "resize"]
            ),
            st.integers(0, 50),
        ),
        min_size=1,
        max_size=40,
    ),
    data=st.data(),
)
@settings(max_examples=300, deadline=None)
def test_the_scheduler_chooses_what_a_scan_of_every_host_chooses(
    strategy: str, fleet: list[HostCapacity], steps: list[Step], data: st.DataObject
) -> None:
    ledger = FleetLedger()
    scheduler = Scheduler(ledger, strategy_by_name(strategy))
    hosts: dict[str, Host] = {}
    for seq, capacity in enumerate(fleet):
        ledger.upsert_host(capacity)
        hosts[capacity.host_id] = _host(capacity, seq)
    held: dict[str, Held] = {}
    for number, (action, pick) in enumerate(steps):
        if action == "release" and held:
            instance = sorted(held)[pick % len(held)]
            _release(hosts, held.pop(instance))
            ledger.release(instance)
        elif action == "resize":
            # A new profile with another memory size; the reservations stay.
            capacity = fleet[pick % len(fleet)]
            bigger = replace(capacity, memory_bytes=capacity.memory_bytes + pick * GIB)
            ledger.upsert_host(bigger, schedulable=hosts[capacity.host_id].schedulable)
            hosts[capacity.host_id].memory += pick * GIB
            fleet[pick % len(fleet)] = bigger
        elif action in ("down", "up"):
            host = hosts[fleet[pick % len(fleet)].host_id]
            host.schedulable = action == "up"
            ledger.set_schedulable(host.host_id, host.schedulable, "host down")
        elif action == "place":
            request = data.draw(requests(number))
            expected = brute_force(strategy, hosts, held, request)
            summary, best, _ = scheduler.explain(request, None)
            got = scheduler.place(request)
            if expected is None:
                assert not isinstance(got, Placement), (got, summary)
                assert best == []
                continue
            host_id, demand, positions = expected
            host = hosts[host_id]
            assert isinstance(got, Placement), (got, expected)
            assert (got.host_id, got.variety) == (host_id, demand.variety)
            assert list(got.gpu_indices) == [host.gpus[p][1] for p in positions]
            assert best[0].host_id == host_id
            _hold(held, request, demand, host, positions)


def _hold(
    held: dict[str, Held],
    request: PlacementRequest,
    demand: Demand,
    host: Host,
    positions: list[int],
) -> None:
    amounts = _amounts(host, demand, positions)
    for p, amount in zip(positions, amounts, strict=True):
        host.gpu_free[p] -= amount
    host.memory -= demand.memory_bytes
    host.cpu -= _milli(demand.cpus)
    host.ports.extend(demand.host_ports)
    host.deployments.append(request.deployment)
    held[request.instance] = Held(host.host_id, request.deployment, demand, positions, amounts)


def _release(hosts: dict[str, Host], item: Held) -> None:
    host = hosts[item.host_id]
    for p, amount in zip(item.positions, item.amounts, strict=True):
        host.gpu_free[p] += amount
    host.memory += item.demand.memory_bytes
    host.cpu += _milli(item.demand.cpus)
    for port in item.demand.host_ports:
        host.ports.remove(port)
    host.deployments.remove(item.deployment)

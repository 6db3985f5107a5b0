"""The filter chain: whether a host can take one candidate of a request, and if not, why.

Filters, in the order a refusal is reported:

    unschedulable  the host is down, lost or cordoned
    avoid          the request asks to keep away from it (the instance failed there)
    labels         a required host label is missing or different
    gpu-vendor     no GPU of the vendor the variety needs
    gpu-model      no GPU whose model contains the required text
    vram           no GPU with the required total VRAM (or as much as sharing one needs)
    gpu-count      fewer such GPUs than the variety needs
    spread         it already runs an instance of the deployment (spread_across_hosts)
    ports          a host port the variety publishes is taken
    gpu            not enough free VRAM, or not enough GPUs free of other holders
    memory         not enough free memory
    cpu            not enough free cores

The four GPU-shape filters depend only on a host's GPUs, so they are decided once per
partition of identical hosts (StaticFit). `fit` is the fast form the strategies call on
the hosts the index proposes; it names only the failing filter. `evaluate` runs the
chain in order and words the reason, for explanations.

A request's candidate whose vendor is "any" becomes one probe per vendor (NVIDIA, then
AMD, as the agent chooses): on a host with both, the first vendor that fits is used.
Consecutive candidates of the same variety are alternatives of one preference level in
the same way (e.g. one per GPU model, each with its own VRAM figure).
The GPU constraints (vendor, model, minimum VRAM) apply to candidates that use GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ozwald_orchestrator.placement.host_state import GpuShape, HostState, milli
from ozwald_orchestrator.placement.index import Partition, StaticFit
from ozwald_orchestrator.placement.model import Demand, PlacementRequest
from ozwald_orchestrator.placement.words import (
    VENDOR_PREFERENCE,
    cores,
    counted,
    gib,
    vendor_word,
)

FILTERS: tuple[str, ...] = (
    "unschedulable",
    "avoid",
    "labels",
    "gpu-vendor",
    "gpu-model",
    "vram",
    "gpu-count",
    "spread",
    "ports",
    "gpu",
    "memory",
    "cpu",
)
STAGE = {name: stage for stage, name in enumerate(FILTERS)}


@dataclass(frozen=True, slots=True)
class Probe:
    """One candidate of a request with one vendor, compiled for the filters."""

    position: int
    demand: Demand
    vendor: int  # 0 for a candidate without GPUs
    count: int
    whole: bool
    vram: int
    memory: int
    cpu: int
    ports: frozenset[int]
    model_terms: tuple[str, ...]
    min_vram: int
    labels: tuple[tuple[str, str], ...]
    deployment: str
    spread: bool
    avoid: frozenset[str]
    # Probes of the same preference level tried before this one: other vendors, for
    # "any", and earlier alternatives of the same variety.
    earlier: tuple[Probe, ...] = ()
    # Set when the candidate contradicts the constraints: every host refuses it so.
    conflict: str = ""

    @property
    def variety(self) -> str:
        return self.demand.variety

    @property
    def smallest_gpu(self) -> int:
        """The least total VRAM a GPU must have: the constraint's minimum, and no less
        than what sharing it needs (a smaller GPU never has that much free)."""
        return max(self.min_vram, self.vram)

    @property
    def static_key(self) -> tuple[int, tuple[str, ...], int, int]:
        return (self.vendor, self.model_terms, self.smallest_gpu, self.count)


def probes(request: PlacementRequest) -> list[Probe]:
    """The request's candidates as probes, in preference order."""
    constraints = request.constraints
    labels = tuple(sorted(constraints.host_labels.items()))
    compiled: list[Probe] = []
    position, variety = -1, None
    earlier: list[Probe] = []
    for demand in request.candidates:
        if demand.variety != variety:
            # A new variety is a new preference level; alternatives of one variety (one
            # per GPU model, say) share theirs and are tried on each host in order.
            position, variety, earlier = position + 1, demand.variety, []
        conflict = ""
        if demand.gpu_count <= 0:
            vendors: tuple[int, ...] = (0,)
            terms: tuple[str, ...] = ()
            min_vram = 0
        else:
            wanted, required = demand.gpu_vendor, constraints.gpu_vendor
            if wanted and required and wanted != required:
                conflict = (
                    f"variety {demand.variety} uses {vendor_word(wanted)} GPUs and the "
                    f"deployment requires {vendor_word(required)}"
                )
            chosen = wanted or required
            vendors = (chosen,) if chosen else VENDOR_PREFERENCE
            terms = tuple(t.lower() for t in (demand.gpu_model, constraints.gpu_model) if t.strip())
            min_vram = constraints.min_vram_bytes
        for vendor in vendors:
            probe = Probe(
                position=position,
                demand=demand,
                vendor=vendor,
                count=max(0, demand.gpu_count),
                whole=demand.whole_gpus,
                vram=demand.vram_per_gpu_bytes,
                memory=demand.memory_bytes,
                cpu=milli(demand.cpus),
                ports=demand.host_ports,
                model_terms=terms,
                min_vram=min_vram,
                labels=labels,
                deployment=request.deployment,
                spread=constraints.spread_across_hosts,
                avoid=request.avoid_hosts,
                earlier=tuple(earlier),
                conflict=conflict,
            )
            earlier.append(probe)
            compiled.append(probe)
    return compiled


def static_fit(partition: Partition, probe: Probe) -> StaticFit:
    """What the partition's GPU shape allows the probe (cached per partition)."""
    key = probe.static_key
    known = partition.static.get(key)
    if known is None:
        known = partition.static[key] = _static(partition.shape, probe)
    return known


def _static(shape: GpuShape, probe: Probe) -> StaticFit:
    if probe.count == 0:
        return StaticFit((), None)
    name = vendor_word(probe.vendor)
    of_vendor = [p for p, (vendor, _, _) in enumerate(shape) if vendor == probe.vendor]
    if not of_vendor:
        return StaticFit((), None, False, "gpu-vendor", f"needs {name}, host has none")
    matching = [p for p in of_vendor if all(t in shape[p][1] for t in probe.model_terms)]
    if not matching:
        models = sorted({shape[p][1] for p in of_vendor})
        wanted = " and ".join(repr(t) for t in probe.model_terms)
        return StaticFit(
            (), None, False, "gpu-model", f"needs a GPU model matching {wanted}, host has {models}"
        )
    large = [p for p in matching if shape[p][2] >= probe.smallest_gpu]
    if not large:
        largest = gib(max(shape[p][2] for p in matching))
        wanted = (
            f"{gib(probe.vram)} VRAM on one GPU"
            if probe.vram > probe.min_vram
            else f"GPUs with at least {gib(probe.min_vram)} VRAM"
        )
        return StaticFit((), None, False, "vram", f"needs {wanted}, the largest has {largest}")
    if len(large) < probe.count:
        return StaticFit(
            (),
            None,
            False,
            "gpu-count",
            f"needs {counted(probe.count, f'{name} GPU')}, host has {len(large)} that qualify",
        )
    sizes = {shape[p][2] for p in large}
    return StaticFit(
        tuple(large), sizes.pop() if len(sizes) == 1 else None, len(large) == len(of_vendor)
    )


def fit(state: HostState, probe: Probe, static: StaticFit) -> tuple[int, ...] | str:
    """The GPU positions the probe would take on a schedulable host whose shape passed
    (`static`), or the name of the first filter that refuses it."""
    if probe.avoid and state.host_id in probe.avoid:
        return "avoid"
    if probe.labels:
        labels = state.labels
        for key, value in probe.labels:
            if labels.get(key) != value:
                return "labels"
    if probe.spread and probe.deployment in state.deployments:
        return "spread"
    if probe.ports:
        taken = state.ports
        for port in probe.ports:
            if port in taken:
                return "ports"
    chosen: tuple[int, ...] | None = _gpus(state, probe, static) if probe.count else ()
    if chosen is None:
        return "gpu"
    if state.free_mem < probe.memory:
        return "memory"
    if state.free_cpu < probe.cpu:
        return "cpu"
    return chosen


def _gpus(state: HostState, probe: Probe, static: StaticFit) -> tuple[int, ...] | None:
    """The GPUs the agent would give the probe on this host, or None when too few fit."""
    free = state.gpu_free
    if probe.whole:
        cap = state.gpu_cap
        untouched = [p for p in static.positions if free[p] == cap[p]]
        if len(untouched) < probe.count:
            return None
        if len(untouched) > 1:
            untouched.sort(key=lambda p: (-cap[p], p))
        return tuple(untouched[: probe.count])
    need = probe.vram
    roomy = [p for p in static.positions if free[p] >= need]
    if len(roomy) < probe.count:
        return None
    if len(roomy) > 1:
        # Best fit, like the agent: the least free VRAM that is still enough.
        roomy.sort(key=lambda p: (free[p], p))
    return tuple(roomy[: probe.count])


def evaluate(state: HostState, probe: Probe) -> tuple[int, ...] | tuple[str, str]:
    """The whole chain in order for any host: the GPU positions when it fits, else
    (filter, reason in words)."""
    if not state.schedulable:
        return ("unschedulable", state.down_reason or "not schedulable")
    if probe.conflict:
        return ("gpu-vendor", probe.conflict)
    if probe.avoid and state.host_id in probe.avoid:
        return ("avoid", "instance failed here recently")
    for key, value in probe.labels:
        have = state.labels.get(key)
        if have != value:
            found = f"host has {key}={have}" if have is not None else f"host has no {key} label"
            return ("labels", f"label {key}={value}: {found}")
    assert isinstance(state.partition, Partition)
    static = static_fit(state.partition, probe)
    if static.filter:
        return (static.filter, static.reason)
    result = fit(state, probe, static)
    if not isinstance(result, str):
        return result
    return (result, _words(state, probe, static, result))


def _words(state: HostState, probe: Probe, static: StaticFit, refused: str) -> str:
    if refused == "spread":
        mine = sorted(
            name for name, r in state.instances.items() if r.deployment == probe.deployment
        )
        return f"already runs {', '.join(mine)}"
    if refused == "ports":
        taken = sorted(p for p in probe.ports if p in state.ports)
        return f"port{'s' if len(taken) > 1 else ''} {', '.join(map(str, taken))} in use"
    if refused == "memory":
        return f"needs {gib(probe.memory)}, {gib(max(0, state.free_mem))} free"
    if refused == "cpu":
        return f"needs {cores(probe.cpu)} cpus, {cores(max(0, state.free_cpu))} free"
    if refused == "gpu":
        name = vendor_word(probe.vendor)
        if probe.whole:
            untouched = sum(1 for p in static.positions if state.gpu_free[p] == state.gpu_cap[p])
            return (
                f"needs {counted(probe.count, f'whole {name} GPU')}, "
                f"{untouched} of {len(static.positions)} free of other holders"
            )
        frees = sorted((max(0, state.gpu_free[p]) for p in static.positions), reverse=True)
        which = "the roomiest has" if probe.count == 1 else f"GPU number {probe.count} has"
        return (
            f"needs {gib(probe.vram)} VRAM on {counted(probe.count, f'{name} GPU')}, "
            f"{which} {gib(frees[probe.count - 1])} free"
        )
    return refused

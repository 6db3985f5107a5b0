"""What placement reads and answers: host capacity, demands, requests, placements, verdicts.

Plain frozen values, no protobuf: the scheduler is fed by whoever owns the fleet (the
orchestrator, a benchmark, a test) and its answers are turned into messages at the edge.
Quantities are bytes for memory and VRAM and cores (possibly fractional) for CPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

_NO_LABELS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Gpu:
    """One GPU of a host. `vendor` is an ozwald.common.v1 GpuVendor value; `vram_bytes` is
    the device's total memory (what a whole-GPU holder reserves)."""

    index: int
    uuid: str
    vendor: int
    model: str
    vram_bytes: int


@dataclass(frozen=True, slots=True)
class HostCapacity:
    """What a host offers to placement: its labels, GPUs, memory and cores."""

    host_id: str
    labels: Mapping[str, str]
    gpus: tuple[Gpu, ...]
    memory_bytes: int
    cpus: float


@dataclass(frozen=True, slots=True)
class Demand:
    """What one candidate variety of a deployment needs on one host.

    `vram_per_gpu_bytes == 0` with `gpu_count > 0` takes whole GPUs (no one else may use
    them); `> 0` shares GPUs by VRAM, like the agent's admission: the GPUs with the least
    free VRAM that is still enough. `gpu_vendor` 0 (unspecified) means any vendor, tried
    NVIDIA first, then AMD, as the agent does. `gpu_model`, when set, restricts the
    variety to GPUs whose model contains it (case-insensitive), like the constraint.
    """

    variety: str
    gpu_count: int
    gpu_vendor: int
    vram_per_gpu_bytes: int
    memory_bytes: int
    cpus: float
    host_ports: frozenset[int] = frozenset()
    gpu_model: str = ""

    @property
    def whole_gpus(self) -> bool:
        return self.gpu_count > 0 and self.vram_per_gpu_bytes == 0


@dataclass(frozen=True, slots=True)
class Constraints:
    """A deployment's placement constraints. `gpu_model` matches case-insensitively as a
    substring of the GPU's model; `min_vram_bytes` is per GPU, of its total memory."""

    gpu_vendor: int = 0
    gpu_model: str = ""
    min_vram_bytes: int = 0
    host_labels: Mapping[str, str] = field(default_factory=lambda: _NO_LABELS)
    spread_across_hosts: bool = False


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    """Place one instance. `candidates` are its varieties in preference order: a host
    that can run an earlier variety beats any host that can only run a later one.
    Consecutive candidates with the same variety name are alternatives of equal
    preference (e.g. one per GPU model, each with its own VRAM): on each host the first
    of them that fits is the one used."""

    instance: str
    deployment: str
    candidates: tuple[Demand, ...]
    constraints: Constraints = field(default_factory=Constraints)
    avoid_hosts: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an instance goes: the host, the variety it runs there and its GPUs (by the
    GPUs' own indices on that host)."""

    instance: str
    host_id: str
    variety: str
    gpu_indices: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Rejection:
    """How many hosts one filter rejected, with the reasons given for the first few
    (each "host: reason")."""

    filter: str
    hosts: int
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unplaced:
    """No host can take the instance now; `summary` says why in one sentence."""

    instance: str
    summary: str
    rejections: tuple[Rejection, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The scheduler's view of one host for one instance. `score` is the number of
    feasible hosts this one beats under the strategy (higher wins); `filter` and
    `reason` say why an infeasible host was rejected."""

    host_id: str
    feasible: bool
    filter: str
    reason: str
    score: float
    variety: str

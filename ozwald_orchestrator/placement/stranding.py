"""Stranded GPUs: free GPU capacity a host cannot use because its cores or memory ran out.

A GPU is only useful next to the cores and memory its work needs. The fleet's own GPU
work says how much that is: over every reservation that holds GPUs, the cores and the
memory per GPU held (`GpuWork.typical`, a ratio of sums, so a service sharing a tenth of a
GPU counts a tenth). A host with F GPUs free (fractions of each GPU summed), C cores and
M memory free can keep busy only C / cores-per-GPU and M / memory-per-GPU of them; the
rest is stranded:

    stranded = max(0, F - C / cores_per_gpu, F - M / memory_per_gpu)    (0 when F is 0)

Binpack ranks a placement by how much it changes that (in tenths of a GPU, so nearly
equal changes tie and the best fit decides): putting CPU-hungry work where cores are
short, or CPU-only work on a host whose GPUs still need its cores, strands GPUs; putting
CPU-light GPU work where cores are short uses GPUs that were stranded. On the openb trace
this is what lifts binpack past the published FGD figure (bench/pack_quality.py).

A host whose cores or memory per free GPU is below the typical figure is "pressured": it
strands something already, and only a pressured host can strand less after a placement.
The partition index keeps hosts sorted by cores and memory per free GPU so that the
pressured ones can be listed without looking at the others.
"""

from __future__ import annotations

from collections.abc import Iterable

MICRO = 1_000_000
# Stranding changes are compared in tenths of a GPU.
STEPS_PER_GPU = 10


class GpuWork:
    """Cores, memory and GPUs held by the reservations that hold GPUs (see above)."""

    __slots__ = ("_held", "cpu_milli", "memory", "micro_gpus")

    def __init__(self) -> None:
        self.cpu_milli = 0
        self.memory = 0
        self.micro_gpus = 0
        self._held: dict[str, tuple[int, int, int]] = {}

    def add(self, instance: str, cpu_milli: int, memory: int, shares: Iterable[float]) -> None:
        """Counts an instance holding `shares` of GPUs (each amount / the GPU's VRAM)."""
        self.remove(instance)
        micro = sum(round(share * MICRO) for share in shares)
        if micro <= 0:
            return
        self._held[instance] = (cpu_milli, memory, micro)
        self.cpu_milli += cpu_milli
        self.memory += memory
        self.micro_gpus += micro

    def remove(self, instance: str) -> None:
        held = self._held.pop(instance, None)
        if held is not None:
            self.cpu_milli -= held[0]
            self.memory -= held[1]
            self.micro_gpus -= held[2]

    def typical(self) -> tuple[float, float] | None:
        """(millicores per GPU, memory bytes per GPU) of the fleet's GPU work, or None
        while no reservation holds a GPU."""
        if self.micro_gpus <= 0:
            return None
        gpus = self.micro_gpus / MICRO
        return self.cpu_milli / gpus, self.memory / gpus


def stranded(free_gpus: float, free_cpu: int, free_mem: int, typical: tuple[float, float]) -> float:
    """The free GPUs (fractions summed) the host's free cores and memory cannot feed."""
    if free_gpus <= 0:
        return 0.0
    cpu_per_gpu, mem_per_gpu = typical
    worst = 0.0
    if cpu_per_gpu > 0:
        worst = max(worst, free_gpus - free_cpu / cpu_per_gpu)
    if mem_per_gpu > 0:
        worst = max(worst, free_gpus - free_mem / mem_per_gpu)
    return worst


def change(
    before: tuple[float, int, int],
    taken: tuple[float, int, int],
    typical: tuple[float, float] | None,
) -> int:
    """How a placement taking (GPUs, millicores, memory) changes what the host strands
    (free GPUs, millicores, memory before), in tenths of a GPU."""
    if typical is None:
        return 0
    gpus, cpu, mem = before
    was = stranded(gpus, cpu, mem, typical)
    will = stranded(gpus - taken[0], cpu - taken[1], mem - taken[2], typical)
    return round((will - was) * STEPS_PER_GPU)

"""The resource figures admission counts for a spec, and where each came from.

A figure is the recorded footprint when there is one, else the declared requirement,
else 0 ("none"). CPUs are always the declared limit: the CPU check is a budget of limits,
not of measured use.
"""

from __future__ import annotations

from dataclasses import dataclass

from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.admission.footprints import FootprintBook
from ozwald_agent.admission.units import gib
from ozwald_sdk.fingerprint import fingerprint as spec_fingerprint

DECLARED = plan_pb2.FIGURE_SOURCE_DECLARED
FOOTPRINT = plan_pb2.FIGURE_SOURCE_FOOTPRINT
NONE = plan_pb2.FIGURE_SOURCE_NONE


@dataclass(frozen=True)
class Figure:
    """One amount in bytes and its provenance."""

    amount: int
    source: plan_pb2.FigureSource.ValueType
    declared: int
    footprint: int | None
    # A footprint exists but was measured for another effective spec: not counted.
    stale: bool = False

    def provenance(self) -> str:
        """How a refusal says where the amount came from."""
        if self.source == FOOTPRINT:
            if self.declared:
                return f"measured footprint; declared {gib(self.declared)}"
            return "measured footprint"
        if self.source == DECLARED:
            return "declared; footprint stale" if self.stale else "declared"
        return "nothing declared or measured"

    def to_proto(self) -> plan_pb2.ByteFigure:
        figure = plan_pb2.ByteFigure(
            accounted_bytes=self.amount, source=self.source, declared_bytes=self.declared
        )
        if self.footprint is not None:
            figure.footprint_bytes = self.footprint
        figure.footprint_stale = self.stale
        return figure


@dataclass(frozen=True)
class Figures:
    memory: Figure
    # None when the spec asks for no GPU.
    vram_per_gpu: Figure | None
    cpus: float

    def to_proto(self) -> plan_pb2.AccountedResources:
        resources = plan_pb2.AccountedResources(memory=self.memory.to_proto(), cpus=self.cpus)
        if self.vram_per_gpu is not None:
            resources.vram_per_gpu.CopyFrom(self.vram_per_gpu.to_proto())
        return resources


def wants_gpus(spec: service_spec_pb2.ServiceSpec) -> bool:
    gpus = spec.resources.gpus
    return gpus.count > 0 or len(gpus.device_ids) > 0


def wants_whole_gpus(spec: service_spec_pb2.ServiceSpec) -> bool:
    """No VRAM per GPU declared: each GPU is taken whole and shared with nobody."""
    return wants_gpus(spec) and spec.resources.gpus.vram_per_gpu_bytes == 0


def figures_for(spec: service_spec_pb2.ServiceSpec, book: FootprintBook) -> Figures:
    """A footprint counts only when it was measured for this very effective spec: after any
    change (image, arguments, limits) the measurement may no longer hold."""
    footprint = book.footprint(
        spec.realm, spec.name, spec.variety, spec.profile, spec_fingerprint(spec)
    )
    stale = footprint is not None and footprint.stale
    usable = footprint if footprint is not None and not footprint.stale else None
    resources = spec.resources
    memory = _choose(
        resources.memory_bytes,
        usable.peak_memory_bytes if usable is not None else None,
        stale=stale,
    )
    vram = None
    if wants_gpus(spec):
        vram = _choose(
            resources.gpus.vram_per_gpu_bytes,
            usable.peak_vram_bytes_per_gpu if usable is not None else None,
            stale=stale,
        )
    return Figures(memory=memory, vram_per_gpu=vram, cpus=resources.cpus)


def _choose(declared: int, measured: int | None, *, stale: bool = False) -> Figure:
    if measured is not None:
        return Figure(amount=measured, source=FOOTPRINT, declared=declared, footprint=measured)
    if declared:
        return Figure(
            amount=declared, source=DECLARED, declared=declared, footprint=None, stale=stale
        )
    return Figure(amount=0, source=NONE, declared=0, footprint=None, stale=stale)

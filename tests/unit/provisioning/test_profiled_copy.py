"""Admitting the copy profiling runs: beside everything that runs, with its own name, the
original's footprint, and its CPUs held in every plan until it is released."""

from __future__ import annotations

from pathlib import Path

import pytest
from ozwald.agent.v1 import footprint_pb2 as F
from ozwald.agent.v1 import plan_pb2, service_scope_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.provisioning.provisioner import Provisioner
from ozwald_agent.state.footprints import FootprintStore
from ozwald_agent.state.store import AgentStore
from ozwald_sdk.fingerprint import fingerprint
from tests.unit.admission.builders import GIB, FakeHostFacts, action, host, service
from tests.unit.provisioning.memory_runtime import MemoryRuntime

DYNAMIC = service_scope_pb2.SERVICE_SCOPE_DYNAMIC
COPY = "web (profiled copy)"


@pytest.fixture
def provisioner(tmp_path: Path) -> Provisioner:
    store = AgentStore(tmp_path / "agent.db")
    footprints = FootprintStore(tmp_path / "agent.db")
    profile = host(cores=4, memory_gib=16, available_gib=10)
    return Provisioner(
        store, MemoryRuntime(), FakeHostFacts(), lambda: profile, footprints=footprints
    )


def web(memory: int = 4 * GIB, cpus: float = 1.0) -> service_spec_pb2.ServiceSpec:
    spec = service("web", memory=memory, cpus=cpus, ports=[18080], depends_on=["db"])
    spec.networks.append("backend")
    return spec


def test_the_copy_is_planned_beside_what_runs_without_portals_or_dependencies(
    provisioner: Provisioner,
) -> None:
    provisioner.apply([web(), service("db", memory=1 * GIB)], DYNAMIC)

    result, copy = provisioner.admit_profiled_copy(web(), reserve=False)

    assert result.admitted, result.refusals
    assert {a.name: plan_pb2.ActionKind.Name(a.kind) for a in result.actions} == {
        COPY: "ACTION_KIND_START",
        "db": "ACTION_KIND_KEEP",
        "web": "ACTION_KIND_KEEP",
    }
    assert copy.name == COPY
    assert (list(copy.portals), list(copy.depends_on), list(copy.networks)) == ([], [], [])
    # Nothing was stored: the desired set is what it was.
    assert [d.spec.name for d in provisioner._store.desired()] == ["db", "web"]


def test_a_copy_that_does_not_fit_is_refused_with_its_own_name(provisioner: Provisioner) -> None:
    alone = service("web", memory=1 * GIB, cpus=3.0)
    provisioner.apply([alone], DYNAMIC)

    result, _ = provisioner.admit_profiled_copy(alone, reserve=True)

    assert not result.admitted
    assert [(r.name, plan_pb2.RefusalReason.Name(r.reason)) for r in result.refusals] == [
        (COPY, "REFUSAL_REASON_INSUFFICIENT_CPU")
    ]
    # A refused copy reserves nothing.
    assert provisioner.plan([alone], DYNAMIC).admitted


def test_the_copy_counts_the_originals_footprint(provisioner: Provisioner) -> None:
    declared_too_small = service("web", memory=1 * GIB)
    provisioner._footprints.record(  # type: ignore[attr-defined]
        F.Footprint(
            realm="default",
            service="web",
            fingerprint=fingerprint(declared_too_small),
            peak_memory_bytes=20 * GIB,
        )
    )

    result, _ = provisioner.admit_profiled_copy(declared_too_small, reserve=False)

    assert not result.admitted
    figure = action(result, COPY).resources.memory
    assert (figure.source, figure.accounted_bytes) == (plan_pb2.FIGURE_SOURCE_FOOTPRINT, 20 * GIB)


def test_a_reserved_copy_holds_its_cpus_in_applies_until_released(
    provisioner: Provisioner,
) -> None:
    _, _ = provisioner.admit_profiled_copy(web(cpus=3.0), reserve=True)

    held = provisioner.plan([service("other", cpus=2.0)], DYNAMIC)
    assert [(r.name, plan_pb2.RefusalReason.Name(r.reason)) for r in held.refusals] == [
        ("other", "REFUSAL_REASON_INSUFFICIENT_CPU")
    ]
    copy_action = action(held, COPY)
    assert copy_action.kind == plan_pb2.ACTION_KIND_KEEP
    assert copy_action.reason.startswith("profiling copy")

    provisioner.release_profiled_copy()
    assert provisioner.plan([service("other", cpus=2.0)], DYNAMIC).admitted

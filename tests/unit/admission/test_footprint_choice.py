"""Admission with the agent's real footprint store: a footprint measured for the spec being
admitted is counted; one measured for an older spec is not, and the plan says so."""

from __future__ import annotations

from pathlib import Path

from ozwald.agent.v1 import footprint_pb2 as F
from ozwald.agent.v1 import plan_pb2

from ozwald_agent.state.footprints import FootprintStore
from ozwald_sdk.fingerprint import fingerprint
from tests.unit.admission.builders import GIB, action, host, make_plan, reasons, service


def record(store: FootprintStore, spec_fingerprint: str, memory: int) -> None:
    store.record(
        F.Footprint(
            realm="default",
            service="llm",
            variety="cpu",
            fingerprint=spec_fingerprint,
            peak_memory_bytes=memory,
        )
    )


def test_a_fresh_footprint_is_counted_instead_of_the_declaration(tmp_path: Path) -> None:
    store = FootprintStore(tmp_path / "agent.db")
    spec = service("llm", variety="cpu", memory=32 * GIB)
    record(store, fingerprint(spec), 6 * GIB)

    result = make_plan([spec], on=host(available_gib=20), footprints=store)

    assert result.admitted, result.refusals
    figure = action(result, "llm").resources.memory
    assert (figure.source, figure.accounted_bytes, figure.footprint_stale) == (
        plan_pb2.FIGURE_SOURCE_FOOTPRINT,
        6 * GIB,
        False,
    )


def test_without_a_footprint_the_declaration_counts(tmp_path: Path) -> None:
    store = FootprintStore(tmp_path / "agent.db")
    spec = service("llm", variety="cpu", memory=8 * GIB)

    figure = action(make_plan([spec], footprints=store), "llm").resources.memory

    assert (figure.source, figure.accounted_bytes) == (plan_pb2.FIGURE_SOURCE_DECLARED, 8 * GIB)
    assert not figure.HasField("footprint_bytes") and not figure.footprint_stale


def test_a_footprint_of_an_older_spec_is_stale_and_not_counted(tmp_path: Path) -> None:
    store = FootprintStore(tmp_path / "agent.db")
    before = service("llm", variety="cpu", memory=32 * GIB, command=["serve", "--small"])
    after = service("llm", variety="cpu", memory=32 * GIB, command=["serve", "--large"])
    record(store, fingerprint(before), 6 * GIB)

    result = make_plan([after], on=host(available_gib=20), footprints=store)

    # Counted as declared: 32 GiB does not fit in 20, though the old measurement would.
    assert reasons(result) == [("llm", "INSUFFICIENT_MEMORY")]
    assert "(declared; footprint stale)" in result.refusals[0].message
    figure = action(result, "llm").resources.memory
    assert (figure.source, figure.accounted_bytes, figure.footprint_stale) == (
        plan_pb2.FIGURE_SOURCE_DECLARED,
        32 * GIB,
        True,
    )
    assert not figure.HasField("footprint_bytes")

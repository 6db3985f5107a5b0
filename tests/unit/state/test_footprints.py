"""The footprint store: what `ozwald profile` records, admission reads and people list."""

from __future__ import annotations

from pathlib import Path

from ozwald.agent.v1 import footprint_pb2 as F

from ozwald_agent.admission.footprints import Footprint
from ozwald_agent.state.footprints import FootprintStore
from ozwald_agent.state.store import AgentStore

GIB = 1024**3


def measured(
    service: str,
    *,
    realm: str = "default",
    variety: str = "cpu",
    profile: str = "",
    fingerprint: str = "f1",
    memory: int = 2 * GIB,
    vram: int | None = None,
    at: int = 1_800_000_000,
) -> F.Footprint:
    footprint = F.Footprint(
        realm=realm,
        service=service,
        variety=variety,
        profile=profile,
        fingerprint=fingerprint,
        peak_memory_bytes=memory,
        memory_peak_source=F.MEMORY_PEAK_SOURCE_CGROUP_V1_MAX_USAGE,
        host=F.MeasuredHost(hostname="box", memory_total_bytes=24 * GIB),
    )
    footprint.measured_at.FromSeconds(at)
    footprint.time_to_ready.FromMilliseconds(1500)
    if vram is not None:
        footprint.peak_vram_bytes_per_gpu = vram
        footprint.gpus.add(uuid="GPU-1", index=0, name="H100", peak_bytes=vram)
    return footprint


def test_a_footprint_round_trips_and_survives_reopening_beside_the_agent_store(
    tmp_path: Path,
) -> None:
    path = tmp_path / "agent.db"
    agent = AgentStore(path)
    store = FootprintStore(path)
    original = measured("embed", vram=30 * GIB)
    store.record(original)
    store.close()
    agent.close()

    again = FootprintStore(path)
    assert again.get("default", "embed", "cpu", "") == original
    assert again.list() == [original]
    # The agent's own tables are still usable next to it.
    assert AgentStore(path).desired() == []


def test_a_new_measurement_replaces_the_old_one_of_the_same_combination(tmp_path: Path) -> None:
    store = FootprintStore(tmp_path / "agent.db")
    store.record(measured("embed", memory=2 * GIB, at=1))
    store.record(measured("embed", profile="fast", memory=3 * GIB, at=2))
    store.record(measured("embed", memory=4 * GIB, at=3))

    listed = [(f.profile, f.peak_memory_bytes) for f in store.list()]
    assert listed == [("", 4 * GIB), ("fast", 3 * GIB)]


def test_listing_filters_by_realm_and_service_and_sorts(tmp_path: Path) -> None:
    store = FootprintStore(tmp_path / "agent.db")
    for realm, service in (("b", "x"), ("a", "y"), ("a", "x")):
        store.record(measured(service, realm=realm))

    assert [(f.realm, f.service) for f in store.list()] == [("a", "x"), ("a", "y"), ("b", "x")]
    assert [(f.realm, f.service) for f in store.list(realm="a")] == [("a", "x"), ("a", "y")]
    assert [(f.realm, f.service) for f in store.list(service="x")] == [("a", "x"), ("b", "x")]


def test_forget_deletes_what_is_named_and_returns_it(tmp_path: Path) -> None:
    store = FootprintStore(tmp_path / "agent.db")
    store.record(measured("embed", variety="cpu"))
    store.record(measured("embed", variety="nvidia"))
    store.record(measured("embed", variety="nvidia", profile="fast"))
    store.record(measured("chat"))

    gone = store.forget("default", "embed", variety="nvidia", profile="")
    assert [(f.variety, f.profile) for f in gone] == [("nvidia", "")]
    gone = store.forget("", "embed")
    assert [(f.variety, f.profile) for f in gone] == [("cpu", ""), ("nvidia", "fast")]
    assert store.forget("default", "embed") == []
    assert [f.service for f in store.list()] == ["chat"]


def test_as_admissions_book_a_footprint_for_another_spec_is_stale(tmp_path: Path) -> None:
    store = FootprintStore(tmp_path / "agent.db")
    store.record(measured("embed", fingerprint="f1", memory=5 * GIB, vram=20 * GIB))

    fresh = store.footprint("default", "embed", "cpu", "", "f1")
    stale = store.footprint("default", "embed", "cpu", "", "f2")

    assert fresh == Footprint(peak_memory_bytes=5 * GIB, peak_vram_bytes_per_gpu=20 * GIB)
    assert stale is not None and stale.stale
    assert store.footprint("default", "embed", "nvidia", "", "f1") is None


def test_a_footprint_without_memory_or_vram_counts_as_not_measured(tmp_path: Path) -> None:
    store = FootprintStore(tmp_path / "agent.db")
    store.record(measured("embed", memory=0))

    assert store.footprint("default", "embed", "cpu", "", "f1") == Footprint()

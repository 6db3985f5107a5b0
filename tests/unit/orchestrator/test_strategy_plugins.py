"""Placement strategies are plugins: found by name among the built-ins and the entry points
of installed distributions, chosen per deployment (`strategy:`) or by the orchestrator's
default, and refused at apply when the name is unknown or the plugin is broken."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from ozwald.common.v1 import error_reason_pb2

from ozwald_orchestrator.fleet import Fleet, FleetSettings
from ozwald_orchestrator.placement.registry import (
    ENTRY_POINT_GROUP,
    StrategyLoadError,
    StrategyRegistry,
    UnknownStrategyError,
)
from ozwald_orchestrator.placement.strategies import Binpack
from ozwald_orchestrator.rpc_errors import OrchestratorError
from ozwald_orchestrator.store.sqlite import SqliteFleetStore
from tests.support.strategy_plugin import LAST_HOST_ID, write_distribution
from tests.unit.orchestrator.fakes import deployment
from tests.unit.orchestrator.test_fleet import SETTINGS, Harness


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path for throwaway distributions; modules imported from it are
    forgotten afterwards."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        del sys.modules[name]


def _install(root: Path, **entry_points: str) -> None:
    write_distribution(root, entry_points=entry_points)
    importlib.invalidate_caches()


def test_the_built_ins_and_fgd_are_known_and_fgd_comes_through_its_entry_point() -> None:
    registry = StrategyRegistry.discover()
    assert {"binpack", "spread", "fgd"} <= set(registry.names())
    assert registry.origin("binpack") == "built in"
    # Ozwald's own pyproject registers fgd like any third party would.
    assert registry.origin("fgd").startswith("plugin ozwald_orchestrator.placement.fgd:")
    assert registry.load("fgd").name == "fgd"
    assert ENTRY_POINT_GROUP == "ozwald.placement_strategies"


def test_a_plugin_from_an_installed_distribution_is_found_and_loaded(plugins: Path) -> None:
    _install(plugins, **{"last-host-id": "last_host_id_strategy:LastHostId"})
    registry = StrategyRegistry.discover()
    assert "last-host-id" in registry.names()
    assert registry.origin("last-host-id") == (
        "plugin last_host_id_strategy:LastHostId from ozwald-test-strategies"
    )
    assert registry.load("last-host-id").name == "last-host-id"


def test_an_unknown_name_says_which_are_known_and_what_was_meant() -> None:
    with pytest.raises(UnknownStrategyError) as raised:
        StrategyRegistry.discover().load("binpak")
    message = str(raised.value)
    assert "unknown placement strategy 'binpak' (did you mean 'binpack'?)" in message
    assert "binpack, fgd, spread" in message


@pytest.mark.parametrize(
    ("target", "source", "why"),
    [
        ("missing_module:Thing", None, "cannot be imported: ModuleNotFoundError"),
        ("last_host_id_strategy:FACTORY_NAME", None, "cannot be imported: AttributeError"),
        ("plain:NOT_CALLABLE", "NOT_CALLABLE = 3\n", "is not a class or function"),
        ("plain:Nameless", "class Nameless:\n    name = 'other'\n", "has no key or search"),
        (
            "plain:Misnamed",
            "class Misnamed:\n    name = 'other'\n    def key(self): ...\n"
            "    def search(self): ...\n",
            "calls itself 'other', not 'broken'",
        ),
    ],
)
def test_a_broken_plugin_is_refused_saying_how(
    plugins: Path, target: str, source: str | None, why: str
) -> None:
    if source is not None:
        (plugins / "plain.py").write_text(source)
    _install(plugins, broken=target)
    with pytest.raises(StrategyLoadError) as raised:
        StrategyRegistry.discover().load("broken")
    assert why in str(raised.value)
    assert f"({target} from ozwald-test-strategies)" in str(raised.value)


def test_a_plugin_cannot_replace_a_built_in(
    plugins: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _install(plugins, binpack="last_host_id_strategy:LastHostId")
    with caplog.at_level(logging.WARNING):
        registry = StrategyRegistry.discover()
    assert isinstance(registry.load("binpack"), Binpack)
    assert "'binpack' is built in and cannot be replaced" in caplog.text


# In the fleet ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_each_deployment_is_placed_by_its_own_strategy(harness_path: Path) -> None:
    harness = Harness(harness_path)
    for host_id in ("h1", "h2", "h3"):
        harness.join(host_id)
    packed = deployment("packed", 3)
    spread = deployment("spread", 3)
    spread.strategy = "spread"
    await harness.apply(packed, spread)
    hosts = {i: harness.instance(i).host_id for i in harness.fleet.state.instances}
    # binpack (the orchestrator's default) fills one host; spread uses all three.
    assert len({hosts[f"packed-{n}"] for n in range(3)}) == 1
    assert len({hosts[f"spread-{n}"] for n in range(3)}) == 3
    assert harness.instance("spread-0").reason.endswith("(spread)")
    assert harness.instance("packed-0").reason.endswith("(binpack)")
    explained = await harness.fleet.explain("spread")
    assert explained.strategy == "spread"


@pytest.mark.asyncio
async def test_a_plugin_strategy_places_the_deployment_that_names_it(
    plugins: Path, harness_path: Path
) -> None:
    _install(plugins, **{"last-host-id": "last_host_id_strategy:LastHostId"})
    harness = Harness(harness_path)
    for host_id in ("h1", "h3", "h2"):
        harness.join(host_id)
    web = deployment("web", 2)
    web.strategy = "last-host-id"
    response = await harness.apply(web)
    assert [p.host_id for p in response.plan.changes[0].instances] == ["h3", "h3"]
    assert harness.instance("web-0").reason == "placed on h3 (last-host-id)"
    # A plan uses the deployment's strategy too.
    more = deployment("web", 3)
    more.strategy = "last-host-id"
    plan = harness.fleet.plan([more], [])
    assert [p.host_id for p in plan.plan.changes[0].instances] == ["h3", "h3", "h3"]


@pytest.mark.asyncio
async def test_an_unknown_or_broken_strategy_is_refused_at_apply_and_nothing_is_stored(
    plugins: Path, harness_path: Path
) -> None:
    _install(plugins, broken="missing_module:Thing")
    harness = Harness(harness_path)
    for name, expected in (
        (
            "sprad",
            "unknown placement strategy 'sprad' (did you mean 'spread'?); known strategies: "
            "binpack, broken, fgd, spread",
        ),
        ("broken", "placement strategy 'broken' (missing_module:Thing"),
    ):
        web = deployment("web", 1)
        web.strategy = name
        with pytest.raises(OrchestratorError) as applied:
            await harness.fleet.apply([web], [])
        with pytest.raises(OrchestratorError) as planned:
            harness.fleet.plan([web], [])
        for raised in (applied, planned):
            assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert raised.value.reason == error_reason_pb2.ERROR_REASON_DEPLOYMENT_INVALID
            assert expected in raised.value.message
    assert harness.store.desired_versions() == []


@pytest.mark.asyncio
async def test_changing_only_the_strategy_moves_nothing(harness_path: Path) -> None:
    harness = Harness(harness_path)
    harness.join("h1")
    harness.join("h2")
    await harness.apply(deployment("web", 2))
    before = {i: harness.instance(i).host_id for i in ("web-0", "web-1")}
    spread = deployment("web", 3)
    spread.strategy = "spread"
    response = await harness.apply(spread)
    assert sorted(response.plan.changes[0].changed_fields) == ["replicas", "strategy"]
    assert {i: harness.instance(i).host_id for i in before} == before
    # binpack put both on one host; spread puts the new one on the other.
    [packed] = set(before.values())
    assert harness.instance("web-2").host_id not in ("", packed)
    assert harness.instance("web-2").reason.endswith("(spread)")


@pytest.mark.asyncio
async def test_a_stored_deployment_whose_plugin_is_gone_is_placed_by_the_default(
    plugins: Path, harness_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _install(plugins, **{"last-host-id": "last_host_id_strategy:LastHostId"})
    first = Harness(harness_path)
    web = deployment("web", 1)
    web.strategy = "last-host-id"
    await first.apply(web)
    first.store.close()
    (plugins / "ozwald_test_strategies-1.0.dist-info" / "entry_points.txt").write_text("")
    importlib.invalidate_caches()

    with caplog.at_level(logging.ERROR):
        second = Harness(harness_path, first.clock)
        second.join("h1")
        await second.settle()
    assert second.instance("web-0").host_id == "h1"
    assert second.instance("web-0").reason == "placed on h1 (binpack)"
    assert "unknown placement strategy 'last-host-id'" in caplog.text


def test_the_orchestrator_refuses_an_unknown_default(tmp_path: Path) -> None:
    store = SqliteFleetStore(tmp_path / "orchestrator.db")
    with pytest.raises(UnknownStrategyError):
        Fleet(store, FleetSettings(health=SETTINGS.health, strategy="nope"))
    store.close()


@pytest.fixture
def harness_path(tmp_path: Path) -> Path:
    path = tmp_path / "fleet"
    path.mkdir()
    return path


def test_mypy_checks_that_a_plugin_fits_the_protocol(tmp_path: Path) -> None:
    mypy_api = pytest.importorskip("mypy.api")
    fits = tmp_path / "fits.py"
    fits.write_text(LAST_HOST_ID)
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        LAST_HOST_ID.replace(
            "def key(self, state: HostState, probe: Probe, positions: tuple[int, ...])",
            "def key(self, state: HostState)",
        )
    )
    out, _, status = mypy_api.run(["--strict", str(fits)])
    assert status == 0, out
    out, _, status = mypy_api.run(["--strict", str(wrong)])
    assert status == 1
    assert 'variable has type "Callable[[], Strategy]"' in out

"""A partitioned link (no FIN, no RST: silence) is noticed by the agent within its
keepalive bound, and the agent rejoins once the network heals."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ozwald_agent.fleet.channels import link_channel_options
from ozwald_agent.fleet.config import LinkTiming
from ozwald_agent.fleet.link import FleetLink
from tests.support.blackhole_proxy import BlackholeProxy
from tests.support.recording_orchestrator import RecordingOrchestrator, serve
from tests.unit.agent.fleet.agent_parts import AgentParts, agent_parts

# The orchestrator accepts a ping every 5 s at most; the default is 10 s + 5 s.
TIMING = LinkTiming(
    keepalive_s=5.0, keepalive_timeout_s=2.0, reconnect_first_s=0.05, reconnect_max_s=0.2
)
BOUND_S = TIMING.keepalive_s + TIMING.keepalive_timeout_s


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[AgentParts]:
    made = agent_parts(tmp_path)
    made.provisioner.start()
    yield made
    made.close()


def test_a_partition_is_noticed_within_keepalive_and_timeout(parts: AgentParts) -> None:
    orchestrator = RecordingOrchestrator(heartbeat_interval_s=0.5)
    server, port = serve(orchestrator)
    proxy = BlackholeProxy(("127.0.0.1", port))
    address = f"127.0.0.1:{proxy.port}"
    link = FleetLink(
        address=address,
        host_id="host-a",
        labels={},
        open_channel=lambda: grpc.insecure_channel(address, options=link_channel_options(TIMING)),
        provisioner=parts.provisioner,
        footprints=parts.footprints,
        versions=parts.store,
        collect_profile=lambda: parts.profile,
        timing=TIMING,
    )
    link.start()
    try:
        assert link.wait_joined(10)
        proxy.partition()
        started = time.monotonic()
        while link.joined and time.monotonic() - started < 3 * BOUND_S:
            time.sleep(0.05)
        noticed = time.monotonic() - started
        assert not link.joined, f"still joined {noticed:.1f} s into the partition"
        assert noticed <= BOUND_S + 2.0, f"noticed only after {noticed:.1f} s"
        proxy.heal()
        assert link.wait_joined(10)
        assert link.sessions == 2
    finally:
        link.stop()
        proxy.close()
        server.stop(0).wait()


def test_the_defaults_bound_detection_to_about_fifteen_seconds() -> None:
    options = dict(link_channel_options(LinkTiming()))
    assert options["grpc.keepalive_time_ms"] + options["grpc.http2.ping_timeout_ms"] <= 15_000
    assert options["grpc.http2.ping_timeout_ms"] == options["grpc.keepalive_timeout_ms"]

from __future__ import annotations

from pathlib import Path

from ozwald_sdk.ca import identity_of
from ozwald_testbed.sim_pki import FleetPki
from ozwald_testbed.simulated_fleet import hosts_from_fixtures, hosts_from_openb

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hardware"
# An excerpt of the trace (tests/fixtures/openb/SOURCE.md): 20 nodes.
OPENB = Path(__file__).resolve().parents[2] / "fixtures" / "openb"


def test_fixture_hosts_cycle_through_the_usable_fixtures_with_labels() -> None:
    hosts = hosts_from_fixtures(FIXTURES, 10)
    assert [h.host_id for h in hosts][:2] == ["sim-0000", "sim-0001"]
    assert hosts[0].labels["fixture"] == hosts[8].labels["fixture"] == "nvidia_h100_x8"
    assert len(hosts[0].hardware.gpus) == 8
    assert {h.labels["zone"] for h in hosts} == {"zone-0", "zone-1", "zone-2"}


def test_openb_hosts_keep_node_names_and_stay_unique_past_the_list() -> None:
    hosts = hosts_from_openb(OPENB / "openb_node_list_gpu_node.csv", 50)
    ids = [h.host_id for h in hosts]
    assert ids[0] == "openb-node-0000"
    assert len(set(ids)) == 50
    assert hosts[0].labels == {"gpu-model": "P100"}


def test_agent_certificates_name_the_host_and_the_agent_role_and_are_reused(
    tmp_path: Path,
) -> None:
    pki = FleetPki(tmp_path)
    first = pki.agent("gpu-07")
    identity = identity_of(first.certificate_chain)
    assert (identity.name, identity.role) == ("gpu-07", "agent")
    assert pki.agent("gpu-07") == first
    assert FleetPki(tmp_path).agent("gpu-07") == first
    foreign = pki.foreign_agent("gpu-07")
    assert foreign.certificate_chain != first.certificate_chain
    assert foreign.root_certificates == first.root_certificates

"""Name resolution on realm and declared networks, portals, port conflicts, network cleanup."""

from __future__ import annotations

import socket
import urllib.request

import docker
import pytest
from ozwald.common.v1 import service_spec_pb2 as spec_pb2

from ozwald_agent.runtime import DockerRuntime, NameConflictError, PortInUseError
from tests.integration.runtime.services import IDLE, PORT, start_service, tiny

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _idle(realm: str, name: str, **fields: object) -> spec_pb2.ServiceSpec:
    spec = tiny(realm, name=name, command=IDLE, **fields)
    spec.ClearField("health_check")
    return spec


def test_services_reach_each_other_by_name_on_the_realm_network(
    runtime: DockerRuntime, realm: str
) -> None:
    start_service(runtime, tiny(realm, name="web"))
    client = start_service(runtime, _idle(realm, "client"))

    fetched = runtime.exec(
        client.id, ["wget", "-q", "-O", "-", f"http://web:{PORT}/healthz"], timeout_s=5
    )

    assert fetched.exit_code == 0, fetched.output
    assert fetched.output == "ok\n"


def test_declared_networks_are_joined_before_start_with_the_service_alias(
    runtime: DockerRuntime, realm: str, engine: docker.DockerClient
) -> None:
    api = start_service(runtime, tiny(realm, name="api", networks=["backend"]))
    worker = start_service(runtime, _idle(realm, "worker", networks=["backend"]))

    declared = f"ozwald-{realm}-backend"
    assert set(api.networks) == {f"ozwald-{realm}", declared}
    assert api.networks[declared]
    aliases = engine.api.inspect_container(api.id)["NetworkSettings"]["Networks"][declared]
    assert "api" in aliases["Aliases"]
    # "<alias>.<network>" asks the engine's DNS for the address on that network only.
    resolved = runtime.exec(worker.id, ["nslookup", f"api.{declared}"], timeout_s=5)
    assert f"Address: {api.networks[declared]}" in resolved.output
    network = engine.networks.get(declared)
    assert network.attrs["Labels"]["ozwald.network"] == "backend"
    assert network.attrs["Labels"]["ozwald.agent"] == runtime.agent_id


def test_a_portal_answers_on_loopback_only(runtime: DockerRuntime, realm: str) -> None:
    port = _free_port()
    spec = tiny(realm, portals=[spec_pb2.Portal(name="http", host_port=port)])

    info = start_service(runtime, spec)

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
        assert answer.read() == b"ok\n"
    assert [(p.host_ip, p.host_port, p.container_port) for p in info.published_ports] == [
        ("127.0.0.1", port, PORT)
    ]
    check = runtime.host_facts.port_free("127.0.0.1", port)
    assert not check.free
    assert check.container == info.name


def test_a_portal_on_a_taken_port_fails_at_start_with_a_clear_error(
    runtime: DockerRuntime, realm: str
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        spec = tiny(realm, portals=[spec_pb2.Portal(name="http", host_port=port)])
        created = runtime.create(spec, fingerprint="fp")

        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port}"):
            runtime.start(created.id)


def test_unused_networks_are_removed_and_used_ones_kept(
    runtime: DockerRuntime, realm: str, engine: docker.DockerClient
) -> None:
    start_service(runtime, _idle(realm, "keeper"))
    gone = runtime.create(_idle(realm, "leaver", networks=["side"]), fingerprint="fp")
    runtime.remove(gone.id)

    removed = runtime.remove_unused_networks(realm=realm)

    assert removed == [f"ozwald-{realm}-side"]
    assert engine.networks.list(names=[f"ozwald-{realm}"])


def test_a_foreign_network_under_ozwalds_name_is_not_joined(
    runtime: DockerRuntime, realm: str, engine: docker.DockerClient
) -> None:
    foreign = engine.networks.create(
        f"ozwald-{realm}", driver="bridge", labels={"ozwald.agent": runtime.agent_id}
    )
    try:
        with pytest.raises(NameConflictError, match="belongs to something other than Ozwald"):
            runtime.create(tiny(realm), fingerprint="fp")
        assert runtime.list_managed() == []
    finally:
        foreign.remove()

"""Create, start, probe, stop, list, adopt and refuse duplicates on the real engine."""

from __future__ import annotations

import docker
import pytest

from ozwald_agent.runtime import (
    ContainerExistsError,
    ContainerState,
    DockerRuntime,
    ImageNotPresentError,
    ServiceLabels,
    run_probe,
)
from tests.integration.runtime.conftest import RuntimeFactory
from tests.integration.runtime.services import IDLE, start_service, tiny

pytestmark = pytest.mark.integration


def test_a_service_starts_labelled_and_answers_its_probe_on_the_realm_network(
    runtime: DockerRuntime, realm: str
) -> None:
    spec = tiny(realm, variety="cpu", profile="small")

    info = start_service(runtime, spec, fingerprint="fp-web-1")

    assert info.name == f"ozwald-{realm}-web"
    assert info.state is ContainerState.RUNNING
    assert info.service == ServiceLabels(
        agent_id=runtime.agent_id,
        realm=realm,
        service="web",
        fingerprint="fp-web-1",
        variety="cpu",
        profile="small",
    )
    address = runtime.container_ip(info.id)
    assert info.networks[f"ozwald-{realm}"] == address
    assert run_probe(runtime, info.name, spec.health_check, spec.connector_port).ok


def test_a_second_create_for_the_same_service_is_refused(
    runtime: DockerRuntime, realm: str
) -> None:
    first = runtime.create(tiny(realm), fingerprint="fp-1")

    with pytest.raises(ContainerExistsError) as caught:
        runtime.create(tiny(realm), fingerprint="fp-2")

    existing = caught.value.existing
    assert existing is not None
    assert existing.id == first.id
    assert existing.owned_by(runtime.agent_id)
    assert existing.service is not None
    assert existing.service.fingerprint == "fp-1"
    assert "adopt it" in caught.value.remedy
    assert [c.id for c in runtime.list_managed()] == [first.id]


def test_a_name_held_by_another_agent_is_refused_not_adopted(
    make_runtime: RuntimeFactory, realm: str
) -> None:
    ours, theirs = make_runtime(), make_runtime()
    theirs.create(tiny(realm), fingerprint="fp")

    with pytest.raises(ContainerExistsError, match="belongs to another agent") as caught:
        ours.create(tiny(realm), fingerprint="fp")

    assert caught.value.existing is not None
    assert not caught.value.existing.owned_by(ours.agent_id)
    assert ours.list_managed() == []


def test_listing_shows_only_this_agents_containers(
    make_runtime: RuntimeFactory, realm: str
) -> None:
    ours, theirs = make_runtime(), make_runtime(name_prefix="sim2")
    mine = ours.create(tiny(realm, name="a"), fingerprint="fp")
    ours.create(tiny(realm, name="b"), fingerprint="fp")
    other = theirs.create(tiny(realm, name="a"), fingerprint="fp")

    listed = ours.list_managed()

    assert [c.name for c in listed] == [f"ozwald-{realm}-a", f"ozwald-{realm}-b"]
    assert other.id not in {c.id for c in listed}
    assert [c.id for c in ours.list_managed(service="a")] == [mine.id]
    assert [c.name for c in theirs.list_managed()] == [f"sim2-{realm}-a"]


def test_a_restarted_agent_adopts_what_runs(make_runtime: RuntimeFactory, realm: str) -> None:
    before = make_runtime()
    spec = tiny(realm)
    started = start_service(before, spec, fingerprint="fp-7")
    before.close()

    after = make_runtime(agent_id=before.agent_id)
    (adopted,) = after.list_managed()

    assert adopted.id == started.id
    assert adopted.state is ContainerState.RUNNING
    assert adopted.service is not None
    assert adopted.service.fingerprint == "fp-7"
    assert run_probe(after, adopted.id, spec.health_check, spec.connector_port).ok


def test_a_missing_image_is_a_clear_error_and_leaves_nothing_behind(
    runtime: DockerRuntime, realm: str, engine: docker.DockerClient
) -> None:
    spec = tiny(realm, image="ozwald/never-built:0")

    with pytest.raises(ImageNotPresentError) as caught:
        runtime.create(spec, fingerprint="fp")

    assert str(caught.value).startswith("image ozwald/never-built:0 is not present on this host")
    assert "never pulls" in caught.value.remedy
    assert runtime.list_managed() == []
    assert engine.networks.list(names=[f"ozwald-{realm}"]) == []


def test_stop_is_sigterm_first(runtime: DockerRuntime, realm: str) -> None:
    graceful = tiny(
        realm,
        name="graceful",
        command=["sh", "-c", "trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done"],
    )
    graceful.ClearField("health_check")
    info = start_service(runtime, graceful)

    result = runtime.stop(info.id, timeout_s=5)

    assert result.exit_code == 0
    assert not result.killed
    assert result.elapsed_s < 3
    assert runtime.logs(info.id)[-1] == "bye"
    assert runtime.inspect(info.id).state is ContainerState.EXITED


def test_stop_kills_after_the_timeout_when_sigterm_is_ignored(
    runtime: DockerRuntime, realm: str
) -> None:
    stubborn = tiny(
        realm,
        name="stubborn",
        command=["sh", "-c", "trap '' TERM; echo up; while true; do sleep 0.1; done"],
    )
    stubborn.ClearField("health_check")
    info = start_service(runtime, stubborn)

    result = runtime.stop(info.id, timeout_s=1)

    assert result.exit_code == 137
    assert result.killed
    assert 0.9 <= result.elapsed_s < 5


def test_stopping_a_stopped_container_is_fine_and_removing_twice_says_so(
    runtime: DockerRuntime, realm: str
) -> None:
    spec = tiny(realm, command=IDLE)
    spec.ClearField("health_check")
    info = start_service(runtime, spec)
    runtime.stop(info.id, timeout_s=2)

    assert runtime.stop(info.id, timeout_s=2).exit_code is not None
    assert runtime.remove(info.id) is True
    assert runtime.remove(info.id) is False
    assert runtime.inspect_service(realm, "web") is None

"""Reading `docker inspect` output (as recorded from Docker 20.10) into ContainerInfo."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ozwald_agent.runtime.container_info import (
    ContainerInfo,
    ContainerState,
    PublishedPort,
    parse_engine_time,
)
from ozwald_agent.runtime.labels import ServiceLabels

LABELS = ServiceLabels(agent_id="a1", realm="main", service="web", fingerprint="fp").to_labels()


def _inspect(state: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "Id": "40a65174f3d8",
        "Name": "/ozwald-main-web",
        "Created": "2026-11-27T05:36:48.902030803Z",
        "Image": "sha256:ddbaed114d8f",
        "RestartCount": 0,
        "State": state,
        "Config": {"Image": "ozwald/tiny:local", "Labels": LABELS},
        "HostConfig": {
            "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]}
        },
        "NetworkSettings": {
            "Networks": {
                "ozwald-main": {"IPAddress": "172.21.0.2"},
                "ozwald-main-back": {"IPAddress": "172.22.0.2"},
            }
        },
        **extra,
    }


RUNNING = {
    "Status": "running",
    "Running": True,
    "OOMKilled": False,
    "Pid": 12718,
    "ExitCode": 0,
    "Error": "",
    "StartedAt": "2026-11-27T05:36:49.012146278Z",
    "FinishedAt": "0001-01-01T00:00:00Z",
}


def test_a_running_container() -> None:
    info = ContainerInfo.from_inspect(_inspect(RUNNING))

    assert info.name == "ozwald-main-web"
    assert info.image == "ozwald/tiny:local"
    assert info.state is ContainerState.RUNNING
    assert info.running
    assert info.exit_code is None
    assert info.pid == 12718
    assert info.started_at == datetime(2026, 11, 27, 5, 36, 49, 12146, tzinfo=UTC)
    assert info.finished_at is None
    assert info.service == ServiceLabels.from_labels(LABELS)
    assert info.owned_by("a1")
    assert not info.owned_by("a2")
    assert info.networks == {"ozwald-main": "172.21.0.2", "ozwald-main-back": "172.22.0.2"}
    assert info.published_ports == (PublishedPort("127.0.0.1", 18080, 8080, "tcp"),)


def test_an_exited_container_has_its_exit_code_and_oom_flag() -> None:
    state = {
        **RUNNING,
        "Status": "exited",
        "Running": False,
        "OOMKilled": True,
        "Pid": 0,
        "ExitCode": 137,
        "FinishedAt": "2026-11-27T05:40:00.5Z",
    }

    info = ContainerInfo.from_inspect(_inspect(state))

    assert info.state is ContainerState.EXITED
    assert not info.running
    assert info.exit_code == 137
    assert info.oom_killed
    assert info.finished_at == datetime(2026, 11, 27, 5, 40, 0, 500000, tzinfo=UTC)


def test_a_created_container_never_ran() -> None:
    state = {**RUNNING, "Status": "created", "Running": False, "Pid": 0}
    state["StartedAt"] = "0001-01-01T00:00:00Z"

    info = ContainerInfo.from_inspect(_inspect(state, NetworkSettings={"Networks": {}}))

    assert info.state is ContainerState.CREATED
    assert info.exit_code is None
    assert info.started_at is None
    assert info.networks == {}


def test_a_container_without_our_labels_is_reported_as_such() -> None:
    attrs = _inspect(RUNNING)
    attrs["Config"]["Labels"] = None

    info = ContainerInfo.from_inspect(attrs)

    assert info.service is None
    assert not info.owned_by("a1")


def test_engine_times() -> None:
    assert parse_engine_time("2026-11-27T05:36:49.812146278Z") == datetime(
        2026, 11, 27, 5, 36, 49, 812146, tzinfo=UTC
    )
    assert parse_engine_time("2026-11-27T05:36:49Z") == datetime(
        2026, 11, 27, 5, 36, 49, tzinfo=UTC
    )
    assert parse_engine_time("2026-11-27T07:36:49.1+02:00") == datetime(
        2026, 11, 27, 5, 36, 49, 100000, tzinfo=UTC
    )
    assert parse_engine_time("0001-01-01T00:00:00Z") is None
    assert parse_engine_time("") is None
    assert parse_engine_time(None) is None
    assert parse_engine_time("yesterday") is None

"""AgentServicer over a real in-process gRPC server, with a stand-in profile collector."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status as grpc_rpc_status
from ozwald.agent.v1 import agent_service_pb2, agent_service_pb2_grpc
from ozwald.common.v1 import host_profile_pb2

from ozwald_agent.provisioning.admission_facts import AdmissionFacts
from ozwald_agent.provisioning.provisioner import Provisioner
from ozwald_agent.runtime.container_spec import RuntimeSettings
from ozwald_agent.runtime.docker_runtime import DockerRuntime
from ozwald_agent.servicer import AgentServicer
from ozwald_agent.state.store import AgentStore
from ozwald_sdk.logs import CorrelationIdFilter, correlation_id
from ozwald_sdk.metadata import CORRELATION_ID_KEY
from ozwald_sdk.process.request_logging import RequestLoggingInterceptor
from tests.support.short_paths import short_tmpdir


class CountingCollector:
    """Returns a profile whose hostname says how many times it was asked."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail
        self.correlation_ids: list[str | None] = []

    def __call__(self) -> host_profile_pb2.HostProfile:
        self.calls += 1
        self.correlation_ids.append(correlation_id.get())
        if self.fail:
            raise RuntimeError("detector exploded")
        return host_profile_pb2.HostProfile(hostname=f"host-{self.calls}")


@dataclass
class Served:
    servicer: AgentServicer
    collector: CountingCollector
    stub: agent_service_pb2_grpc.AgentServiceStub


@pytest.fixture
def serve() -> Iterator[Served]:
    with short_tmpdir() as tmp:
        yield from _serve(tmp / "a.sock", CountingCollector())


@pytest.fixture
def serve_failing() -> Iterator[Served]:
    with short_tmpdir() as tmp:
        yield from _serve(tmp / "a.sock", CountingCollector(fail=True))


def _serve(socket: Path, collector: CountingCollector) -> Iterator[Served]:
    # Provisioning is idle here: its engine is never dialled by host-profile calls.
    store = AgentStore(socket.parent / "agent.db")
    runtime = DockerRuntime(
        RuntimeSettings(agent_id=store.agent_id()), base_url=f"unix://{socket.parent}/none"
    )
    provisioner = Provisioner(store, runtime, AdmissionFacts(runtime.host_facts), collector)
    servicer = AgentServicer(collector, provisioner)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4), interceptors=[RequestLoggingInterceptor()]
    )
    agent_service_pb2_grpc.add_AgentServiceServicer_to_server(servicer, server)
    server.add_insecure_port(f"unix:{socket}")
    server.start()
    with grpc.insecure_channel(f"unix:{socket}") as channel:
        yield Served(servicer, collector, agent_service_pb2_grpc.AgentServiceStub(channel))
    servicer.shut_down()
    server.stop(None)


def _error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = grpc_rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "the server sent no google.rpc.Status"
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


def _watch(interval_ms: int) -> agent_service_pb2.WatchHostProfileRequest:
    request = agent_service_pb2.WatchHostProfileRequest()
    request.interval.FromMilliseconds(interval_ms)
    return request


def test_get_collects_a_fresh_profile_per_call(serve: Served) -> None:
    first = serve.stub.GetHostProfile(agent_service_pb2.GetHostProfileRequest(), timeout=5)
    second = serve.stub.GetHostProfile(agent_service_pb2.GetHostProfileRequest(), timeout=5)
    assert (first.profile.hostname, second.profile.hostname) == ("host-1", "host-2")


def test_collector_failure_is_internal_with_a_stable_reason(serve_failing: Served) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        serve_failing.stub.GetHostProfile(agent_service_pb2.GetHostProfileRequest(), timeout=5)
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    info = _error_info(failed.value)
    assert (info.domain, info.reason) == ("ozwald", "HOST_PROFILE_FAILED")
    assert "detector exploded" in (failed.value.details() or "")
    assert info.metadata["remedy"]


@pytest.mark.parametrize("interval_ms", [999, 3_600_001])
def test_watch_refuses_intervals_out_of_range(serve: Served, interval_ms: int) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        next(serve.stub.WatchHostProfile(_watch(interval_ms), timeout=5))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = _error_info(refused.value)
    assert (info.reason, info.metadata["field"]) == ("INVALID_ARGUMENT", "interval")
    assert serve.collector.calls == 0


def test_watch_numbers_messages_and_shutdown_ends_it_unavailable(serve: Served) -> None:
    stream = serve.stub.WatchHostProfile(_watch(1000), timeout=10)
    first = next(stream)
    assert (first.sequence, first.profile.hostname) == (1, "host-1")
    # Shutting down must end the stream at once, not after the interval.
    threading.Timer(0.1, serve.servicer.shut_down).start()
    with pytest.raises(grpc.RpcError) as ended:
        next(stream)
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    assert _error_info(ended.value).reason == "SHUTTING_DOWN"


def test_cancelled_watch_releases_its_worker(serve: Served) -> None:
    stream = serve.stub.WatchHostProfile(_watch(3_600_000), timeout=10)
    next(stream)
    stream.cancel()
    # With the hour-long interval, a worker stuck in its wait would keep the stream open.
    for _ in range(50):
        if not serve.servicer._open_streams:
            break
        threading.Event().wait(0.05)
    assert not serve.servicer._open_streams


def test_handler_and_log_line_see_the_callers_correlation_id(
    serve: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ozwald_sdk.process.request_logging")
    caplog.handler.addFilter(CorrelationIdFilter())
    serve.stub.GetHostProfile(
        agent_service_pb2.GetHostProfileRequest(),
        timeout=5,
        metadata=((CORRELATION_ID_KEY, "cid-abc"),),
    )
    assert serve.collector.correlation_ids == ["cid-abc"]
    record = next(r for r in caplog.records if r.name == "ozwald_sdk.process.request_logging")
    assert record.getMessage().endswith("GetHostProfile finished: OK")
    assert getattr(record, "correlation_id", None) == "cid-abc"


def test_a_watch_the_client_cancels_is_logged_as_cancelled(
    serve: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ozwald_sdk.process.request_logging")
    stream = serve.stub.WatchHostProfile(_watch(3_600_000), timeout=10)
    next(stream)
    stream.cancel()
    for _ in range(50):
        if any(r.name == "ozwald_sdk.process.request_logging" for r in caplog.records):
            break
        threading.Event().wait(0.05)
    record = next(r for r in caplog.records if r.name == "ozwald_sdk.process.request_logging")
    assert record.getMessage().endswith("WatchHostProfile finished: CANCELLED")


def test_a_call_without_correlation_id_gets_a_fresh_one(serve: Served) -> None:
    serve.stub.GetHostProfile(agent_service_pb2.GetHostProfileRequest(), timeout=5)
    serve.stub.GetHostProfile(agent_service_pb2.GetHostProfileRequest(), timeout=5)
    first, second = serve.collector.correlation_ids
    assert first is not None and len(first) == 32
    assert first != second

"""AgentClient and AsyncAgentClient against a real in-process agent servicer."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from ozwald.common.v1 import error_reason_pb2
from ozwald.common.v1.host_profile_pb2 import CpuInfo, HostProfile

from ozwald_sdk.agent_client import AgentClient, AsyncAgentClient
from ozwald_sdk.errors import (
    AgentUnreachableError,
    DeadlineExceededError,
    ExitCode,
    HostProfileFailedError,
    InvalidArgumentError,
    ResourceExhaustedError,
)
from ozwald_sdk.retry import RetryPolicy
from ozwald_sdk.testing import Failure, FakeAgent, serve_agent

PROFILE = HostProfile(hostname="gpu-box-1", cpu=CpuInfo(logical_cores=16))
# gRPC rounds deadlines on the wire; the server may see a hair more than was given.
SLACK = 0.05
FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
DROPPED = Failure(grpc.StatusCode.UNAVAILABLE, "connection dropped")
INTERNAL = Failure(
    grpc.StatusCode.INTERNAL,
    "the agent could not collect the host profile",
    error_reason_pb2.ERROR_REASON_HOST_PROFILE_FAILED,
    remedy="look at the agent's log",
)
BAD_INTERVAL = Failure(
    grpc.StatusCode.INVALID_ARGUMENT,
    "watch interval out of range",
    error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT,
    remedy="ask for 1 s to 1 h",
    metadata={"field": "interval"},
)


@pytest.fixture
def fake() -> FakeAgent:
    return FakeAgent(PROFILE)


@pytest.fixture
def address(fake: FakeAgent) -> Iterator[str]:
    with serve_agent(fake) as address:
        yield address


@pytest.fixture
def client(address: str) -> Iterator[AgentClient]:
    with AgentClient(address, retry=FAST_RETRY) as client:
        yield client


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every backoff the retry loop sleeps, recorded and shortened."""
    recorded: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        real_sleep(min(seconds, 0.01))

    monkeypatch.setattr(time, "sleep", sleep)
    return recorded


def test_get_host_profile_returns_what_the_agent_serves(client: AgentClient) -> None:
    assert client.get_host_profile() == PROFILE


def test_correlation_id_reaches_the_agent_on_every_call(address: str, fake: FakeAgent) -> None:
    with AgentClient(address) as client:
        client.get_host_profile()
        client.get_host_profile()
    with AgentClient(address, correlation_id="req-42") as given:
        given.get_host_profile()
    first, second, third = (call.correlation_id for call in fake.calls)
    assert first == second == client.correlation_id
    assert first is not None and len(first) == 32 and int(first, 16) >= 0
    assert third == "req-42"


def test_deadline_crosses_the_wire(client: AgentClient, fake: FakeAgent) -> None:
    client.get_host_profile(timeout=2.5)
    [call] = fake.calls
    assert call.time_remaining is not None
    assert 1.5 < call.time_remaining <= 2.5 + SLACK


def test_client_default_timeout_applies_when_the_call_gives_none(
    address: str, fake: FakeAgent
) -> None:
    with AgentClient(address, timeout=4.0) as client:
        client.get_host_profile()
    [call] = fake.calls
    assert call.time_remaining is not None
    assert 3.0 < call.time_remaining <= 4.0 + SLACK


def test_slow_agent_raises_deadline_exceeded_naming_the_timeout(
    client: AgentClient, fake: FakeAgent
) -> None:
    fake.delay = 1.0
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError) as raised:
        client.get_host_profile(timeout=0.3)
    assert time.monotonic() - started < 0.9
    assert raised.value.exit_code == ExitCode.DEADLINE_EXCEEDED
    assert "0.3 s" in raised.value.message
    assert client.correlation_id in raised.value.remedy
    assert len(fake.calls) == 1


def test_unavailable_is_retried_until_it_succeeds(
    client: AgentClient, fake: FakeAgent, sleeps: list[float]
) -> None:
    fake.fail_next(DROPPED, times=2)
    assert client.get_host_profile() == PROFILE
    assert len(fake.calls) == 3
    assert len(sleeps) == 2
    assert all(0 <= pause <= FAST_RETRY.max_backoff for pause in sleeps)


def test_unavailable_retries_are_bounded_then_the_agent_is_unreachable(
    client: AgentClient, fake: FakeAgent
) -> None:
    fake.fail_next(DROPPED, times=10)
    with pytest.raises(AgentUnreachableError) as raised:
        client.get_host_profile()
    assert len(fake.calls) == FAST_RETRY.max_attempts
    assert "connection dropped" in raised.value.message
    assert "ozwald-agent" in raised.value.remedy


def test_resource_exhausted_is_retried_with_backoff(
    client: AgentClient, fake: FakeAgent, sleeps: list[float]
) -> None:
    fake.fail_next(Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy"), times=10)
    with pytest.raises(ResourceExhaustedError):
        client.get_host_profile()
    assert len(fake.calls) == FAST_RETRY.max_attempts
    assert len(sleeps) == FAST_RETRY.max_attempts - 1


@pytest.mark.parametrize(
    ("failure", "expected"),
    [(INTERNAL, HostProfileFailedError), (BAD_INTERVAL, InvalidArgumentError)],
)
def test_internal_and_invalid_argument_are_never_retried(
    client: AgentClient,
    fake: FakeAgent,
    failure: Failure,
    expected: type[Exception],
) -> None:
    fake.fail_next(failure, times=10)
    with pytest.raises(expected):
        client.get_host_profile()
    assert len(fake.calls) == 1


def test_retries_share_one_deadline(address: str, fake: FakeAgent) -> None:
    patient = RetryPolicy(max_attempts=50, initial_backoff=0.1, max_backoff=0.1)
    fake.fail_next(DROPPED, times=100)
    started = time.monotonic()
    with AgentClient(address, retry=patient) as client, pytest.raises(AgentUnreachableError):
        client.get_host_profile(timeout=0.5)
    assert time.monotonic() - started < 0.5 + 0.2
    remaining = [call.time_remaining or 0.0 for call in fake.calls]
    assert 1 < len(remaining) < patient.max_attempts
    # Each retry gets what is left of the one deadline, not a fresh one.
    assert all(left <= 0.5 + SLACK for left in remaining)
    assert remaining[-1] < remaining[0] - 0.1


def test_missing_socket_fails_fast_with_the_remedy(sleeps: list[float]) -> None:
    directory = Path(tempfile.mkdtemp(prefix="oz-", dir="/tmp"))
    try:
        started = time.monotonic()
        with (
            AgentClient(str(directory / "agent.sock"), timeout=30) as client,
            pytest.raises(AgentUnreachableError) as raised,
        ):
            client.get_host_profile()
        assert time.monotonic() - started < 1.0
    finally:
        shutil.rmtree(directory)
    assert sleeps == []
    assert f"unix://{directory}/agent.sock" in raised.value.message
    assert "ozwald-agent" in raised.value.remedy
    assert raised.value.exit_code == ExitCode.AGENT_UNREACHABLE


def test_socket_that_refuses_goes_through_bounded_retries(sleeps: list[float]) -> None:
    directory = Path(tempfile.mkdtemp(prefix="oz-", dir="/tmp"))
    path = directory / "agent.sock"
    try:
        # Bound but never listening: connect() is refused, as with a dead agent's socket.
        with socket.socket(socket.AF_UNIX) as stale:
            stale.bind(str(path))
            with (
                AgentClient(str(path), retry=FAST_RETRY) as client,
                pytest.raises(AgentUnreachableError) as raised,
            ):
                client.get_host_profile()
    finally:
        shutil.rmtree(directory)
    assert len(sleeps) == FAST_RETRY.max_attempts - 1
    assert str(path) in raised.value.message
    assert "ozwald-agent" in raised.value.remedy


def test_watch_sends_the_interval_and_yields_profiles(client: AgentClient, fake: FakeAgent) -> None:
    profiles = list(itertools.islice(client.watch_host_profile(0.05), 3))
    assert profiles == [PROFILE] * 3
    [call] = fake.calls
    assert call.method == "WatchHostProfile"
    assert call.interval == pytest.approx(0.05)
    assert call.correlation_id == client.correlation_id


def test_watch_reconnects_after_a_broken_stream(client: AgentClient, fake: FakeAgent) -> None:
    fake.messages_per_stream = 2
    profiles = list(itertools.islice(client.watch_host_profile(0.01), 5))
    assert profiles == [PROFILE] * 5
    streams = fake.calls_to("WatchHostProfile")
    assert len(streams) == 3
    assert {call.correlation_id for call in streams} == {client.correlation_id}


def test_watch_gives_up_after_consecutive_failures(client: AgentClient, fake: FakeAgent) -> None:
    fake.fail_next(DROPPED, times=10)
    with pytest.raises(AgentUnreachableError):
        list(client.watch_host_profile(0.01))
    assert len(fake.calls) == FAST_RETRY.max_attempts


def test_watch_does_not_reopen_on_invalid_argument(client: AgentClient, fake: FakeAgent) -> None:
    fake.fail_next(BAD_INTERVAL)
    with pytest.raises(InvalidArgumentError) as raised:
        next(client.watch_host_profile(0.01))
    assert raised.value.field == "interval"
    assert len(fake.calls) == 1


def test_watch_timeout_ends_the_iteration(client: AgentClient, fake: FakeAgent) -> None:
    started = time.monotonic()
    profiles = list(client.watch_host_profile(0.1, timeout=0.35))
    assert 0.3 < time.monotonic() - started < 1.5
    assert 2 <= len(profiles) <= 5
    assert len(fake.calls) == 1


def test_leaving_a_watch_cancels_the_stream(client: AgentClient, fake: FakeAgent) -> None:
    watch = client.watch_host_profile(0.01)
    next(watch)
    watch.close()
    # The agent sees the cancellation and stops; the client stays usable.
    assert client.get_host_profile() == PROFILE


def test_async_client_gets_retries_and_sends_its_correlation_id(
    address: str, fake: FakeAgent
) -> None:
    fake.fail_next(DROPPED)

    async def scenario() -> HostProfile:
        async with AsyncAgentClient(address, retry=FAST_RETRY, correlation_id="async-1") as c:
            return await c.get_host_profile(timeout=3)

    assert asyncio.run(scenario()) == PROFILE
    assert [call.correlation_id for call in fake.calls] == ["async-1", "async-1"]
    assert all(
        call.time_remaining is not None and call.time_remaining <= 3 + SLACK for call in fake.calls
    )


def test_async_client_maps_errors_and_does_not_retry_them(address: str, fake: FakeAgent) -> None:
    fake.fail_next(INTERNAL, times=10)

    async def scenario() -> None:
        async with AsyncAgentClient(address, retry=FAST_RETRY) as client:
            await client.get_host_profile()

    with pytest.raises(HostProfileFailedError) as raised:
        asyncio.run(scenario())
    assert raised.value.remedy == "look at the agent's log"
    assert isinstance(raised.value.__cause__, grpc.aio.AioRpcError)
    assert len(fake.calls) == 1


def test_async_watch_reconnects_after_a_broken_stream(address: str, fake: FakeAgent) -> None:
    fake.messages_per_stream = 2

    async def scenario() -> list[HostProfile]:
        profiles = []
        async with AsyncAgentClient(address, retry=FAST_RETRY) as client:
            async for profile in client.watch_host_profile(0.01):
                profiles.append(profile)
                if len(profiles) == 5:
                    break
        return profiles

    assert asyncio.run(scenario()) == [PROFILE] * 5
    assert len(fake.calls_to("WatchHostProfile")) == 3


def test_async_client_fails_fast_without_a_socket() -> None:
    async def scenario() -> None:
        async with AsyncAgentClient("/tmp/oz-surely-not-here/agent.sock") as client:
            await client.get_host_profile()

    with pytest.raises(AgentUnreachableError, match="does not exist"):
        asyncio.run(scenario())


def test_closing_the_client_ends_a_watch_in_another_thread_quietly(
    address: str, fake: FakeAgent
) -> None:
    client = AgentClient(address, retry=FAST_RETRY)
    received: list[HostProfile] = []
    failures: list[BaseException] = []
    first = threading.Event()

    def consume() -> None:
        try:
            for profile in client.watch_host_profile(0.05):
                received.append(profile)
                first.set()
        except BaseException as e:
            failures.append(e)

    watcher = threading.Thread(target=consume)
    watcher.start()
    assert first.wait(5)
    client.close()
    watcher.join(5)
    assert not watcher.is_alive()
    assert failures == []
    assert len(fake.calls) == 1

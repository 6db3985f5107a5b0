"""A real orchestrator process for each test, with throwaway mutual-TLS material, and a
FleetService stub on its unix socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from ozwald.orchestrator.v1 import fleet_service_pb2_grpc

from tests.integration.orchestrator.orchestrator_process import (
    TIMING,
    FleetStub,
    Pki,
    RunningOrchestrator,
    start_orchestrator,
)
from tests.support.short_paths import short_tmpdir


@pytest.fixture
def workdir() -> Iterator[Path]:
    with short_tmpdir() as path:
        yield path


@pytest.fixture
def pki(workdir: Path) -> Pki:
    return Pki(workdir / "pki")


@pytest.fixture
def orchestrator(workdir: Path, pki: Pki) -> Iterator[RunningOrchestrator]:
    running = start_orchestrator(workdir, pki, TIMING)
    yield running
    if running.process.poll() is None:
        code = running.terminate()
        assert code == 0, f"orchestrator exited with {code} on SIGTERM:\n{running.logs()}"


@pytest_asyncio.fixture
async def fleet(orchestrator: RunningOrchestrator) -> AsyncIterator[FleetStub]:
    async with grpc.aio.insecure_channel(orchestrator.unix_target) as channel:
        yield fleet_service_pb2_grpc.FleetServiceStub(channel)

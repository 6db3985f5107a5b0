"""`ozwald ... | head -1`: a reader that goes away ends the command quietly, with no
traceback, as other Unix tools do."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from ozwald.orchestrator.v1 import fleet_state_pb2 as FS

from tests.unit.cli.fleet_fake import FleetFake, serve_fleet


def _into_closed_pipe(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run `ozwald ARGV` with stdout a pipe nobody reads any more."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "ozwald_sdk.cli.main", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


def test_a_command_that_needs_no_server_stops_quietly() -> None:
    result = _into_closed_pipe(["config", "schema"])
    assert (result.returncode, result.stderr) == (0, "")


def test_hosts_json_into_a_closed_pipe_stops_quietly() -> None:
    fake = FleetFake()
    for i in range(200):
        fake.add_host(FS.Host(id=f"h{i}", state=FS.HOST_STATE_READY, connected=True))
    with serve_fleet(fake) as address:
        result = _into_closed_pipe(["--orchestrator", address, "hosts", "--json"])
    assert (result.returncode, result.stderr) == (0, "")

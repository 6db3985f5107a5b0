"""What the benchmarks share: figures, tables, a real agent, realm cleanup, HTTP polling.

The benchmarks run as scripts (`.venv/bin/python bench/NAME.py`), so this module is
imported by its bare name from the script's own directory.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, TypeVar

import docker
import docker.errors

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.errors import OzwaldError

ROOT = Path(__file__).resolve().parents[1]
TINY_IMAGE = "ozwald/tiny:local"
MIB = 1 << 20
GIB = 1 << 30
AGENT_START_TIMEOUT_S = 30.0
AGENT_STOP_TIMEOUT_S = 30.0

T = TypeVar("T")
R = TypeVar("R")


def progress(message: str) -> None:
    """A line for the person watching (stderr: stdout carries only the results)."""
    print(message, file=sys.stderr, flush=True)


# Figures ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Median and spread of repeated measurements (seconds unless said otherwise)."""

    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        if not samples:
            raise ValueError("no samples to summarise")
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))

    @property
    def spread(self) -> float:
        """(max - min) / median: how much the runs disagreed."""
        return (self.high - self.low) / self.median if self.median else 0.0


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        first = f"{cells[0]:<{widths[0]}}"
        rest = [f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def seconds(value: float) -> str:
    return f"{value:.3f}"


def summary_row(label: str, summary: Summary, *extra: str) -> list[str]:
    return [
        label,
        seconds(summary.median),
        seconds(summary.low),
        seconds(summary.high),
        f"{summary.spread:.0%}",
        *extra,
    ]


SUMMARY_HEADERS = ["", "median s", "min s", "max s", "spread"]


def rotated(items: Sequence[T], turn: int) -> list[T]:
    """`items` starting at position `turn`: each contender takes each slot in turn, so
    whatever the machine does at one moment does not always land on the same one."""
    shift = turn % len(items)
    return [*items[shift:], *items[:shift]]


class Labelled(Protocol):
    @property
    def label(self) -> str: ...


C = TypeVar("C", bound=Labelled)


def measure_rounds(
    contenders: Sequence[C],
    warmup: int,
    rounds: int,
    cycle: Callable[[C, bool], R],
    said: Callable[[R], str],
) -> dict[str, list[R]]:
    """Runs `cycle(contender, first_round)` for every contender, warm-up rounds first,
    the order rotating each round; returns the measured results by label."""
    results: dict[str, list[R]] = {c.label: [] for c in contenders}
    for turn in range(warmup + rounds):
        measured = turn >= warmup
        for contender in rotated(contenders, turn):
            result = cycle(contender, turn == 0)
            if measured:
                results[contender.label].append(result)
            which = f"run {turn - warmup + 1}" if measured else f"warm-up {turn + 1}"
            progress(f"{which}: {contender.label} {said(result)}")
    return results


# Docker -----------------------------------------------------------------------------


def engine() -> docker.DockerClient:
    return docker.from_env(timeout=120)


def ensure_tiny_image() -> None:
    """Builds ozwald/tiny:local when it is missing (no registry needed)."""
    try:
        engine().images.get(TINY_IMAGE)
    except docker.errors.ImageNotFound:
        progress(f"{TINY_IMAGE} is missing: building it with scripts/build-tiny-image.sh")
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "build-tiny-image.sh")], check=True, timeout=300
        )


def new_realm(prefix: str) -> str:
    """A realm name no one else uses (also a valid compose project and DNS label)."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def realm_filter(realm: str) -> dict[str, str | list[str] | bool]:
    return {"label": f"ozwald.realm={realm}"}


@contextmanager
def realm_cleanup(realm: str) -> Iterator[None]:
    """Removes every container, network and volume labelled with `realm` at the end,
    whatever happened; peers' containers and networks carry the same label."""
    try:
        yield
    finally:
        client = engine()
        for container in client.containers.list(
            ignore_removed=True, all=True, filters=realm_filter(realm)
        ):
            container.remove(force=True)
        for network in client.networks.list(filters=realm_filter(realm)):
            network.remove()
        for volume in client.volumes.list(filters=realm_filter(realm)):
            volume.remove(force=True)


def container_ip(client: docker.DockerClient, name: str, network: str) -> str:
    container = client.containers.get(name)
    networks = container.attrs["NetworkSettings"]["Networks"]
    return str(networks[network]["IPAddress"])


def host_memory_bytes() -> int:
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


# HTTP readiness ---------------------------------------------------------------------


def http_ok(host: str, port: int, path: str, timeout_s: float = 1.0) -> bool:
    """One GET, as the agent's own probe does it: 2xx is healthy, anything else is not."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        connection.request("GET", path)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return 200 <= status <= 299


def poll_until_healthy(
    targets: Mapping[str, str], port: int, path: str, interval_s: float, timeout_s: float
) -> int:
    """Probes every target (name -> IP) now, then each still failing every `interval_s`,
    until all answered 2xx once; returns how many rounds of probes that took. Raises
    TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    pending = dict(targets)
    rounds = 0
    while True:
        rounds += 1
        pending = {n: ip for n, ip in pending.items() if not http_ok(ip, port, path)}
        if not pending:
            return rounds
        if time.monotonic() > deadline:
            raise TimeoutError(f"never healthy within {timeout_s:g} s: {sorted(pending)}")
        time.sleep(interval_s)


# The agent --------------------------------------------------------------------------


class BenchAgent:
    """A real `ozwald-agent` process on a unix socket in `workdir`, stopped with SIGTERM."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.socket = workdir / "agent.sock"
        self.state_dir = workdir / "state"
        self.log = workdir / "agent.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"unix://{self.socket}"

    def __enter__(self) -> Self:
        with self.log.open("wb") as out:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ozwald_agent.main",
                    "--socket",
                    str(self.socket),
                    "--state-dir",
                    str(self.state_dir),
                    "--log-format",
                    "json",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(AGENT_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            progress(f"agent {process.pid} ignored SIGTERM for {AGENT_STOP_TIMEOUT_S:g} s: killing")
            process.kill()
            process.wait(10)

    def log_lines(self, since_wall: float) -> list[LogLine]:
        """The agent's JSON log lines written at or after `since_wall` (time.time())."""
        lines = []
        for text in self.log.read_text(errors="replace").splitlines():
            try:
                event = json.loads(text)
                wall = datetime.fromisoformat(str(event["ts"])).timestamp()
            except (ValueError, KeyError, TypeError):
                continue
            if wall >= since_wall:
                lines.append(LogLine(wall, str(event.get("msg", "")), event))
        return lines

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + AGENT_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"the agent exited at start:\n{self.log.read_text()}")
            if self.socket.exists():
                try:
                    with AgentClient(self.target, timeout=2.0) as client:
                        client.list_services()
                    return
                except OzwaldError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"the agent did not serve within {AGENT_START_TIMEOUT_S:g} s")


@dataclass(frozen=True)
class LogLine:
    """One line of the agent's JSON log: when (time.time()), its message, all its fields."""

    wall: float
    message: str
    fields: dict[str, object]


def wall_of(lines: Sequence[LogLine], message: str) -> float | None:
    """When the first line with exactly `message` was written, if any."""
    return next((line.wall for line in lines if line.message == message), None)


def walls_of(lines: Sequence[LogLine], prefix: str) -> list[float]:
    """When each line whose message starts with `prefix` was written."""
    return [line.wall for line in lines if line.message.startswith(prefix)]

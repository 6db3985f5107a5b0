"""heartbeat-capacity: 5,000 simulated agents heartbeating every 5 s into one orchestrator.

Three processes share this machine's 2 cores: `ozwald-orchestrator` (heartbeat interval
5 s, TTL 15 s, grace 30 s, its store under a temporary state dir), one process running
every simulated agent on one event loop (this script with `--role agents`: real
AgentLinkService streams, each over mutual TLS with its own certificate), and this one,
which drives them and watches the store.

Each host runs one instance (deployments spread over the fleet). In the steady state the
agents process makes instances crash at a steady rate (default 50/s); each crash is
restarted by its simulated agent and reported, as a real agent reports a container exit:
RESTARTING, then STARTING, then READY.

What is measured, per window of steady state (a warm-up window first, then 5):

- status-to-store latency: from the agent's clock when it writes the InstanceReport with
  the RESTARTING status (restart count k) to the moment this process, polling the
  orchestrator's SQLite store through a read-only connection every 20 ms, reads that
  instance's row with restart count >= k. This is what a restarted orchestrator, or
  anything reading the store, would know. p50 and p99.
- heartbeats/s handled: heartbeats the agents wrote per second, and beside it the rate
  at which hosts' last_seen times advanced in the store (polled every 0.5 s), plus the
  number of hosts the orchestrator marked down (goal: none).

The peer is the published Nomad figure (its servers cap heartbeats at 50/s by stretching
TTLs); it is not run here. The last line is our status-to-store p99 over the 1 s goal.

    .venv/bin/python bench/heartbeat_capacity.py [--agents 5000] [--windows 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import SUMMARY_HEADERS, Summary, progress, summary_row, table
from ozwald.agent.v1 import service_status_pb2
from ozwald.common.v1 import service_spec_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2, deployment_pb2, fleet_state_pb2

from ozwald_testbed.sim_orchestrator import OrchestratorProcess, OrchestratorSettings
from ozwald_testbed.sim_pki import FleetPki
from ozwald_testbed.simulated_agent import SimulatedAgent
from ozwald_testbed.simulated_fleet import SimulatedFleet, hosts_from_openb
from ozwald_testbed.simulated_hardware import GIB
from ozwald_testbed.simulated_runtime import RuntimeTiming

ROOT = Path(__file__).resolve().parents[1]
OPENB_NODES = ROOT.parent / "shared" / "data" / "openb" / "openb_node_list_gpu_node.csv"
REALM = "hbcap"
GOAL_P99_S = 1.0
NOMAD_HEARTBEATS_PER_S = 50
STATUS_POLL_S = 0.02
HOSTS_POLL_S = 0.5
# A status not in the store after this long counts as lost.
LOST_AFTER_S = 10.0
SETUP_TIMEOUT_S = 600.0


# The agents process ----------------------------------------------------------------------


def emit(kind: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"kind": kind, **fields}) + "\n")
    sys.stdout.flush()


async def run_agents(args: argparse.Namespace) -> int:
    _raise_nofile()
    fleet = SimulatedFleet(
        args.target,
        FleetPki(Path(args.pki)),
        timing=RuntimeTiming(ready_after_s=0.1, restart_after_s=0.1),
    )
    fleet.add_all(hosts_from_openb(OPENB_NODES, args.agents))
    for agent in fleet:
        agent.on_report = _crash_reporter
    await fleet.start(per_second=args.ramp)
    await fleet.wait_connected(SETUP_TIMEOUT_S)
    emit("connected", agents=len(fleet))
    rng = random.Random(7)
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        words = line.split()
        if not words or words[0] == "stop":
            break
        if words[0] == "window":
            rate, seconds = float(words[1]), float(words[2])
            emit("window", **await _window(fleet, rng, rate, seconds))
    await fleet.stop()
    return 0


def _crash_reporter(report: agent_link_service_pb2.InstanceReport, sent_at: float) -> None:
    for status in report.instances:
        if status.state == service_status_pb2.INSTANCE_STATE_RESTARTING:
            emit("sent", id=status.name, restarts=status.restart_count, at=sent_at)


async def _window(
    fleet: SimulatedFleet, rng: random.Random, rate: float, seconds: float
) -> dict[str, float]:
    """Crash `rate` READY instances per second for `seconds`; count heartbeats meanwhile."""
    agents = list(fleet)
    beats = sum(a.heartbeats_sent for a in agents)
    start_wall, start = time.time(), time.monotonic()
    crashes = 0
    lags: list[float] = []
    tick = 0.01
    while (now := time.monotonic()) < start + seconds:
        due = int((now - start) * rate) - crashes
        for _ in range(due):
            if _crash_one(agents, rng):
                crashes += 1
        await asyncio.sleep(tick)
        # How late the loop woke us: when it is busy, every agent's messages wait too.
        lags.append(time.monotonic() - now - tick)
    elapsed = time.monotonic() - start
    return {
        "start": start_wall,
        "end": start_wall + elapsed,
        "heartbeats": sum(a.heartbeats_sent for a in agents) - beats,
        "crashes": crashes,
        "loop_lag_p99": _percentile(sorted(lags), 99),
    }


def _crash_one(agents: list[SimulatedAgent], rng: random.Random) -> bool:
    for _ in range(20):
        agent = rng.choice(agents)
        if not agent.connected:
            continue
        for name in agent.runtime.names():
            status = agent.runtime.status(name)
            if status is not None and status.state == service_status_pb2.INSTANCE_STATE_READY:
                agent.runtime.crash(name)
                return True
    return False


# The driver ------------------------------------------------------------------------------


@dataclass
class WindowResult:
    start: float
    end: float
    heartbeats: int
    crashes: int
    latencies: list[float] = field(default_factory=list)
    stored_heartbeats: int = 0
    orchestrator_cpu: float = 0.0
    agents_cpu: float = 0.0
    agents_loop_lag_p99: float = 0.0

    @property
    def seconds(self) -> float:
        return self.end - self.start


class StoreWatcher:
    """Polls the orchestrator's store read-only: statuses the agents sent, hosts' last_seen."""

    def __init__(self, db: Path) -> None:
        self._db = db
        # Instance id -> the restarts reported and not yet seen in the store, oldest first:
        # (restart count, when the agent wrote it).
        self._pending: dict[str, list[tuple[int, float]]] = {}
        self._lock = threading.Lock()
        self.latencies: list[tuple[float, float]] = []  # (sent at, latency)
        self.lost = 0
        self.last_seen_changes: list[tuple[float, int]] = []  # (polled at, hosts advanced)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def expect(self, instance_id: str, restarts: int, sent_at: float) -> None:
        with self._lock:
            self._pending.setdefault(instance_id, []).append((restarts, sent_at))

    def pending(self) -> int:
        with self._lock:
            return sum(len(p) for p in self._pending.values())

    def host_downs(self) -> int:
        with self._connect() as db:
            row = db.execute("SELECT count(*) FROM events WHERE kind = 'host-down'").fetchone()
        return int(row[0])

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self._db}?mode=ro", uri=True, timeout=5.0)

    def _run(self) -> None:
        db = self._connect()
        seen: dict[str, int] = {}
        next_hosts = time.monotonic()
        try:
            while not self._stop.is_set():
                self._poll_statuses(db)
                if time.monotonic() >= next_hosts:
                    next_hosts += HOSTS_POLL_S
                    now = time.time()
                    rows = db.execute("SELECT id, last_seen_us FROM hosts").fetchall()
                    advanced = sum(1 for host_id, us in rows if seen.get(host_id, us) != us)
                    seen = dict(rows)
                    self.last_seen_changes.append((now, advanced))
                time.sleep(STATUS_POLL_S)
        finally:
            db.close()

    def _poll_statuses(self, db: sqlite3.Connection) -> None:
        with self._lock:
            wanted = list(self._pending)
        if not wanted:
            return
        marks = ",".join("?" * len(wanted))
        rows = db.execute(
            f"SELECT id, instance FROM instances WHERE id IN ({marks})", wanted
        ).fetchall()
        now = time.time()
        stored = {
            instance_id: fleet_state_pb2.Instance.FromString(blob).agent_status.restart_count
            for instance_id, blob in rows
        }
        with self._lock:
            for instance_id, waiting in list(self._pending.items()):
                left = []
                for restarts, sent_at in waiting:
                    if stored.get(instance_id, -1) >= restarts:
                        self.latencies.append((sent_at, now - sent_at))
                    elif now - sent_at > LOST_AFTER_S:
                        self.lost += 1
                    else:
                        left.append((restarts, sent_at))
                if left:
                    self._pending[instance_id] = left
                else:
                    del self._pending[instance_id]


class AgentsProcess:
    """The child process running every simulated agent; speaks JSON lines."""

    def __init__(self, args: argparse.Namespace, target: str, pki: Path) -> None:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--role",
            "agents",
            "--target",
            target,
            "--pki",
            str(pki),
            "--agents",
            str(args.agents),
            "--ramp",
            str(args.ramp),
        ]
        self.popen = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[dict[str, object]] = queue.Queue()
        self.sent: list[tuple[str, int, float]] = []
        self.watcher: StoreWatcher | None = None
        threading.Thread(target=self._read, name="agents-stdout", daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            message = json.loads(line)
            if message["kind"] == "sent" and self.watcher is not None:
                self.watcher.expect(
                    str(message["id"]), int(_number(message, "restarts")), _number(message, "at")
                )
            else:
                self.lines.put(message)
        self.lines.put({"kind": "exited"})

    def send(self, line: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def wait_for(self, kind: str, timeout: float) -> dict[str, object]:
        message = self.lines.get(timeout=timeout)
        if message["kind"] != kind:
            raise RuntimeError(f"the agents process said {message}, not {kind}")
        return message


def deployments(count: int, per_deployment: int) -> list[deployment_pb2.Deployment]:
    result = []
    for i in range(count):
        name = f"svc-{i:03d}"
        spec = service_spec_pb2.ServiceSpec(
            realm=REALM, name=name, variety="cpu", image="bench/sim:1"
        )
        spec.resources.memory_bytes = 2 * GIB
        spec.resources.cpus = 1
        deployment = deployment_pb2.Deployment(
            name=name, realm=REALM, service=name, candidates=[spec], replicas=per_deployment
        )
        deployment.constraints.spread_across_hosts = True
        result.append(deployment)
    return result


def drive(args: argparse.Namespace) -> int:
    _raise_nofile()
    with tempfile.TemporaryDirectory(prefix="oz-hb-", dir="/tmp") as work_text:
        work = Path(work_text)
        pki = FleetPki(work / "pki")
        hosts = hosts_from_openb(OPENB_NODES, args.agents)
        started = time.monotonic()
        for host in hosts:
            pki.agent(host.host_id)
        progress(f"issued {len(hosts)} agent certificates in {time.monotonic() - started:.1f} s")
        settings = OrchestratorSettings(
            heartbeat_interval_s=args.heartbeat_interval,
            heartbeat_ttl_s=args.heartbeat_interval * 3,
            reschedule_grace_s=args.heartbeat_interval * 6,
            strategy="spread",
        )
        orchestrator = OrchestratorProcess(work / "o", pki, settings)
        orchestrator.start()
        agents: AgentsProcess | None = None
        try:
            agents = AgentsProcess(args, orchestrator.target, work / "pki")
            started = time.monotonic()
            agents.wait_for("connected", SETUP_TIMEOUT_S)
            progress(f"{args.agents} agents registered in {time.monotonic() - started:.1f} s")
            results = _steady_state(args, orchestrator, agents)
            agents.send("stop")
            agents.popen.wait(60)
        except BaseException:
            progress(f"orchestrator log tail:\n{orchestrator.log_tail(30)}")
            raise
        finally:
            if agents is not None and agents.popen.poll() is None:
                agents.popen.kill()
            orchestrator.stop()
    report(args, results)
    return 0


@dataclass
class SteadyState:
    windows: list[WindowResult]
    lost: int
    host_downs: int
    instances: int


def _steady_state(
    args: argparse.Namespace, orchestrator: OrchestratorProcess, agents: AgentsProcess
) -> SteadyState:
    per_deployment = 100
    wanted = deployments(max(1, args.agents // per_deployment), per_deployment)
    total = sum(d.replicas for d in wanted)
    started = time.monotonic()
    with orchestrator.client(timeout=120) as client:
        client.apply_deployments(wanted, realms=[REALM])
        while True:
            instances = client.list_instances()
            running = sum(1 for i in instances if i.state == fleet_state_pb2.INSTANCE_STATE_RUNNING)
            if running == total:
                break
            if time.monotonic() - started > SETUP_TIMEOUT_S:
                raise TimeoutError(f"only {running} of {total} instances running")
            time.sleep(2)
    progress(f"{total} instances placed and running in {time.monotonic() - started:.1f} s")
    watcher = StoreWatcher(orchestrator.state_dir / "orchestrator.db")
    agents.watcher = watcher
    watcher.start()
    downs_before = watcher.host_downs()
    assert orchestrator.process is not None
    windows = []
    for n in range(args.windows + 1):
        label = "warm-up" if n == 0 else f"window {n}/{args.windows}"
        cpu_orchestrator = _cpu_seconds(orchestrator.process.pid)
        cpu_agents = _cpu_seconds(agents.popen.pid)
        agents.send(f"window {args.crash_rate} {args.window_seconds}")
        answer = agents.wait_for("window", args.window_seconds + 60)
        result = WindowResult(
            start=_number(answer, "start"),
            end=_number(answer, "end"),
            heartbeats=int(_number(answer, "heartbeats")),
            crashes=int(_number(answer, "crashes")),
            orchestrator_cpu=(_cpu_seconds(orchestrator.process.pid) - cpu_orchestrator),
            agents_cpu=_cpu_seconds(agents.popen.pid) - cpu_agents,
            agents_loop_lag_p99=_number(answer, "loop_lag_p99"),
        )
        progress(f"{label}: {result.crashes} crashes, {result.heartbeats} heartbeats")
        if n:
            windows.append(result)
    deadline = time.monotonic() + LOST_AFTER_S + 1
    while watcher.pending() and time.monotonic() < deadline:
        time.sleep(0.1)
    watcher.stop()
    for window in windows:
        window.latencies = [
            latency for sent, latency in watcher.latencies if window.start <= sent < window.end
        ]
        window.stored_heartbeats = sum(
            n for at, n in watcher.last_seen_changes if window.start < at <= window.end
        )
    return SteadyState(windows, watcher.lost, watcher.host_downs() - downs_before, total)


def report(args: argparse.Namespace, state: SteadyState) -> None:
    windows = state.windows
    print(
        f"heartbeat-capacity: {args.agents} simulated agents (one process) -> one "
        f"ozwald-orchestrator, heartbeat every {args.heartbeat_interval:g} s, "
        f"{state.instances} instances, {args.crash_rate:g} crashes/s (each reported as "
        f"RESTARTING, STARTING, READY), {len(windows)} windows of {args.window_seconds:g} s "
        f"after a warm-up; store polled read-only every {STATUS_POLL_S * 1000:.0f} ms"
    )
    print()
    rows = []
    for n, w in enumerate(windows, 1):
        ordered = sorted(w.latencies)
        rows.append(
            [
                str(n),
                str(len(ordered)),
                f"{_percentile(ordered, 50) * 1000:.0f}",
                f"{_percentile(ordered, 99) * 1000:.0f}",
                f"{(ordered[-1] if ordered else 0) * 1000:.0f}",
                f"{w.heartbeats / w.seconds:.0f}",
                f"{w.stored_heartbeats / w.seconds:.0f}",
                f"{w.orchestrator_cpu / w.seconds:.0%}",
                f"{w.agents_cpu / w.seconds:.0%}",
                f"{w.agents_loop_lag_p99 * 1000:.0f}",
            ]
        )
    print(
        table(
            [
                "window",
                "statuses",
                "p50 ms",
                "p99 ms",
                "max ms",
                "heartbeats/s sent",
                "last_seen advances/s",
                "orchestrator CPU",
                "agents CPU",
                "agents loop lag p99 ms",
            ],
            rows,
        )
    )
    print()
    p50 = Summary.of([_percentile(sorted(w.latencies), 50) for w in windows])
    p99 = Summary.of([_percentile(sorted(w.latencies), 99) for w in windows])
    # Handled = reached the store: hosts whose last_seen advanced, per second.
    rate = Summary.of([w.stored_heartbeats / w.seconds for w in windows])
    print(
        table(
            [*SUMMARY_HEADERS, "goal", "Nomad (published)"],
            [
                summary_row("status-to-store p50", p50, "", ""),
                summary_row("status-to-store p99", p99, f"< {GOAL_P99_S:g} s", ""),
                [
                    "heartbeats/s stored",
                    f"{rate.median:.0f}",
                    f"{rate.low:.0f}",
                    f"{rate.high:.0f}",
                    f"{rate.spread:.0%}",
                    f"{args.agents / args.heartbeat_interval:.0f} (all)",
                    f"{NOMAD_HEARTBEATS_PER_S} (cap)",
                ],
            ],
        )
    )
    print()
    print(
        f"hosts marked down during the measurement: {state.host_downs} (goal 0); statuses "
        f"never seen in the store within {LOST_AFTER_S:g} s: {state.lost}"
    )
    met = p99.median < GOAL_P99_S and state.host_downs == 0 and state.lost == 0
    print(
        f"goal (p99 < {GOAL_P99_S:g} s, no host down, nothing lost) met: {'yes' if met else 'no'}"
    )
    print(
        f"RATIO heartbeat-capacity={p99.median / GOAL_P99_S:.2f} (median over windows of the "
        f"status-to-store p99 / the {GOAL_P99_S:g} s goal, goal < 1.00; heartbeats/s stored "
        f"{rate.median:.0f} = {rate.median / NOMAD_HEARTBEATS_PER_S:.0f}x Nomad's 50/s cap)"
    )


def _number(message: dict[str, object], key: str) -> float:
    value = message.get(key)
    if not isinstance(value, int | float):
        raise RuntimeError(f"the agents process sent {message}: {key} is not a number")
    return float(value)


def _percentile(ordered: list[float], percent: float) -> float:
    if not ordered:
        return 0.0
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(percent) - 1]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; 12 and 13 after the name and state.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _raise_nofile() -> None:
    """One socket per agent on each side: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["driver", "agents"], default="driver")
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument("--heartbeat-interval", type=float, default=5.0)
    parser.add_argument("--crash-rate", type=float, default=50.0, help="crashes per second")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--window-seconds", type=float, default=12.0)
    parser.add_argument("--ramp", type=float, default=500.0, help="agents started per second")
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--pki", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "agents":
        return asyncio.run(run_agents(args))
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())

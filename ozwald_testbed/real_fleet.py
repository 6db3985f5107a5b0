"""A real fleet on one machine: `ozwald-orchestrator` plus N real `ozwald-agent`s, each agent
in a network namespace of its own (ozwald_testbed.netns), all sharing the Docker Engine.

What is real: the processes, their mutual TLS (a CA from ozwald_sdk.ca, one certificate per
host with CN = host id and OU = agent), the agent link over TCP between addresses, the
containers. What is shared, unlike a real fleet: the kernel, the disks and the one Docker
Engine. Each agent names its containers with its own prefix (the namespace's name, e.g.
`ozwald-h1-<realm>-<service>`) and labels them with its agent id (`ozwald.agent`, kept in
its state store): the testbed counts and removes only containers with both, so another
agent on the engine that happens to use the same prefix is never touched.

"A host fails" (`fail_host`) means what a dead machine means: its agent is SIGKILLed AND
its containers are killed, since on the shared engine they would otherwise live on, which
no dead machine does. Killing only the agent (`kill_agent`) is a crashed agent on a live
host: its containers keep running and a restarted agent adopts them.

Everything lives in a work directory (sockets, state, certificates, logs, testbed.json);
the work directory's path is in every process's command line, so `down` finds and stops
the testbed's processes even after the run that started them was killed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import docker
import grpc
from docker.models.containers import Container
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_sdk import ca
from ozwald_sdk.errors import OzwaldError
from ozwald_sdk.orchestrator_client import FleetClient
from ozwald_sdk.target import TlsFiles
from ozwald_testbed.netns import HostNamespaces, NamespaceHost
from ozwald_testbed.real_processes import TestbedProcess, find_processes, start_process

logger = logging.getLogger(__name__)

DEFAULT_WORKDIR = Path("/tmp/ozwald-testbed")
DEFAULT_PORT = 7443
STATE_FILE = "testbed.json"
# What `down` leaves in the work directory: the identities and the logs.
KEPT_BY_DOWN = frozenset({"ca", "logs"})
ORCHESTRATOR_NAME = "orchestrator"
OPERATOR_NAME = "testbed-operator"
ORCHESTRATOR_MODULE = "ozwald_orchestrator.main"
AGENT_MODULE = "ozwald_agent.main"
# The agent's container labels (docs/architecture.md) and its state store's file name.
MANAGED_LABEL = "ozwald.managed=true"
AGENT_LABEL = "ozwald.agent"
REALM_LABEL = "ozwald.realm"
SERVICE_LABEL = "ozwald.service"
AGENT_STORE = "agent.db"
_POLL_S = 0.1

HostState = fleet_state_pb2.HostState


@dataclass(frozen=True)
class HealthTimings:
    """How fast the orchestrator notices a host going and gives up on it (docs/orchestrator.md)."""

    heartbeat_interval: float = 1.0
    heartbeat_ttl: float = 3.0
    reschedule_grace: float = 5.0

    def orchestrator_args(self) -> list[str]:
        return [
            "--heartbeat-interval",
            f"{self.heartbeat_interval:g}",
            "--heartbeat-ttl",
            f"{self.heartbeat_ttl:g}",
            "--reschedule-grace",
            f"{self.reschedule_grace:g}",
        ]


@dataclass(frozen=True)
class TestbedSettings:
    """Everything that makes one testbed: saved in testbed.json so later commands
    (`python -m ozwald_testbed down`, `partition h2`) act on the same one."""

    workdir: Path = DEFAULT_WORKDIR
    hosts: int = 3
    subnet: str = "10.213.0.0/24"
    prefix: str = "ozwald-h"
    bridge: str = "ozwald-br0"
    port: int = DEFAULT_PORT
    timings: HealthTimings = field(default_factory=HealthTimings)
    labels: Mapping[str, str] = field(default_factory=lambda: {"testbed": "real"})

    __test__ = False  # a name pytest would otherwise try to collect

    def network(self) -> HostNamespaces:
        return HostNamespaces(
            count=self.hosts,
            subnet=ipaddress.IPv4Network(self.subnet),
            prefix=self.prefix,
            bridge=self.bridge,
        )

    def to_json(self) -> str:
        data = asdict(self)
        data["workdir"] = str(self.workdir)
        data["labels"] = dict(self.labels)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TestbedSettings:
        data = json.loads(text)
        return cls(
            workdir=Path(data["workdir"]),
            hosts=int(data["hosts"]),
            subnet=str(data["subnet"]),
            prefix=str(data["prefix"]),
            bridge=str(data["bridge"]),
            port=int(data["port"]),
            timings=HealthTimings(**data["timings"]),
            labels=dict(data["labels"]),
        )


class TestbedError(RuntimeError):
    """The testbed could not be brought up, or did not do what was awaited in time."""


class RealFleet:
    """One orchestrator and `settings.hosts` agents; `up()` starts them, `down()` removes
    every trace (processes, the testbed's containers and networks, namespaces)."""

    __test__ = False

    def __init__(self, settings: TestbedSettings) -> None:
        self.settings = settings
        self.network = settings.network()
        self.workdir = settings.workdir
        self.orchestrator: TestbedProcess | None = None
        self.agents: dict[str, TestbedProcess] = {}

    # -- where things are -------------------------------------------------------------

    @property
    def marker(self) -> str:
        """In every testbed process's command line (all their paths are under the work
        directory): how `down` recognises them. The slash keeps /tmp/bed from matching
        /tmp/bed2."""
        return f"{self.workdir}/"

    @property
    def ca_dir(self) -> Path:
        return self.workdir / "ca"

    @property
    def orchestrator_socket(self) -> Path:
        return self.workdir / "orchestrator.sock"

    @property
    def orchestrator_address(self) -> str:
        return f"{self.network.gateway}:{self.settings.port}"

    def agent_dir(self, host: NamespaceHost) -> Path:
        return self.workdir / host.name

    def agent_socket(self, host: NamespaceHost) -> Path:
        return self.agent_dir(host) / "agent.sock"

    def container_prefix(self, host: NamespaceHost) -> str:
        return host.namespace

    def operator_tls(self) -> TlsFiles:
        """Files for FleetService over TCP (`ozwald hosts --orchestrator ADDRESS --tls-...`)."""
        return TlsFiles(
            ca=self.ca_dir / ca.CA_CERT_NAME,
            cert=self.ca_dir / f"{OPERATOR_NAME}.crt",
            key=self.ca_dir / f"{OPERATOR_NAME}.key",
        )

    def client(self, timeout: float = 5.0) -> FleetClient:
        """FleetService over the orchestrator's unix socket (no certificate needed)."""
        return FleetClient(f"unix://{self.orchestrator_socket}", timeout=timeout)

    # -- bringing it up and down ----------------------------------------------------------

    def up(self, timeout: float = 60.0) -> None:
        """Namespaces, certificates, orchestrator, agents; returns when every host is READY."""
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.workdir / STATE_FILE).write_text(self.settings.to_json())
        self.network.up()
        self.issue_certificates()
        self.start_orchestrator(timeout=timeout)
        # Started together, so the agents' seconds of start-up overlap.
        for host in self.network.hosts:
            self.start_agent(host, wait=False)
        for host in self.network.hosts:
            self.wait_for_agent(host)
        self.wait_for_hosts(
            {host.name: HostState.HOST_STATE_READY for host in self.network.hosts},
            timeout=timeout,
        )

    def down(self) -> None:
        """Stop every testbed process (also those of a killed run), remove the testbed's
        containers, networks, namespaces and state; the CA and the logs stay."""
        self.adopt_processes()
        processes = list(self.agents.values())
        if self.orchestrator is not None:
            processes.append(self.orchestrator)
        known = {p.pid for p in processes}
        # Whatever else runs with the marker: an agent of a host this testbed no longer has.
        processes += [p for p in find_processes(self.marker) if p.pid not in known]
        for process in processes:
            process.signal(signal.SIGTERM)
        for process in processes:
            if not process.wait(timeout=10.0):
                logger.warning("%s ignored SIGTERM for 10 s; killing it", process.name)
                process.kill()
        self.agents.clear()
        self.orchestrator = None
        self.remove_containers()
        self.network.down()
        self.forget_state()

    def forget_state(self) -> None:
        """Remove the orchestrator's store and the agents' state, so the next `up` starts a
        fleet with nothing in it. The CA and certificates stay (an operator's exported TLS
        variables keep working), and so do the logs."""
        if not self.workdir.is_dir():
            return
        for entry in self.workdir.iterdir():
            if entry.name in KEPT_BY_DOWN:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def issue_certificates(self) -> None:
        """A CA and certificates for the orchestrator (its address as a SAN), every host and
        one operator. The CA and the hosts' and operator's certificates are kept when
        present, so a testbed started again keeps its identities."""
        if not (self.ca_dir / ca.CA_CERT_NAME).exists():
            ca.init_ca(self.ca_dir, name="Ozwald testbed CA")

        def issue(role: ca.Role, name: str, sans: tuple[str, ...] = ()) -> None:
            if not (self.ca_dir / f"{name}.crt").exists():
                ca.issue(self.ca_dir, role, name, sans=sans)

        # Issued afresh each time: its address (a SAN) follows --subnet.
        ca.issue(
            self.ca_dir,
            "orchestrator",
            ORCHESTRATOR_NAME,
            sans=(str(self.network.gateway), "127.0.0.1", "localhost"),
            force=True,
        )
        issue("operator", OPERATOR_NAME)
        for host in self.network.hosts:
            issue("agent", host.name)

    def adopt_processes(self) -> None:
        """Know the processes an earlier `up` (another program) started, by their command
        lines: how `python -m ozwald_testbed kill-agent h2` finds h2's agent."""
        logs = self.workdir / "logs"
        known = {p.pid for p in self.agents.values()}
        if self.orchestrator is not None:
            known.add(self.orchestrator.pid)
        for process in find_processes(self.marker):
            if process.pid in known:
                continue  # started here: keep the handle that can reap it
            if process.name == ORCHESTRATOR_MODULE:
                process.name, process.log = ORCHESTRATOR_NAME, logs / "orchestrator.log"
                self.orchestrator = process
                continue
            for host in self.network.hosts:
                if str(self.agent_socket(host)) in process.command:
                    process.name, process.log = host.name, logs / f"{host.name}.log"
                    self.agents[host.name] = process

    # -- the orchestrator -----------------------------------------------------------------

    def start_orchestrator(self, timeout: float = 30.0) -> TestbedProcess:
        if self.orchestrator is not None and self.orchestrator.running():
            raise TestbedError(f"the orchestrator already runs (pid {self.orchestrator.pid})")
        argv = [
            sys.executable,
            "-m",
            ORCHESTRATOR_MODULE,
            "--listen",
            self.orchestrator_address,
            "--tls-cert",
            str(self.ca_dir / f"{ORCHESTRATOR_NAME}.crt"),
            "--tls-key",
            str(self.ca_dir / f"{ORCHESTRATOR_NAME}.key"),
            "--tls-client-ca",
            str(self.ca_dir / ca.CA_CERT_NAME),
            "--socket",
            str(self.orchestrator_socket),
            "--state-dir",
            str(self.workdir / "orchestrator"),
            "--log-format",
            "text",
            *self.settings.timings.orchestrator_args(),
        ]
        self.orchestrator = start_process(
            ORCHESTRATOR_NAME,
            argv,
            log=self.workdir / "logs" / "orchestrator.log",
            marker=self.marker,
        )
        self._wait(
            "the orchestrator to answer on its socket",
            self._orchestrator_answers,
            timeout,
            watch=self.orchestrator,
        )
        return self.orchestrator

    def kill_orchestrator(self) -> None:
        """SIGKILL: nothing flushed, nothing said goodbye to."""
        if self.orchestrator is None:
            raise TestbedError("no orchestrator was started by this testbed")
        self.orchestrator.kill()

    def _orchestrator_answers(self) -> bool:
        if not self.orchestrator_socket.exists():
            return False
        try:
            with self.client(timeout=1.0) as client:
                client.list_hosts()
        except OzwaldError:
            return False
        return True

    # -- the agents -------------------------------------------------------------------------

    def start_agent(self, host: NamespaceHost, *, wait: bool = True) -> TestbedProcess:
        """The agent of `host`, in its namespace; with `wait`, returns once its own socket
        is there."""
        running = self.agents.get(host.name)
        if running is not None and running.running():
            raise TestbedError(f"the agent of {host.name} already runs (pid {running.pid})")
        base = self.agent_dir(host)
        labels = {**self.settings.labels, "testbed.host": host.name}
        argv = [
            sys.executable,
            "-m",
            AGENT_MODULE,
            "--socket",
            str(self.agent_socket(host)),
            "--state-dir",
            str(base / "state"),
            "--secrets-dir",
            str(base / "secrets"),
            "--volumes-dir",
            str(base / "volumes"),
            "--orchestrator",
            self.orchestrator_address,
            "--fleet-cert",
            str(self.ca_dir / f"{host.name}.crt"),
            "--fleet-key",
            str(self.ca_dir / f"{host.name}.key"),
            "--fleet-ca",
            str(self.ca_dir / ca.CA_CERT_NAME),
            "--container-prefix",
            self.container_prefix(host),
            "--log-format",
            "text",
        ]
        for key, value in sorted(labels.items()):
            argv += ["--host-label", f"{key}={value}"]
        process = start_process(
            host.name,
            self.network.exec_argv(host, argv),
            log=self.workdir / "logs" / f"{host.name}.log",
            marker=self.marker,
        )
        self.agents[host.name] = process
        if wait:
            self.wait_for_agent(host)
        return process

    def wait_for_agent(self, host: NamespaceHost, timeout: float = 30.0) -> None:
        socket = self.agent_socket(host)
        process = self.agent(host)
        # A health check, not the socket file: a killed agent leaves its file behind.
        self._wait(
            f"the agent of {host.name} to serve",
            lambda: socket.exists() and _serving(f"unix:{socket}"),
            timeout,
            watch=process,
        )

    def agent(self, host: NamespaceHost) -> TestbedProcess:
        try:
            return self.agents[host.name]
        except KeyError:
            raise TestbedError(f"no agent of {host.name} was started by this testbed") from None

    def kill_agent(self, host: NamespaceHost) -> None:
        """SIGKILL the agent only: a crashed agent on a live host (its containers run on)."""
        self.agent(host).kill()

    def stop_agent(self, host: NamespaceHost) -> None:
        """SIGTERM, as an operator stopping the service."""
        self.agent(host).stop()

    def fail_host(self, host: NamespaceHost) -> list[str]:
        """The machine dies: its agent is SIGKILLed and its containers killed with it.
        Returns the names of the containers killed."""
        self.kill_agent(host)
        killed = []
        for container in self.host_containers(host, running_only=True):
            container.kill()
            killed.append(str(container.name))
        logger.info("host %s failed: agent killed, containers killed: %s", host.name, killed)
        return killed

    # -- the network ----------------------------------------------------------------------

    def partition(self, host: NamespaceHost) -> None:
        self.network.partition(host)

    def heal(self, host: NamespaceHost) -> None:
        self.network.heal(host)

    # -- what the engine runs -------------------------------------------------------------

    def agent_id(self, host: NamespaceHost) -> str | None:
        """The id `host`'s agent labels its containers with (`ozwald.agent`), read from its
        state store; None before the agent first ran. The container prefix alone is not
        proof: anyone may start an agent with the same prefix on this engine."""
        store = self.agent_dir(host) / "state" / AGENT_STORE
        if not store.exists():
            return None
        with contextlib.closing(
            sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5.0)
        ) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'agent_id'").fetchone()
        return str(row[0]) if row else None

    def host_containers(
        self, host: NamespaceHost, *, realm: str | None = None, running_only: bool = False
    ) -> list[Container]:
        """The containers `host`'s agent made (its agent id and its name prefix)."""
        agent_id = self.agent_id(host)
        if agent_id is None:
            return []
        labels = [MANAGED_LABEL, f"{AGENT_LABEL}={agent_id}"]
        if realm is not None:
            labels.append(f"{REALM_LABEL}={realm}")
        filters: dict[str, str | list[str] | bool] = {"label": labels}
        if running_only:
            filters["status"] = "running"
        own = f"{self.container_prefix(host)}-"
        with contextlib.closing(docker.from_env()) as engine:
            found = engine.containers.list(all=True, ignore_removed=True, filters=filters)
        return [c for c in found if str(c.name).startswith(own)]

    def running_services(self, realm: str) -> dict[str, list[str]]:
        """host name -> the `ozwald.service` of each running container of `realm` there."""
        return {
            host.name: sorted(
                str(c.labels.get(SERVICE_LABEL, ""))
                for c in self.host_containers(host, realm=realm, running_only=True)
            )
            for host in self.network.hosts
        }

    def remove_containers(self) -> None:
        """Every container, network and volume the testbed's agents made, and nothing else."""
        with contextlib.closing(docker.from_env()) as engine:
            for host in self.network.hosts:
                agent_id = self.agent_id(host)
                if agent_id is None:
                    continue
                ours: dict[str, str | list[str] | bool] = {
                    "label": [MANAGED_LABEL, f"{AGENT_LABEL}={agent_id}"]
                }
                for container in engine.containers.list(
                    all=True, ignore_removed=True, filters=ours
                ):
                    with contextlib.suppress(docker.errors.NotFound):
                        container.remove(force=True)
                for network in engine.networks.list(filters=ours):
                    with contextlib.suppress(docker.errors.NotFound):
                        network.remove()
                for volume in engine.volumes.list(filters=ours):
                    with contextlib.suppress(docker.errors.NotFound):
                        volume.remove(force=True)

    # -- waiting --------------------------------------------------------------------------

    def hosts(self) -> dict[str, fleet_state_pb2.Host]:
        with self.client() as client:
            return {host.id: host for host in client.list_hosts()}

    def wait_for_hosts(
        self, states: Mapping[str, HostState.ValueType], timeout: float = 30.0
    ) -> dict[str, fleet_state_pb2.Host]:
        """Until each named host is in its state (by the orchestrator's word)."""
        seen: dict[str, fleet_state_pb2.Host] = {}

        def reached() -> bool:
            nonlocal seen
            seen = self.hosts()
            return all(name in seen and seen[name].state == state for name, state in states.items())

        def show() -> str:
            return ", ".join(
                f"{name}={HostState.Name(host.state)}" for name, host in sorted(seen.items())
            )

        wanted = ", ".join(f"{n}={HostState.Name(s)}" for n, s in sorted(states.items()))
        self._wait(f"hosts {wanted}", reached, timeout, detail=show)
        return seen

    def _wait(
        self,
        what: str,
        done: Callable[[], bool],
        timeout: float,
        *,
        watch: TestbedProcess | None = None,
        detail: Callable[[], str] | None = None,
    ) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if watch is not None and not watch.running():
                raise TestbedError(
                    f"{watch.name} exited while waiting for {what}; its log ends:\n"
                    f"{watch.log_tail()}"
                )
            if time.monotonic() > deadline:
                now = f" (now: {detail()})" if detail is not None else ""
                raise TestbedError(f"waited {timeout:g} s for {what}{now}")
            time.sleep(_POLL_S)


def _serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            # types-grpcio-health-checking declares the stub without its methods.
            reply = health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(), timeout=1.0
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def load_settings(workdir: Path) -> TestbedSettings:
    """The settings `up` saved in `workdir`."""
    path = workdir / STATE_FILE
    try:
        return TestbedSettings.from_json(path.read_text())
    except FileNotFoundError:
        raise TestbedError(
            f"no testbed in {workdir}: {path} does not exist (start one with "
            "`python -m ozwald_testbed up`, or give --workdir)"
        ) from None


@contextlib.contextmanager
def running_fleet(settings: TestbedSettings, timeout: float = 60.0) -> Iterator[RealFleet]:
    """A fleet that is up for the block and down afterwards, whatever happened in it."""
    fleet = RealFleet(settings)
    fleet.down()  # what a killed run may have left with the same names
    try:
        fleet.up(timeout=timeout)
        yield fleet
    finally:
        fleet.down()


def environment_for_cli(fleet: RealFleet) -> dict[str, str]:
    """Variables that point `ozwald hosts` etc. at the testbed's orchestrator socket."""
    return {**os.environ, "OZWALD_ORCHESTRATOR": f"unix://{fleet.orchestrator_socket}"}

"""`python -m ozwald_testbed`: the real three-host testbed on this machine (needs root).

    python -m ozwald_testbed up              orchestrator + 3 agents in namespaces, until READY
    python -m ozwald_testbed status          links, processes, and the orchestrator's view
    python -m ozwald_testbed partition h2    h2's link down (heal h2 brings it back)
    python -m ozwald_testbed fail-host h2    h2's agent SIGKILLed and its containers killed
    python -m ozwald_testbed kill-agent h2   h2's agent SIGKILLed (containers run on)
    python -m ozwald_testbed start-agent h2  h2's agent started again
    python -m ozwald_testbed kill-orchestrator / start-orchestrator
    python -m ozwald_testbed down            everything stopped and removed (logs stay)

docs/orchestrator.md walks through it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_sdk.errors import OzwaldError
from ozwald_testbed.netns import NetnsError
from ozwald_testbed.real_fleet import (
    DEFAULT_PORT,
    DEFAULT_WORKDIR,
    HealthTimings,
    RealFleet,
    TestbedError,
    TestbedSettings,
    load_settings,
)

logger = logging.getLogger(__name__)

HOST_COMMANDS = ("partition", "heal", "fail-host", "kill-agent", "start-agent")
ORCHESTRATOR_COMMANDS = ("kill-orchestrator", "start-orchestrator")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ozwald_testbed",
        description="A real fleet on this machine: ozwald-orchestrator and real ozwald-agents, "
        "each agent in a network namespace of its own, sharing the Docker Engine (root only).",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help="sockets, state, certificates and logs (default: %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser("up", help="start the testbed and wait until every host is READY")
    up.add_argument("--hosts", type=int, default=3, help="how many agents (default: %(default)s)")
    up.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="orchestrator port (default: %(default)s)"
    )
    plain = TestbedSettings()
    up.add_argument(
        "--subnet",
        default=plain.subnet,
        help="the private network; the machine takes .1, host N .10+N (default: %(default)s)",
    )
    up.add_argument(
        "--prefix",
        default=plain.prefix,
        help="namespace and container prefix: PREFIX1, PREFIX2, ... (default: %(default)s)",
    )
    up.add_argument("--bridge", default=plain.bridge, help="bridge name (default: %(default)s)")
    defaults = HealthTimings()
    up.add_argument(
        "--heartbeat-interval", type=float, default=defaults.heartbeat_interval, metavar="S"
    )
    up.add_argument("--heartbeat-ttl", type=float, default=defaults.heartbeat_ttl, metavar="S")
    up.add_argument(
        "--reschedule-grace", type=float, default=defaults.reschedule_grace, metavar="S"
    )
    commands.add_parser("down", help="stop and remove everything the testbed made")
    commands.add_parser("status", help="links, processes and what the orchestrator sees")
    for name in HOST_COMMANDS:
        command = commands.add_parser(name, help=f"{name.replace('-', ' ')} HOST (h1, h2, ...)")
        command.add_argument("host", help="h1, h2, ...")
    for name in ORCHESTRATOR_COMMANDS:
        commands.add_parser(name, help=name.replace("-", " "))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return _run(args)
    except (TestbedError, NetnsError, OzwaldError, ValueError) as e:
        print(f"ozwald-testbed: {e}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir.resolve()
    if args.command == "up":
        settings = TestbedSettings(
            workdir=workdir,
            hosts=args.hosts,
            subnet=args.subnet,
            prefix=args.prefix,
            bridge=args.bridge,
            port=args.port,
            timings=HealthTimings(
                heartbeat_interval=args.heartbeat_interval,
                heartbeat_ttl=args.heartbeat_ttl,
                reschedule_grace=args.reschedule_grace,
            ),
        )
        fleet = RealFleet(settings)
        fleet.down()
        try:
            fleet.up()
        except BaseException:
            print("ozwald-testbed: up failed; removing what it started", file=sys.stderr)
            fleet.down()
            raise
        _print_up(fleet)
        return 0
    if args.command == "down":
        try:
            settings = load_settings(workdir)
        except TestbedError:
            settings = TestbedSettings(workdir=workdir)  # a run killed before it saved any
        RealFleet(settings).down()
        print(f"testbed down (logs stay in {workdir / 'logs'})")
        return 0
    fleet = RealFleet(load_settings(workdir))
    fleet.adopt_processes()
    if args.command == "status":
        _print_status(fleet)
    elif args.command in HOST_COMMANDS:
        _act_on_host(fleet, args.command, args.host)
    elif args.command == "kill-orchestrator":
        fleet.kill_orchestrator()
    else:
        fleet.start_orchestrator()
    return 0


def _act_on_host(fleet: RealFleet, command: str, name: str) -> None:
    host = fleet.network.host_named(name)
    if command == "partition":
        fleet.partition(host)
    elif command == "heal":
        fleet.heal(host)
    elif command == "fail-host":
        killed = fleet.fail_host(host)
        print(f"{host.name}: agent killed; containers killed: {', '.join(killed) or 'none'}")
    elif command == "kill-agent":
        fleet.kill_agent(host)
    else:
        fleet.start_agent(host)


def _print_up(fleet: RealFleet) -> None:
    tls = fleet.operator_tls()
    print(f"orchestrator: {fleet.orchestrator_address} (mutual TLS), {fleet.orchestrator_socket}")
    for host in fleet.network.hosts:
        print(f"  {host.name}: {host.address} in namespace {host.namespace}")
    print("\nuse it from this machine with:")
    print(f"  export OZWALD_ORCHESTRATOR=unix://{fleet.orchestrator_socket}")
    print("or over TCP with the operator certificate:")
    print(f"  export OZWALD_ORCHESTRATOR={fleet.orchestrator_address}")
    print(f"  export OZWALD_TLS_CA={tls.ca} OZWALD_TLS_CERT={tls.cert} OZWALD_TLS_KEY={tls.key}")
    print(f"logs: {fleet.workdir / 'logs'}; stop it: python -m ozwald_testbed down")


def _print_status(fleet: RealFleet) -> None:
    orchestrator = fleet.orchestrator
    alive = orchestrator is not None and orchestrator.running()
    pid = f"pid {orchestrator.pid}" if orchestrator is not None and alive else "not running"
    print(f"orchestrator {fleet.orchestrator_address}: {pid}")
    try:
        seen = fleet.hosts() if alive else {}
    except OzwaldError as e:
        print(f"  (cannot ask it: {e})")
        seen = {}
    for link in fleet.network.status():
        host = link.host
        agent = fleet.agents.get(host.name)
        process = f"agent pid {agent.pid}" if agent is not None else "no agent"
        network = "link up" if link.link_up else "link DOWN (partitioned)"
        if not link.namespace_exists:
            network = "no namespace"
        state = seen.get(host.name)
        view = (
            fleet_state_pb2.HostState.Name(state.state).removeprefix("HOST_STATE_")
            if state is not None
            else "unknown"
        )
        running = len(fleet.host_containers(host, running_only=True))
        print(
            f"  {host.name} {host.address}: {network}, {process}, orchestrator says {view}, "
            f"running containers: {running}"
        )


if __name__ == "__main__":
    sys.exit(main())

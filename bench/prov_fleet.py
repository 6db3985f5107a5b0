"""prov-fleet: 20 services on one host, brought up (all ready) and torn down (all gone).

Contenders, in rotating order every round:

- ozwald SDK: `apply_services` of the 20 specs, then `wait_until_ready` (the agent's own
  HTTP probes of /healthz); down: `stop_services` of the 20, then `wait_until_stopped`
  (the agent reports STOPPED once it has removed the container).
- ozwald CLI: `ozwald update_services --all --wait --config FILE`, and `ozwald down --wait`,
  each a new process.
- docker-compose (Debian's v1): `up -d` of the equivalent compose file (generated: the same
  settings as the agent's containers, on a network made beforehand as the agent's realm
  network is), then GET /healthz of every container from the host, all at once and again
  every interval for those still failing (v1 has no readiness wait); down: `down`, which
  returns once every container is removed.

Then the admission point: a 21st service declaring twice the host's memory. Ozwald refuses
the whole set before anything starts; compose starts all 21.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import yaml
from harness import (
    GIB,
    MIB,
    SUMMARY_HEADERS,
    BenchAgent,
    Summary,
    engine,
    ensure_tiny_image,
    host_memory_bytes,
    measure_rounds,
    new_realm,
    poll_until_healthy,
    progress,
    realm_cleanup,
    seconds,
    summary_row,
    table,
    walls_of,
)
from ozwald.common.v1 import service_spec_pb2
from peers import (
    BENCH_LABEL,
    HEALTH_PATH,
    PORT,
    Shape,
    agent_nofile,
    compose_document,
    compose_service,
    note_differences,
    ozwald_service_yaml,
    settings,
)

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.config import load_config, resolve
from ozwald_sdk.errors import AdmissionRefusedError
from ozwald_sdk.waiting import expected_fingerprints, wait_until_ready, wait_until_stopped

FLEET = 20
MEMORY = 32 * MIB
CPUS = 0.05  # 20 x 0.05 = 1 core: fits this 2-core host's CPU budget
HOG = "hog"
TIMEOUT_S = 120.0


@dataclass
class Cycle:
    """One bring-up and teardown; steps are seconds after the request."""

    up: float
    down: float
    up_steps: dict[str, float] = field(default_factory=dict)


class Contender(Protocol):
    label: str

    def up(self) -> tuple[float, dict[str, float]]: ...

    def down(self) -> float: ...

    def first_container(self) -> str: ...


def names() -> list[str]:
    return [f"svc{i:02d}" for i in range(1, FLEET + 1)]


# Ozwald -----------------------------------------------------------------------------


class OzwaldSdk:
    label = "ozwald SDK"

    def __init__(
        self,
        client: AgentClient,
        agent: BenchAgent,
        realm: str,
        specs: list[service_spec_pb2.ServiceSpec],
    ) -> None:
        self._client, self._agent, self._realm, self._specs = client, agent, realm, specs

    def first_container(self) -> str:
        return f"ozwald-{self._realm}-{names()[0]}"

    def up(self) -> tuple[float, dict[str, float]]:
        wall = time.time()
        began = time.perf_counter()
        response = self._client.apply_services(self._specs)
        accepted = time.perf_counter() - began
        wait_until_ready(
            self._client,
            expected_fingerprints(response.plan),
            response.event_sequence,
            TIMEOUT_S,
        )
        total = time.perf_counter() - began
        steps = {"request accepted": accepted}
        # The agent's log: when it made the first container and started the last one.
        lines = self._agent.log_lines(wall)
        created = walls_of(lines, "created container ")
        started = walls_of(lines, "started container ")
        if len(created) == FLEET and len(started) == FLEET:
            steps["first container created"] = min(created) - wall
            steps["last container started"] = max(started) - wall
        steps["all ready"] = total
        return total, steps

    def down(self) -> float:
        began = time.perf_counter()
        stop_all(self._client, self._realm)
        return time.perf_counter() - began


def stop_all(client: AgentClient, realm: str) -> None:
    keys = [(realm, name) for name in names()]
    stopped = client.stop_services(keys)
    wait_until_stopped(client, keys, stopped.event_sequence, TIMEOUT_S)


class OzwaldCli:
    label = "ozwald CLI"

    def __init__(self, agent: BenchAgent, realm: str, config: Path, ozwald: Path) -> None:
        self._realm = realm
        self._up = [str(ozwald), "--agent", agent.target, "update_services", "--all"]
        self._up += ["--wait", "--config", str(config)]
        self._down = [str(ozwald), "--agent", agent.target, "down", "--wait"]

    def first_container(self) -> str:
        return f"ozwald-{self._realm}-{names()[0]}"

    def up(self) -> tuple[float, dict[str, float]]:
        took = timed_command(self._up)
        return took, {"all ready": took}

    def down(self) -> float:
        return timed_command(self._down)


def timed_command(argv: list[str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return took


def cli_commands() -> Path | None:
    """The `ozwald` command when it has `update_services --all --wait` and `down --wait`."""
    ozwald = Path(sys.executable).parent / "ozwald"
    if not ozwald.exists():
        return None
    for command, wanted in (("update_services", ("--all", "--wait")), ("down", ("--wait",))):
        shown = subprocess.run(
            [str(ozwald), command, "--help"],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if shown.returncode != 0 or not all(option in shown.stdout for option in wanted):
            return None
    return ozwald


# docker-compose ---------------------------------------------------------------------


class Compose:
    label = "docker-compose"

    def __init__(
        self, realm: str, network: str, interval_s: float, file: Path, compose: str
    ) -> None:
        self._realm, self._network, self._interval_s = realm, network, interval_s
        self._engine = engine()
        self._base = [compose, "--no-ansi", "-p", f"{realm}c", "-f", str(file)]

    def first_container(self) -> str:
        return f"{self._realm}-compose-{names()[0]}"

    def up(self) -> tuple[float, dict[str, float]]:
        began = time.perf_counter()
        run_compose(self._base, "up", "-d")
        returned = time.perf_counter() - began
        listed = self._engine.api.containers(
            filters={"label": [f"ozwald.realm={self._realm}", f"{BENCH_LABEL}=compose"]}
        )
        ips = {
            str(c["Names"][0]): str(c["NetworkSettings"]["Networks"][self._network]["IPAddress"])
            for c in listed
        }
        if len(ips) != FLEET:
            raise RuntimeError(f"compose runs {len(ips)} containers, not {FLEET}")
        poll_until_healthy(ips, PORT, HEALTH_PATH, self._interval_s, TIMEOUT_S)
        total = time.perf_counter() - began
        return total, {"up -d returned": returned, "all ready": total}

    def down(self) -> float:
        began = time.perf_counter()
        run_compose(self._base, "down")
        return time.perf_counter() - began


def run_compose(base: list[str], *args: str) -> None:
    done = subprocess.run([*base, *args], check=False, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(
            f"docker-compose {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )


def compose_file(
    path: Path, realm: str, network: str, shapes: list[Shape], label: str = "compose"
) -> Path:
    labels = {"ozwald.realm": realm, BENCH_LABEL: label}
    services = {s.name: compose_service(s, f"{realm}-{label}-{s.name}", labels) for s in shapes}
    path.write_text(yaml.safe_dump(compose_document(services, network), sort_keys=False))
    return path


# The admission point ----------------------------------------------------------------


def admission_point(
    client: AgentClient,
    specs: list[service_spec_pb2.ServiceSpec],
    hog: service_spec_pb2.ServiceSpec,
    realm: str,
    compose_argv: list[str] | None,
) -> list[str]:
    """What each does with the 20 plus a service declaring more memory than the host has."""
    lines = [
        f"admission: the 20 plus `{HOG}` declaring {hog.resources.memory_bytes / GIB:.0f} "
        f"GiB memory on a host with {host_memory_bytes() / GIB:.1f} GiB"
    ]
    try:
        client.apply_services([*specs, hog])
        lines.append("  ozwald: ADMITTED (unexpected)")
    except AdmissionRefusedError as e:
        refusals = list(e.plan.refusals) if e.plan is not None else []
        lines.append(f"  ozwald: refused the whole set, {len(refusals)} refusal(s):")
        lines.extend(f"    {r.realm}:{r.name}: {r.message}" for r in refusals)
    time.sleep(1.5)  # a few reconcile passes: anything admitted would be starting by now
    ours = engine().containers.list(
        ignore_removed=True,
        all=True,
        filters={"label": [f"ozwald.realm={realm}", "ozwald.managed=true"]},
    )
    lines.append(f"  ozwald: {len(ours)} container(s) created after the refusal")
    if compose_argv is None:
        return lines
    run_compose(compose_argv, "up", "-d")
    try:
        time.sleep(1.0)
        listed = engine().containers.list(
            ignore_removed=True,
            filters={"label": [f"ozwald.realm={realm}", f"{BENCH_LABEL}=admission"]},
        )
        running = sum(1 for c in listed if c.status == "running")
        hog_container = next(c for c in listed if c.name and c.name.endswith(f"-{HOG}"))
        limit = int(hog_container.attrs["HostConfig"]["Memory"])
        lines.append(
            f"  docker-compose: up -d succeeded; {running} of {FLEET + 1} containers running, "
            f"`{HOG}` among them ({hog_container.status}) with a {limit / GIB:.0f} GiB limit "
            "the host cannot back: nothing refused it; used as declared it would run the "
            "host out of memory and be OOM-killed by the kernel (its own limit never binds)"
        )
    finally:
        run_compose(compose_argv, "down")
    return lines


# The run ----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds (default 1)")
    parser.add_argument(
        "--interval",
        type=float,
        default=0.1,
        help="health check interval for the agent and polling interval for compose, s "
        "(default 0.1)",
    )
    parser.add_argument("--no-cli", action="store_true", help="leave the ozwald CLI out")
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs must be at least 3")

    ensure_tiny_image()
    realm = new_realm("bf")
    network = f"{realm}-peers"
    compose = shutil.which("docker-compose")
    ozwald = None if args.no_cli else cli_commands()
    notes: list[str] = []
    if compose is None:
        notes.append("docker-compose not found: left out (apt-get install -y docker-compose)")
    if ozwald is None and not args.no_cli:
        notes.append("`ozwald update_services --all --wait` / `down --wait` missing: CLI left out")
    hog_memory = -(-2 * host_memory_bytes() // GIB) * GIB

    with (
        tempfile.TemporaryDirectory(prefix="ozwald-bench-") as tmp,
        realm_cleanup(realm),
        BenchAgent(Path(tmp)) as agent,
        AgentClient(agent.target, timeout=30) as client,
    ):
        workdir = Path(tmp)
        shapes = [Shape(name, MEMORY, CPUS, nofile=65536) for name in names()]
        hog_shape = Shape(HOG, hog_memory, CPUS, nofile=65536)
        fleet = workdir / "ozwald.yml"
        fleet.write_text(ozwald_config(realm, shapes, args.interval))
        with_hog = workdir / "with-hog.yml"
        with_hog.write_text(ozwald_config(realm, [*shapes, hog_shape], args.interval))
        host = client.get_host_profile()
        specs = [resolve(load_config(fleet), n, host).to_service_spec() for n in names()]
        hog = resolve(load_config(with_hog), HOG, host).to_service_spec()
        sdk = OzwaldSdk(client, agent, realm, specs)

        progress("calibrating: one unmeasured Ozwald bring-up")
        sdk.up()
        reference = engine().api.inspect_container(sdk.first_container())
        sdk.down()
        nofile = agent_nofile(reference)
        shapes = [Shape(s.name, s.memory, s.cpus, nofile) for s in shapes]
        engine().networks.create(
            network, driver="bridge", labels={"ozwald.realm": realm, BENCH_LABEL: "peers"}
        )

        contenders: list[Contender] = [sdk]
        if ozwald is not None:
            contenders.append(OzwaldCli(agent, realm, fleet, ozwald))
        compose_argv: list[str] | None = None
        if compose is not None:
            file = compose_file(workdir / "docker-compose.yml", realm, network, shapes)
            contenders.append(Compose(realm, network, args.interval, file, compose))
            admission = compose_file(
                workdir / "admission.yml",
                realm,
                network,
                [*shapes, Shape(HOG, hog_memory, CPUS, nofile)],
                label="admission",
            )
            compose_argv = [compose, "--no-ansi", "-p", f"{realm}a", "-f", str(admission)]
        cycles = measure(contenders, args.warmup, args.runs, settings(reference), notes)
        admission_lines = admission_point(client, specs, hog, realm, compose_argv)

    report(cycles, contenders, args, notes, admission_lines)
    return 0


def ozwald_config(realm: str, shapes: list[Shape], interval_s: float) -> str:
    services = "".join(ozwald_service_yaml(s, interval_s) for s in shapes)
    return f"version: 1\nrealms:\n  {realm}:\n    services:\n{services}"


def measure(
    contenders: list[Contender],
    warmup: int,
    rounds: int,
    expected: dict[str, object],
    notes: list[str],
) -> dict[str, list[Cycle]]:
    def cycle(contender: Contender, first: bool) -> Cycle:
        up, steps = contender.up()
        if first:
            attrs = engine().api.inspect_container(contender.first_container())
            note_differences(expected, attrs, contender.label, notes)
        return Cycle(up, contender.down(), steps)

    return measure_rounds(
        contenders, warmup, rounds, cycle, lambda c: f"up {c.up:.2f} s, down {c.down:.2f} s"
    )


def report(
    cycles: dict[str, list[Cycle]],
    contenders: list[Contender],
    args: argparse.Namespace,
    notes: list[str],
    admission_lines: list[str],
) -> None:
    print(
        f"prov-fleet: {FLEET} services (tiny httpd, {MEMORY // MIB} MiB, {CPUS} CPU, HTTP "
        f"{HEALTH_PATH} every {args.interval:g} s) up until all ready, down until all gone"
    )
    print(
        f"{args.runs} measured rounds after {args.warmup} warm-up round(s) and 1 calibration "
        "run; order rotates"
    )
    print()
    compose = cycles.get(Compose.label)
    rows = []
    ups: dict[str, Summary] = {}
    downs: dict[str, Summary] = {}
    for contender in contenders:
        label = contender.label
        ups[label] = Summary.of([c.up for c in cycles[label]])
        downs[label] = Summary.of([c.down for c in cycles[label]])
        both = Summary.of([c.up + c.down for c in cycles[label]])
        for what, summary in (("up", ups[label]), ("down", downs[label]), ("up+down", both)):
            versus = "-"
            if compose is not None:
                theirs = Summary.of(
                    [{"up": c.up, "down": c.down, "up+down": c.up + c.down}[what] for c in compose]
                )
                versus = f"{summary.median / theirs.median:.2f}"
            rows.append(summary_row(f"{label} {what}", summary, versus))
    print(table([*SUMMARY_HEADERS, "x compose"], rows))
    print()
    print("bring-up steps (median s after the request; ozwald's from the agent's log):")
    detailed = [c.label for c in contenders if set(cycles[c.label][0].up_steps) != {"all ready"}]
    step_names = list(
        dict.fromkeys(s for label in detailed for c in cycles[label] for s in c.up_steps)
    )
    step_rows = []
    for step in sorted(step_names, key=lambda s: s == "all ready"):
        cells = [step]
        for label in detailed:
            values = [c.up_steps[step] for c in cycles[label] if step in c.up_steps]
            cells.append(seconds(Summary.of(values).median) if values else "-")
        step_rows.append(cells)
    print(table(["step", *detailed], step_rows))
    print()
    differing = [n for n in notes if " differs: " in n]
    print(
        "container settings (compose's svc01 vs the agent's, compared in the warm-up): "
        + ("identical" if not differing else "")
    )
    for note in notes:
        print(f"  {note}" if " differs: " in note else f"note: {note}")
    print()
    for line in admission_lines:
        print(line)
    print()
    if compose is None:
        print("RATIO prov-fleet=n/a (docker-compose missing; goal < 1.00)")
        return
    compose_both = Summary.of([c.up + c.down for c in compose]).median
    for contender in contenders[1:-1]:
        label = contender.label
        ours = Summary.of([c.up + c.down for c in cycles[label]]).median
        print(f"{label} up+down / compose: {ours / compose_both:.2f}")
    sdk = Summary.of([c.up + c.down for c in cycles[OzwaldSdk.label]]).median
    ratio = sdk / compose_both
    print(f"goal (ozwald faster than docker-compose) met: {'yes' if ratio < 1 else 'no'}")
    print(f"RATIO prov-fleet={ratio:.2f} (ozwald SDK up+down / docker-compose, goal < 1.00)")


if __name__ == "__main__":
    sys.exit(main())

"""prov-overhead: one service, image present, from the request until it passes /healthz.

Contenders, in rotating order every round, each torn down (untimed) before the next:

- ozwald SDK: `AgentClient.apply_services([spec])` to an agent already running (state
  directory warm; the realm's network is made with the service and removed with it, as
  for any realm's only service), then
  `ozwald_sdk.waiting.wait_until_ready` (ListServices + WatchServices) until the agent
  reports READY, which it does once its own HTTP probe of /healthz passed.
- ozwald CLI: `ozwald update_services web --wait --config FILE` as a new process (Python
  start, config load and resolve, host profile, apply, wait).
- raw docker SDK: `networks.create`, then `containers.create` with the settings the agent
  gave its container (compared field by field in the warm-up), `start`, inspect for the
  IP, then GET /healthz from the host at once and again every interval until it answers
  2xx; down removes the container and the network.
- docker-compose (Debian's v1): `up -d` of the same service, compose making its network
  (and `down` removing it), then the same polling as raw: v1 has no wait.

The interval is the same for all (--interval, default 0.1 s): the service's health check
declares it for the agent; the peers poll at it. Times are time.perf_counter() from the
request until a 2xx was seen (by the peer) or reported (by the agent).
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
    MIB,
    SUMMARY_HEADERS,
    TINY_IMAGE,
    BenchAgent,
    Summary,
    container_ip,
    engine,
    ensure_tiny_image,
    measure_rounds,
    new_realm,
    poll_until_healthy,
    progress,
    realm_cleanup,
    seconds,
    summary_row,
    table,
    wall_of,
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
    raw_create_kwargs,
    settings,
)

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.config import load_config, resolve
from ozwald_sdk.waiting import expected_fingerprints, wait_until_ready, wait_until_stopped

GOAL = 1.10
SERVICE = "web"
MEMORY = 32 * MIB
CPUS = 0.1
READY_TIMEOUT_S = 60.0


@dataclass
class Run:
    """One bring-up: the total, when each step was done (s after the request), and for a
    peer how many rounds of polling it took."""

    total: float
    steps: dict[str, float] = field(default_factory=dict)
    polls: int = 0


class Contender(Protocol):
    label: str

    @property
    def container(self) -> str: ...

    def up(self) -> Run: ...

    def down(self) -> None: ...


# Ozwald -----------------------------------------------------------------------------


def stop_with_sdk(client: AgentClient, realm: str) -> None:
    stopped = client.stop_services([(realm, SERVICE)])
    wait_until_stopped(client, [(realm, SERVICE)], stopped.event_sequence, READY_TIMEOUT_S)


class OzwaldSdk:
    label = "ozwald SDK apply + wait"

    def __init__(
        self,
        client: AgentClient,
        agent: BenchAgent,
        realm: str,
        spec: service_spec_pb2.ServiceSpec,
    ) -> None:
        self._client, self._agent, self._realm, self._spec = client, agent, realm, spec

    @property
    def container(self) -> str:
        return f"ozwald-{self._realm}-{SERVICE}"

    def up(self) -> Run:
        wall = time.time()
        began = time.perf_counter()
        response = self._client.apply_services([self._spec])
        accepted = time.perf_counter() - began
        wait_until_ready(
            self._client,
            expected_fingerprints(response.plan),
            response.event_sequence,
            READY_TIMEOUT_S,
        )
        total = time.perf_counter() - began
        run = Run(total, {"request accepted": accepted})
        # The agent's log says when it had made, and then started, the container.
        lines = self._agent.log_lines(wall)
        created = wall_of(lines, f"created container {self.container}")
        ids = [str(line.fields["container_id"]) for line in lines if "container_id" in line.fields]
        started = wall_of(lines, f"started container {ids[0]}") if ids else None
        if created is not None:
            run.steps["container created"] = created - wall
        if started is not None:
            run.steps["container started"] = started - wall
        run.steps["ready"] = total
        return run

    def down(self) -> None:
        stop_with_sdk(self._client, self._realm)


class OzwaldCli:
    label = "ozwald CLI update_services --wait"

    def __init__(
        self, client: AgentClient, agent: BenchAgent, realm: str, config: Path, ozwald: Path
    ) -> None:
        self._client, self._realm = client, realm
        self._argv = [str(ozwald), "--agent", agent.target, "update_services", SERVICE]
        self._argv += ["--wait", "--config", str(config)]

    @property
    def container(self) -> str:
        return f"ozwald-{self._realm}-{SERVICE}"

    def up(self) -> Run:
        began = time.perf_counter()
        done = subprocess.run(self._argv, check=False, capture_output=True, text=True, timeout=120)
        total = time.perf_counter() - began
        if done.returncode != 0:
            raise RuntimeError(f"ozwald exited {done.returncode}:\n{done.stdout}{done.stderr}")
        return Run(total, {"ready": total})

    def down(self) -> None:
        stop_with_sdk(self._client, self._realm)


def cli_with_wait() -> Path | None:
    """The `ozwald` command when its update_services has --wait, else None."""
    ozwald = Path(sys.executable).parent / "ozwald"
    if not ozwald.exists():
        return None
    shown = subprocess.run(
        [str(ozwald), "update_services", "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return ozwald if shown.returncode == 0 and "--wait" in shown.stdout else None


# Peers ------------------------------------------------------------------------------


class RawDocker:
    label = "raw docker SDK create+start+poll"

    def __init__(self, shape: Shape, realm: str, network: str, interval_s: float) -> None:
        self._realm, self._network, self._interval_s = realm, network, interval_s
        self._engine = engine()
        labels = {"ozwald.realm": realm, BENCH_LABEL: "raw"}
        self._kwargs = raw_create_kwargs(shape, self.container, network, labels)

    @property
    def container(self) -> str:
        return f"{self._realm}-raw-{SERVICE}"

    def up(self) -> Run:
        began = time.perf_counter()
        # Like the agent, which makes a realm's network with its first service and removes
        # it with its last: one service up means its network is made too.
        self._engine.networks.create(
            self._network, driver="bridge", labels={"ozwald.realm": self._realm, BENCH_LABEL: "raw"}
        )
        made = time.perf_counter() - began
        self._engine.containers.create(**self._kwargs)
        created = time.perf_counter() - began
        self._engine.api.start(self.container)
        started = time.perf_counter() - began
        ip = container_ip(self._engine, self.container, self._network)
        polls = poll_until_healthy(
            {SERVICE: ip}, PORT, HEALTH_PATH, self._interval_s, READY_TIMEOUT_S
        )
        total = time.perf_counter() - began
        steps = {
            "network created": made,
            "container created": created,
            "container started": started,
            "ready": total,
        }
        return Run(total, steps, polls)

    def down(self) -> None:
        self._engine.api.remove_container(self.container, force=True)
        self._engine.api.remove_network(self._network)


class Compose:
    label = "docker-compose up -d + poll"

    def __init__(
        self,
        shape: Shape,
        realm: str,
        network: str,
        interval_s: float,
        *,
        workdir: Path,
        compose: str,
    ) -> None:
        self._realm, self._network, self._interval_s = realm, network, interval_s
        self._engine = engine()
        labels = {"ozwald.realm": realm, BENCH_LABEL: "compose"}
        # compose makes its project's network at `up` and removes it at `down`, as the
        # agent does with a realm's network for its only service.
        document = compose_document(
            {SERVICE: compose_service(shape, self.container, labels)}, network, labels=labels
        )
        file = workdir / "docker-compose.yml"
        file.write_text(yaml.safe_dump(document, sort_keys=False))
        self._base = [compose, "--no-ansi", "-p", f"{realm}c", "-f", str(file)]

    @property
    def container(self) -> str:
        return f"{self._realm}-compose-{SERVICE}"

    def up(self) -> Run:
        began = time.perf_counter()
        run_compose(self._base, "up", "-d")
        returned = time.perf_counter() - began
        ip = container_ip(self._engine, self.container, self._network)
        polls = poll_until_healthy(
            {SERVICE: ip}, PORT, HEALTH_PATH, self._interval_s, READY_TIMEOUT_S
        )
        total = time.perf_counter() - began
        return Run(total, {"up -d returned": returned, "ready": total}, polls)

    def down(self) -> None:
        run_compose(self._base, "down")


def run_compose(base: list[str], *args: str) -> None:
    done = subprocess.run([*base, *args], check=False, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(
            f"docker-compose {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )


# The run ----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="measured rounds (default 9)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds (default 1)")
    parser.add_argument(
        "--interval",
        type=float,
        default=0.1,
        help="health check interval for the agent and polling interval for the peers, s "
        "(default 0.1: at 0.5 the peers' times are bimodal, decided by whether httpd "
        "listens before the first poll)",
    )
    parser.add_argument("--no-compose", action="store_true", help="leave docker-compose out")
    parser.add_argument("--no-cli", action="store_true", help="leave the ozwald CLI out")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")

    ensure_tiny_image()
    realm = new_realm("bo")
    compose = None if args.no_compose else shutil.which("docker-compose")
    ozwald = None if args.no_cli else cli_with_wait()
    notes: list[str] = []
    if compose is None and not args.no_compose:
        notes.append("docker-compose not found: left out (apt-get install -y docker-compose)")
    if ozwald is None and not args.no_cli:
        notes.append("`ozwald update_services --wait` is not available: CLI left out")

    with (
        tempfile.TemporaryDirectory(prefix="ozwald-bench-") as tmp,
        realm_cleanup(realm),
        BenchAgent(Path(tmp)) as agent,
        AgentClient(agent.target, timeout=30) as client,
    ):
        workdir = Path(tmp)
        config = workdir / "ozwald.yml"
        shape = Shape(SERVICE, MEMORY, CPUS, nofile=65536)
        config.write_text(
            f"version: 1\nrealms:\n  {realm}:\n    services:\n"
            + ozwald_service_yaml(shape, args.interval)
        )
        spec = resolve(load_config(config), SERVICE, client.get_host_profile()).to_service_spec()
        sdk = OzwaldSdk(client, agent, realm, spec)

        progress("calibrating: one unmeasured Ozwald bring-up")
        sdk.up()
        reference = engine().api.inspect_container(sdk.container)
        sdk.down()
        shape = Shape(SERVICE, MEMORY, CPUS, agent_nofile(reference))

        contenders: list[Contender] = [sdk]
        if ozwald is not None:
            contenders.append(OzwaldCli(client, agent, realm, config, ozwald))
        contenders.append(RawDocker(shape, realm, f"{realm}-raw", args.interval))
        if compose is not None:
            contenders.append(
                Compose(
                    shape,
                    realm,
                    f"{realm}-compose",
                    args.interval,
                    workdir=workdir,
                    compose=compose,
                )
            )
        expected = settings(reference)

        def cycle(contender: Contender, first: bool) -> Run:
            run = contender.up()
            if first:
                attrs = engine().api.inspect_container(contender.container)
                note_differences(expected, attrs, contender.label, notes)
            contender.down()
            return run

        runs = measure_rounds(
            contenders, args.warmup, args.runs, cycle, lambda run: f"{run.total:.3f} s"
        )

    report(runs, contenders, args, notes)
    return 0


def report(
    runs: dict[str, list[Run]],
    contenders: list[Contender],
    args: argparse.Namespace,
    notes: list[str],
) -> None:
    totals = {label: Summary.of([r.total for r in rs]) for label, rs in runs.items()}
    raw = totals[RawDocker.label]
    print(
        f"prov-overhead: one service ({TINY_IMAGE}, HTTP {HEALTH_PATH} every "
        f"{args.interval:g} s), image present"
    )
    print(
        f"{args.runs} measured rounds after {args.warmup} warm-up round(s) and 1 calibration "
        "run; order rotates; seconds from the request to a passing health check"
    )
    print()
    rows = [
        summary_row(c.label, totals[c.label], f"{totals[c.label].median / raw.median:.2f}")
        for c in contenders
    ]
    print(table([*SUMMARY_HEADERS, "x raw"], rows))
    print()
    print("where the time goes (median s after the request; ozwald's from the agent's log):")
    detailed = [c.label for c in contenders if set(runs[c.label][0].steps) != {"ready"}]
    step_names = list(dict.fromkeys(s for label in detailed for r in runs[label] for s in r.steps))
    step_rows = []
    for step in sorted(step_names, key=lambda s: s == "ready"):
        cells = [step]
        for label in detailed:
            values = [r.steps[step] for r in runs[label] if step in r.steps]
            cells.append(seconds(Summary.of(values).median) if values else "-")
        step_rows.append(cells)
    print(table(["step", *detailed], step_rows))
    for label in (RawDocker.label, Compose.label):
        if label in runs:
            first = sum(1 for r in runs[label] if r.polls == 1)
            print(f"{label}: the first poll passed in {first} of {len(runs[label])} runs")
    print()
    differing = [n for n in notes if " differs: " in n]
    print(
        "container settings (peers vs the agent's container, compared in the warm-up): "
        + ("identical" if not differing else "")
    )
    for note in differing:
        print(f"  {note}")
    for note in notes:
        if " differs: " not in note:
            print(f"note: {note}")
    sdk = totals[OzwaldSdk.label]
    cli = totals.get(OzwaldCli.label)
    compose = totals.get(Compose.label)
    if compose is not None:
        for label, ours in ((OzwaldSdk.label, sdk), (OzwaldCli.label, cli)):
            if ours is not None:
                verdict = "faster" if ours.median < compose.median else "NOT faster"
                print(
                    f"{label} vs docker-compose: {verdict} ({ours.median:.3f} s vs "
                    f"{compose.median:.3f} s median, ratio {ours.median / compose.median:.2f})"
                )
    ratio = sdk.median / raw.median
    print(f"goal (ozwald SDK / raw <= {GOAL:.2f}) met: {'yes' if ratio <= GOAL else 'no'}")
    print(f"RATIO prov-overhead={ratio:.2f} (ozwald SDK / raw docker SDK, goal <= {GOAL:.2f})")


if __name__ == "__main__":
    sys.exit(main())

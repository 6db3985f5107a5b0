"""cold-start: the real vLLM CPU service, from config to its first successful request.

Contenders, in rotating order every round, each torn down (untimed) before the next:

- ozwald CLI: `ozwald update_services --config FILE embed --wait` as a new process (config
  load, host profile, admission, container, the agent's health probe until READY), then
  the first embeddings request through the service's portal with the openai client.
- docker run: `docker run -d` of the same image with the settings the agent gave its
  container (calibrated from the agent's own container, compared field by field), then
  GET /health on the published port every interval until 2xx, then the same request.

The config is examples/quickstart/ozwald.yml as users run it, moved to a private realm
and port, with its health check interval set to --interval; docker run's polling uses the
same interval. The time runs from the command until the first embedding came back.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from harness import (
    ROOT,
    SUMMARY_HEADERS,
    BenchAgent,
    Summary,
    engine,
    http_ok,
    measure_rounds,
    new_realm,
    progress,
    realm_cleanup,
    summary_row,
    table,
)
from openai import OpenAI
from peers import BENCH_LABEL, note_differences, settings

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.waiting import wait_until_stopped

GOAL = 1.05
SERVICE = "embed"
IMAGE = "ozwald/vllm-cpu:local"
QUICKSTART = ROOT / "examples" / "quickstart" / "ozwald.yml"
MODELS = ROOT / "examples" / "quickstart" / "models"
READY_TIMEOUT_S = 300.0


@dataclass
class Run:
    total: float
    steps: dict[str, float] = field(default_factory=dict)


class Contender(Protocol):
    label: str

    @property
    def container(self) -> str: ...

    def up(self) -> Run: ...

    def down(self) -> None: ...


def first_embedding(port: int) -> None:
    """The first request a user would send; raises unless a 384-number vector comes back."""
    client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
    vector = client.embeddings.create(model=SERVICE, input="cold start").data[0].embedding
    if len(vector) != 384:
        raise RuntimeError(f"expected 384 numbers, got {len(vector)}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OzwaldCli:
    label = "ozwald update_services --wait + request"

    def __init__(
        self, client: AgentClient, agent: BenchAgent, realm: str, config: Path, port: int
    ) -> None:
        self._client, self._realm, self._port = client, realm, port
        ozwald = Path(sys.executable).parent / "ozwald"
        self._argv = [str(ozwald), "--agent", agent.target, "update_services", SERVICE]
        self._argv += ["--wait", "--config", str(config)]

    @property
    def container(self) -> str:
        return f"ozwald-{self._realm}-{SERVICE}"

    def up(self) -> Run:
        began = time.perf_counter()
        done = subprocess.run(
            self._argv, check=False, capture_output=True, text=True, timeout=READY_TIMEOUT_S
        )
        ready = time.perf_counter() - began
        if done.returncode != 0:
            raise RuntimeError(f"ozwald exited {done.returncode}:\n{done.stdout}{done.stderr}")
        first_embedding(self._port)
        total = time.perf_counter() - began
        return Run(total, {"ready (CLI returned)": ready, "first answer": total})

    def down(self) -> None:
        stopped = self._client.stop_services([(self._realm, SERVICE)])
        wait_until_stopped(
            self._client, [(self._realm, SERVICE)], stopped.event_sequence, READY_TIMEOUT_S
        )


class DockerRun:
    label = "docker run + poll /health + request"

    def __init__(self, realm: str, reference: dict[str, Any], interval_s: float) -> None:
        self._realm, self._interval_s = realm, interval_s
        self._port = free_port()
        self._argv = ["docker", "run", "-d", "--name", self.container]
        self._argv += docker_run_options(reference, realm, self._port)

    @property
    def container(self) -> str:
        return f"{self._realm}-docker-run-{SERVICE}"

    def up(self) -> Run:
        began = time.perf_counter()
        subprocess.run(self._argv, check=True, capture_output=True, timeout=120)
        returned = time.perf_counter() - began
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not http_ok("127.0.0.1", self._port, "/health"):
            if engine().api.inspect_container(self.container)["State"]["Status"] == "exited":
                logs = engine().api.logs(self.container, tail=20).decode(errors="replace")
                raise RuntimeError(f"{self.container} exited before it was healthy:\n{logs}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.container} not healthy in {READY_TIMEOUT_S:g} s")
            time.sleep(self._interval_s)
        healthy = time.perf_counter() - began
        first_embedding(self._port)
        total = time.perf_counter() - began
        return Run(
            total,
            {"docker run returned": returned, "health passed": healthy, "first answer": total},
        )

    def down(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.container], check=True, capture_output=True)


def docker_run_options(attrs: dict[str, Any], realm: str, port: int) -> list[str]:
    """`docker run` options giving the settings the agent gave its container (`attrs`)."""
    host, config = attrs["HostConfig"], attrs["Config"]
    options = [
        "--label",
        f"ozwald.realm={realm}",
        "--label",
        f"{BENCH_LABEL}=docker-run",
        "--hostname",
        config["Hostname"],
        "--memory",
        str(host["Memory"]),
        "--memory-swap",
        str(host["MemorySwap"]),
        "--shm-size",
        str(host["ShmSize"]),
        "--pids-limit",
        str(host["PidsLimit"]),
        "--restart",
        "no",
        "--publish",
        f"127.0.0.1:{port}:8000",
    ]
    if host["NanoCpus"]:
        options += ["--cpus", str(host["NanoCpus"] / 1e9)]
    if host["Init"]:
        options.append("--init")
    options += [arg for cap in host["CapDrop"] or [] for arg in ("--cap-drop", cap)]
    options += [arg for opt in host["SecurityOpt"] or [] for arg in ("--security-opt", opt)]
    for limit in host["Ulimits"] or []:
        options += ["--ulimit", f"{limit['Name']}={limit['Soft']}:{limit['Hard']}"]
    log = host["LogConfig"]
    options += ["--log-driver", log["Type"]]
    options += [arg for k, v in (log["Config"] or {}).items() for arg in ("--log-opt", f"{k}={v}")]
    options += [arg for env in config.get("Env") or [] for arg in ("--env", env)]
    options += [arg for bind in host["Binds"] or [] for arg in ("--volume", bind)]
    for mount in host.get("Mounts") or []:
        spec = f"type={mount['Type']},target={mount['Target']}"
        if mount.get("Source"):
            spec += f",source={mount['Source']}"
        if mount.get("ReadOnly"):
            spec += ",readonly"
        options += ["--mount", spec]
    options.append(config["Image"])
    options += config["Cmd"] or []
    return options


def write_config(directory: Path, realm: str, port: int, interval_s: float) -> Path:
    """The quickstart example as users run it, in `realm`, on `port`, probed every interval."""
    document = yaml.safe_load(QUICKSTART.read_text())
    (body,) = document["realms"].values()
    body["portals"]["embed-api"]["host_port"] = port
    body["volumes"]["models"]["source"] = str(MODELS)
    body["services"][SERVICE]["health_check"]["interval"] = f"{round(interval_s * 1000)}ms"
    document["realms"] = {realm: body}
    path = directory / "ozwald.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds (default 1)")
    parser.add_argument(
        "--interval",
        type=float,
        default=0.5,
        help="the agent's health check interval and docker run's polling interval, s (default 0.5)",
    )
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")

    progress("making sure the image and the model are there")
    subprocess.run(["bash", str(ROOT / "scripts" / "build-vllm-cpu-image.sh")], check=True)
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "fetch-embedding-model.sh"), str(MODELS)], check=True
    )
    realm = new_realm("cs")
    notes: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="ozwald-bench-") as tmp,
        realm_cleanup(realm),
        BenchAgent(Path(tmp)) as agent,
        AgentClient(agent.target, timeout=30) as client,
    ):
        port = free_port()
        config = write_config(Path(tmp), realm, port, args.interval)
        ozwald = OzwaldCli(client, agent, realm, config, port)
        progress("calibrating: one unmeasured Ozwald bring-up")
        ozwald.up()
        reference = engine().api.inspect_container(ozwald.container)
        ozwald.down()
        contenders: list[Contender] = [ozwald, DockerRun(realm, reference, args.interval)]
        expected = settings(reference)

        def cycle(contender: Contender, first: bool) -> Run:
            run = contender.up()
            if first:
                attrs = engine().api.inspect_container(contender.container)
                # Each publishes its own port, by design; nothing else should differ.
                note_differences(expected, attrs, contender.label, notes, ("PortBindings",))
            contender.down()
            return run

        runs = measure_rounds(
            contenders, args.warmup, args.runs, cycle, lambda run: f"{run.total:.2f} s"
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
    peer = totals[DockerRun.label]
    print(f"cold-start: {IMAGE} serving all-MiniLM-L6-v2 (examples/quickstart), image present")
    print(
        f"{args.runs} measured rounds after {args.warmup} warm-up round(s) and 1 calibration "
        f"run; order rotates; health every {args.interval:g} s; seconds from the command to "
        "the first embedding"
    )
    print()
    rows = [
        summary_row(c.label, totals[c.label], f"{totals[c.label].median / peer.median:.2f}")
        for c in contenders
    ]
    print(table([*SUMMARY_HEADERS, "x docker run"], rows))
    print()
    print("where the time goes (median s after the command):")
    for contender in contenders:
        steps = runs[contender.label][0].steps
        for step in steps:
            median = Summary.of([r.steps[step] for r in runs[contender.label]]).median
            print(f"  {contender.label}: {step} {median:.2f}")
    for note in notes:
        print(f"note: {note}")
    ratio = totals[OzwaldCli.label].median / peer.median
    print(
        f"RATIO cold-start={ratio:.2f} (ozwald update_services --wait + request / docker run "
        f"+ poll + request, goal <= {GOAL:.2f})"
    )


if __name__ == "__main__":
    sys.exit(main())

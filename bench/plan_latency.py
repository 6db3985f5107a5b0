"""plan-latency: admission of 500 services against a host profile, next to the YAML parse.

One ozwald.yml of 500 services (5 realms of 100: one in ten wants a shared NVIDIA GPU, one
in five publishes a portal, the rest are CPU services with limits, a health check, a tmpfs
volume, and some a dependency) is timed five ways, each in its own loop:

- yaml.safe_load of the text alone (the baseline the goal is stated against);
- parse_config (Ozwald's config load: YAML with positions, the pydantic model, references,
  every effective spec built once to find problems);
- parse_config, then resolve + to_service_spec for each of the 500 (what the CLI does);
- plan() of the 500 specs with nothing running (all START): pure, host facts in memory;
- plan() of the same specs with all 500 running as admitted (all KEEP: a re-apply).

The host: the GPUs of the recorded fixture tests/fixtures/hardware/nvidia_h100_x8.json
(replayed through the real detectors), 256 cores and 2 TiB memory. No Docker needed.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from harness import ROOT, SUMMARY_HEADERS, Summary, progress, summary_row, table
from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import host_profile_pb2, service_spec_pb2

from ozwald_agent.admission import RunningService, fingerprint, plan
from ozwald_agent.hardware.profile import detect_gpus
from ozwald_agent.hardware.snapshot import load_snapshot
from ozwald_sdk.config import Config, parse_config, resolve

GOAL = 2.0
SERVICES = 500
REALMS = 5
FIXTURE = ROOT / "tests" / "fixtures" / "hardware" / "nvidia_h100_x8.json"
TIB = 1 << 40


class MemoryFacts:
    """Every image present, every port free, every path there: nothing is refused."""

    def image_present(self, reference: str) -> bool:
        return True

    def host_port_free(self, host_ip: str, host_port: int) -> bool:
        return True

    def path_exists(self, path: str) -> bool:
        return True


def config_text() -> str:
    per_realm = SERVICES // REALMS
    out = ["version: 1", "x-small: &small {memory: 256MiB, cpus: 0.05}", "realms:"]
    for r in range(REALMS):
        out += [f"  realm{r}:", "    portals:"]
        out += [
            f"      api{i:03d}: {{service: svc{i:03d}, host_port: {20000 + r * 1000 + i}}}"
            for i in range(per_realm)
            if i % 5 == 1
        ]
        out.append("    services:")
        for i in range(per_realm):
            out += [f"      svc{i:03d}:", *_service(i)]
    return "\n".join(out) + "\n"


def _service(i: int) -> list[str]:
    lines = [
        "        connector_port: 8000",
        "        environment: {MODEL: /models/m, MAX_LEN: '512', LOG_LEVEL: info}",
        "        command: ['--model=${MODEL}', '--max-model-len=${MAX_LEN}']",
        "        health_check: {http: {path: /health}, start_period: 30s, interval: 5s}",
        "        restart: {policy: on-failure, max_retries: 5}",
        "        volumes: ['scratch:/tmp']",
    ]
    if i % 10 == 0:
        return [
            *lines,
            "        resources: {memory: 4GiB, shm_size: 1g, gpus: {count: 1, vram_per_gpu: 1GiB}}",
            "        varieties:",
            "          nvidia: {image: vllm/vllm-openai:v0.11.0}",
            "          cpu:",
            "            image: ozwald/vllm-cpu:local",
            "            resources: {gpus: null, memory: 2GiB}",
        ]
    lines += ["        image: ozwald/tiny:local", "        resources: *small"]
    if i % 7 == 3:
        lines.append(f"        depends_on: [svc{i - 1:03d}]")
    return lines


def with_scratch_volumes(text: str) -> str:
    """Each realm declares the tmpfs volume its services mount."""
    return text.replace(
        "    portals:\n", "    volumes:\n      scratch: {type: tmpfs, size: 16MiB}\n    portals:\n"
    )


def host_profile() -> host_profile_pb2.HostProfile:
    profile = host_profile_pb2.HostProfile(
        hostname="bench-h100x8",
        cpu=host_profile_pb2.CpuInfo(logical_cores=256, usable_cores=256),
        memory=host_profile_pb2.MemoryInfo(total_bytes=2 * TIB, available_bytes=2 * TIB),
    )
    profile.gpu_vendors.extend(detect_gpus(load_snapshot(FIXTURE)))
    profile.collected_at.FromSeconds(1_800_000_000)
    return profile


def resolve_all(
    config: Config, host: host_profile_pb2.HostProfile
) -> list[service_spec_pb2.ServiceSpec]:
    return [
        resolve(config, f"{realm}:{name}", host).to_service_spec()
        for realm, name, _ in config.services()
    ]


def timed(what: Callable[[], object], warmup: int, runs: int, label: str) -> Summary:
    for _ in range(warmup):
        what()
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        what()
        samples.append(time.perf_counter() - began)
    summary = Summary.of(samples)
    progress(f"{label}: median {summary.median * 1000:.1f} ms")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="measured runs each (default 9)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured runs each (default 2)")
    parser.add_argument(
        "--profile", action="store_true", help="also print where plan() spends its time"
    )
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")

    text = with_scratch_volumes(config_text())
    path = Path("/nonexistent/bench/ozwald.yml")  # names the file in errors; never read
    host = host_profile()
    facts = MemoryFacts()
    specs = resolve_all(parse_config(text, path), host)
    if len(specs) != SERVICES:
        raise RuntimeError(f"the config has {len(specs)} services, not {SERVICES}")
    fresh = plan(specs, [], host, facts)
    check_admitted(fresh)
    running = [
        RunningService(
            s.realm,
            s.name,
            s,
            fingerprint(s),
            tuple(d.uuid for d in a.gpus.devices),
        )
        for s, a in zip(specs, sorted_actions(fresh, specs), strict=True)
    ]
    again = plan(specs, running, host, facts)
    check_admitted(again)
    kinds = {plan_pb2.ActionKind.Name(a.kind) for a in again.actions}
    if kinds != {"ACTION_KIND_KEEP"}:
        raise RuntimeError(f"re-planning the running set should keep all, not {kinds}")

    w, n = args.warmup, args.runs
    rows: list[tuple[str, Summary]] = [
        ("yaml.safe_load", timed(lambda: yaml.safe_load(text), w, n, "yaml")),
        ("parse_config", timed(lambda: parse_config(text, path), w, n, "parse_config")),
        (
            "parse_config + resolve x500",
            timed(lambda: resolve_all(parse_config(text, path), host), w, n, "load+resolve"),
        ),
        ("plan(), nothing running", timed(lambda: plan(specs, [], host, facts), w, n, "plan")),
        (
            "plan(), all 500 running",
            timed(lambda: plan(specs, running, host, facts), w, n, "re-plan"),
        ),
    ]

    baseline = rows[0][1].median
    print(
        f"plan-latency: {SERVICES} services ({REALMS} realms; {SERVICES // 10} on shared GPUs, "
        f"{SERVICES // 5} with portals) on the GPUs of {FIXTURE.name}"
    )
    print(
        f"{n} measured runs each after {w} warm-up runs; {len(text.splitlines())} lines "
        f"({len(text) / 1024:.0f} KiB) of YAML"
    )
    print()
    print(
        table(
            [*SUMMARY_HEADERS, "us/service", "x yaml"],
            [
                summary_row(
                    label,
                    summary,
                    f"{summary.median / SERVICES * 1e6:.0f}",
                    f"{summary.median / baseline:.2f}",
                )
                for label, summary in rows
            ],
        )
    )
    print()
    if args.profile:
        print_profile(lambda: plan(specs, [], host, facts))
    ratio = rows[3][1].median / baseline
    print(f"goal (plan <= {GOAL:g} x the YAML parse) met: {'yes' if ratio <= GOAL else 'no'}")
    print(f"RATIO plan-latency={ratio:.2f} (plan() / yaml.safe_load, goal <= {GOAL:.2f})")
    return 0


def check_admitted(result: plan_pb2.Plan) -> None:
    if not result.admitted:
        first = result.refusals[0]
        raise RuntimeError(f"the plan refused {first.realm}:{first.name}: {first.message}")


def sorted_actions(
    result: plan_pb2.Plan, specs: list[service_spec_pb2.ServiceSpec]
) -> list[plan_pb2.PlannedAction]:
    """The plan's actions in the order of `specs`."""
    by_key = {(a.realm, a.name): a for a in result.actions}
    return [by_key[(s.realm, s.name)] for s in specs]


def print_profile(what: Callable[[], object]) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    what()
    profiler.disable()
    print("plan() profile, top 15 by cumulative time:")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(15)


if __name__ == "__main__":
    sys.exit(main())

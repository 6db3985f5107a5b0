"""fail-converge: 100 simulated agents, 10 killed; then 10 partitioned and healed in the grace.

Each run starts a fresh `ozwald-orchestrator` process (default health timing: heartbeat
1 s, TTL 3 s, reschedule grace 5 s) and 100 simulated agents in this process (hosts from
the openb node list, real AgentLinkService streams over mutual TLS). It applies
deployments spread over the hosts and waits until every instance runs. Then:

1. Kill: 10 hosts holding instances die (agent and containers, no goodbye). Measured from
   the kill, as an operator sees it through FleetService (ListHosts / ListInstances polled
   every 50 ms): the time until all 10 are DOWN, and the time until every instance they
   ran is RUNNING on another host (its new agent reported it healthy).
2. Partition: 10 other hosts holding instances lose their link for TTL + grace/2 (long
   enough to be marked DOWN, shorter than the grace), then heal. Counted: instances whose
   host changed or that were rescheduled, and containers restarted on those hosts. Goal 0.

The peers are not run here (no Nomad or Kubernetes on this machine): their figures are the
published ones named in ../shared/BENCHMARKS.md, printed beside ours. The last line is the
ratio of our median re-place time to the 15 s goal.

    .venv/bin/python bench/fail_converge.py [--runs 5] [--warmup 1]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import SUMMARY_HEADERS, Summary, progress, summary_row, table
from ozwald.common.v1 import gpu_pb2, service_spec_pb2
from ozwald.orchestrator.v1 import deployment_pb2, fleet_state_pb2

from ozwald_sdk.orchestrator_client import FleetClient
from ozwald_testbed.sim_orchestrator import OrchestratorProcess, OrchestratorSettings
from ozwald_testbed.sim_pki import FleetPki
from ozwald_testbed.simulated_fleet import SimulatedFleet, hosts_from_openb
from ozwald_testbed.simulated_hardware import GIB
from ozwald_testbed.simulated_runtime import RuntimeTiming

ROOT = Path(__file__).resolve().parents[1]
OPENB_NODES = ROOT.parent / "shared" / "data" / "openb" / "openb_node_list_gpu_node.csv"
REALM = "bench"
POLL_S = 0.05
DETECT_GOAL_S = 5.0
REPLACE_GOAL_S = 15.0
# Published peers (../shared/BENCHMARKS.md): not measured here.
NOMAD_DOWN_S = "20-30"
NOMAD_REPLACE_S = "> 30"
KUBERNETES_REPLACE_S = "300-360"
# A simulated container is healthy this long after it is created: a small service's
# start as prov-overhead measures it on this machine (about 0.3 s).
READY_AFTER_S = 0.3
CONVERGE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class RunResult:
    detect_s: float
    replace_s: float
    affected: int
    partition_moved: int
    partition_restarted: int
    partition_down: int


def deployments(
    gpu_services: int, cpu_services: int, replicas: int
) -> list[deployment_pb2.Deployment]:
    """Services spread across hosts: GPU ones (one GPU, 8 GiB of it) and CPU ones."""
    result = []
    for i in range(gpu_services + cpu_services):
        gpu = i < gpu_services
        name = f"{'gpu' if gpu else 'cpu'}-svc-{i:02d}"
        spec = service_spec_pb2.ServiceSpec(
            realm=REALM, name=name, variety="nvidia" if gpu else "cpu", image="bench/sim:1"
        )
        spec.resources.memory_bytes = 4 * GIB
        spec.resources.cpus = 2
        if gpu:
            spec.resources.gpus.count = 1
            spec.resources.gpus.vendor = gpu_pb2.GPU_VENDOR_NVIDIA
            spec.resources.gpus.vram_per_gpu_bytes = 8 * GIB
        deployment = deployment_pb2.Deployment(
            name=name, realm=REALM, service=name, candidates=[spec], replicas=replicas
        )
        deployment.constraints.spread_across_hosts = True
        result.append(deployment)
    return result


class Bench:
    def __init__(self, args: argparse.Namespace, pki: FleetPki) -> None:
        self.args = args
        self.pki = pki
        self.settings = OrchestratorSettings(
            heartbeat_interval_s=args.heartbeat_interval,
            heartbeat_ttl_s=args.heartbeat_ttl,
            reschedule_grace_s=args.reschedule_grace,
            strategy=args.strategy,
        )

    async def run(self, number: int) -> RunResult:
        with tempfile.TemporaryDirectory(prefix="oz-fc-", dir="/tmp") as work:
            orchestrator = OrchestratorProcess(Path(work), self.pki, self.settings)
            orchestrator.start()
            fleet = SimulatedFleet(
                orchestrator.target, self.pki, timing=RuntimeTiming(ready_after_s=READY_AFTER_S)
            )
            fleet.add_all(hosts_from_openb(OPENB_NODES, self.args.agents))
            client = orchestrator.client()
            try:
                await fleet.start()
                await fleet.wait_connected(60)
                return await self._measure(number, orchestrator, fleet, client)
            except BaseException:
                progress(f"orchestrator log tail:\n{orchestrator.log_tail(30)}")
                raise
            finally:
                await fleet.stop()
                client.close()
                orchestrator.stop()

    async def _measure(
        self,
        number: int,
        orchestrator: OrchestratorProcess,
        fleet: SimulatedFleet,
        client: FleetClient,
    ) -> RunResult:
        args = self.args
        wanted = deployments(args.gpu_services, args.cpu_services, args.replicas)
        total = sum(d.replicas for d in wanted)
        await asyncio.to_thread(client.apply_deployments, wanted, realms=[REALM])
        await self._until(client, lambda i: len(i) == total and all(_running(x) for x in i))
        rng = random.Random(number)

        # 1. Kill ----------------------------------------------------------------------
        placements = await self._placements(client)
        holders = sorted(set(placements.values()))
        victims = set(rng.sample(holders, args.kill))
        affected = {i for i, h in placements.items() if h in victims}
        start = time.monotonic()
        await asyncio.gather(*(fleet[h].stop(power_off=True) for h in victims))
        detect = await self._until_hosts(
            client, lambda hosts: all(hosts[h].state != _HOST_READY for h in victims)
        )
        detect_s = detect - start

        def replaced(instances: list[fleet_state_pb2.Instance]) -> bool:
            by_id = {i.id: i for i in instances}
            return all(
                _running(by_id[i]) and by_id[i].host_id not in victims for i in affected
            ) and all(_running(i) for i in instances)

        replace_s = await self._until(client, replaced) - start
        progress(
            f"  run {number}: {len(victims)} hosts killed, {len(affected)} instances on them: "
            f"all down after {detect_s:.2f} s, all running elsewhere after {replace_s:.2f} s"
        )

        # 2. Partition -----------------------------------------------------------------
        before = {i.id: i for i in await asyncio.to_thread(client.list_instances)}
        alive = sorted({i.host_id for i in before.values()} - victims)
        isolated = set(rng.sample(alive, args.kill))
        containers = {
            (h, s.name): s.container_id for h in isolated for s in fleet[h].runtime.statuses()
        }
        for host_id in isolated:
            fleet[host_id].partition()
        went_down: set[str] = set()
        partition_s = self.settings.heartbeat_ttl_s + self.settings.reschedule_grace_s / 2
        until = time.monotonic() + partition_s
        while time.monotonic() < until:
            hosts = await self._hosts(client)
            went_down |= {h for h in isolated if hosts[h].state != _HOST_READY}
            await asyncio.sleep(POLL_S)
        for host_id in isolated:
            fleet[host_id].heal()
        await self._until_hosts(
            client, lambda hosts: all(hosts[h].state == _HOST_READY for h in isolated)
        )
        await self._until(client, lambda i: all(_running(x) for x in i))
        # Room for a wrong decision to show: a reschedule would be visible by now.
        await asyncio.sleep(self.settings.heartbeat_interval_s * 2)
        after = {i.id: i for i in await asyncio.to_thread(client.list_instances)}
        moved = sum(
            1
            for i, old in before.items()
            if after[i].host_id != old.host_id or after[i].reschedules != old.reschedules
        )
        restarted = sum(
            1
            for (h, name), cid in containers.items()
            if (status := fleet[h].runtime.status(name)) is None or status.container_id != cid
        )
        progress(
            f"  run {number}: {len(isolated)} hosts partitioned for {partition_s:g} s "
            f"({len(went_down)} marked down meanwhile), healed: {moved} instances moved, "
            f"{restarted} containers restarted"
        )
        return RunResult(detect_s, replace_s, len(affected), moved, restarted, len(went_down))

    async def _placements(self, client: FleetClient) -> dict[str, str]:
        return {i.id: i.host_id for i in await asyncio.to_thread(client.list_instances)}

    async def _hosts(self, client: FleetClient) -> dict[str, fleet_state_pb2.Host]:
        return {h.id: h for h in await asyncio.to_thread(client.list_hosts)}

    async def _until(
        self, client: FleetClient, done: Callable[[list[fleet_state_pb2.Instance]], bool]
    ) -> float:
        """Polls ListInstances until `done(instances)`; returns the monotonic time seen."""
        deadline = time.monotonic() + CONVERGE_TIMEOUT_S
        while time.monotonic() < deadline:
            instances = await asyncio.to_thread(client.list_instances)
            if done(instances):
                return time.monotonic()
            await asyncio.sleep(POLL_S)
        raise TimeoutError(f"the fleet did not converge within {CONVERGE_TIMEOUT_S:g} s")

    async def _until_hosts(
        self, client: FleetClient, done: Callable[[dict[str, fleet_state_pb2.Host]], bool]
    ) -> float:
        """Polls ListHosts until `done(hosts by id)`; returns the monotonic time seen."""
        deadline = time.monotonic() + CONVERGE_TIMEOUT_S
        while time.monotonic() < deadline:
            if done(await self._hosts(client)):
                return time.monotonic()
            await asyncio.sleep(POLL_S)
        raise TimeoutError(f"hosts did not change state within {CONVERGE_TIMEOUT_S:g} s")


_HOST_READY = fleet_state_pb2.HOST_STATE_READY


def _running(instance: fleet_state_pb2.Instance) -> bool:
    return instance.state == fleet_state_pb2.INSTANCE_STATE_RUNNING


async def bench(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="oz-fc-pki-", dir="/tmp") as pki_dir:
        runner = Bench(args, FleetPki(Path(pki_dir)))
        for i in range(args.warmup):
            progress(f"warm-up {i + 1}/{args.warmup}")
            await runner.run(1000 + i)
        results = []
        for i in range(args.runs):
            progress(f"run {i + 1}/{args.runs}")
            results.append(await runner.run(i))
    report(args, results)
    return 0


def report(args: argparse.Namespace, results: list[RunResult]) -> None:
    print(
        f"fail-converge: {args.agents} simulated agents, {args.kill} killed, then {args.kill} "
        f"partitioned for TTL + grace/2; heartbeat {args.heartbeat_interval:g} s, TTL "
        f"{args.heartbeat_ttl:g} s, grace {args.reschedule_grace:g} s, strategy "
        f"{args.strategy}; simulated containers ready {READY_AFTER_S:g} s after creation; "
        f"FleetService polled every {POLL_S * 1000:.0f} ms"
    )
    print()
    rows = [
        [
            str(n + 1),
            f"{r.detect_s:.2f}",
            f"{r.replace_s:.2f}",
            str(r.affected),
            f"{r.partition_down}/{args.kill}",
            str(r.partition_moved),
            str(r.partition_restarted),
        ]
        for n, r in enumerate(results)
    ]
    print(
        table(
            [
                "run",
                "all down s",
                "all re-placed s",
                "instances moved",
                "partitioned down",
                "moved by partition",
                "restarted by partition",
            ],
            rows,
        )
    )
    print()
    detect = Summary.of([r.detect_s for r in results])
    replace = Summary.of([r.replace_s for r in results])
    print(
        table(
            [*SUMMARY_HEADERS, "goal s", "Nomad s (published)", "Kubernetes s (published)"],
            [
                summary_row(
                    "10 hosts marked down",
                    detect,
                    f"<= {DETECT_GOAL_S:g}",
                    NOMAD_DOWN_S,
                    "40-50 (NotReady)",
                ),
                summary_row(
                    "their instances running elsewhere",
                    replace,
                    f"<= {REPLACE_GOAL_S:g}",
                    NOMAD_REPLACE_S,
                    KUBERNETES_REPLACE_S,
                ),
            ],
        )
    )
    moved = sum(r.partition_moved + r.partition_restarted for r in results)
    print()
    print(
        f"partition healed within the grace: {moved} instances moved or restarted over "
        f"{len(results)} runs (goal 0)"
    )
    met = detect.median <= DETECT_GOAL_S and replace.median <= REPLACE_GOAL_S and moved == 0
    print(
        f"goals (detect <= {DETECT_GOAL_S:g} s, re-placed <= {REPLACE_GOAL_S:g} s, "
        f"partition moves 0) met: {'yes' if met else 'no'}"
    )
    print(
        f"RATIO fail-converge={replace.median / REPLACE_GOAL_S:.2f} (median time until every "
        f"instance of the killed hosts runs elsewhere / the {REPLACE_GOAL_S:g} s goal, goal "
        f"<= 1.00; against Nomad's published 30 s reschedule: {replace.median / 30:.2f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--kill", type=int, default=10, help="hosts killed, then partitioned")
    parser.add_argument("--gpu-services", type=int, default=10)
    parser.add_argument("--cpu-services", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--heartbeat-interval", type=float, default=1.0)
    parser.add_argument("--heartbeat-ttl", type=float, default=3.0)
    parser.add_argument("--reschedule-grace", type=float, default=5.0)
    parser.add_argument("--strategy", default="spread")
    args = parser.parse_args()
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())

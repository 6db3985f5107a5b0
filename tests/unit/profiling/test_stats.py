"""Engine stats as they come from cgroup v1 and v2 hosts, and the kernel's v2 peak."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ozwald.agent.v1 import footprint_pb2 as F

from ozwald_agent.profiling.cgroup_peak import cgroup_v2_path, memory_peak
from ozwald_agent.profiling.sampler import Tracker
from ozwald_agent.profiling.stats import StatsSample, cpu_cores, mean_cpu_cores, parse_stats

MIB = 1024**2


def v1_stats(
    read: str, usage: int, max_usage: int, total_ns: int, system_ns: int
) -> dict[str, Any]:
    """What Docker 20.10 answers on a cgroup v1 host (trimmed)."""
    return {
        "read": read,
        "preread": "0001-01-01T00:00:00Z",
        "pids_stats": {"current": 3},
        "cpu_stats": {
            "cpu_usage": {"total_usage": total_ns, "percpu_usage": [total_ns // 2] * 2},
            "system_cpu_usage": system_ns,
            "online_cpus": 2,
        },
        "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
        "memory_stats": {
            "usage": usage,
            "max_usage": max_usage,
            "stats": {"cache": 4096, "total_inactive_file": 0},
            "limit": 64 * MIB,
        },
    }


def v2_stats(read: str, usage: int, total_ns: int, system_ns: int) -> dict[str, Any]:
    """What the engine answers on a cgroup v2 host: no max_usage."""
    return {
        "read": read,
        "cpu_stats": {
            "cpu_usage": {
                "total_usage": total_ns,
                "usage_in_kernelmode": 1,
                "usage_in_usermode": 2,
            },
            "system_cpu_usage": system_ns,
            "online_cpus": 4,
        },
        "memory_stats": {
            "usage": usage,
            "stats": {"anon": usage // 2, "file": usage // 2, "inactive_file": 0},
            "limit": 8 * 1024 * MIB,
        },
    }


def test_v1_stats_carry_the_kernels_peak() -> None:
    sample = parse_stats(
        v1_stats("2026-11-27T07:00:00.123456789Z", 10 * MIB, 30 * MIB, 5_000_000, 10**12)
    )

    assert sample.memory_usage == 10 * MIB
    assert sample.memory_max_usage == 30 * MIB
    assert sample.online_cpus == 2
    assert sample.read_at == pytest.approx(1795762800.123456, abs=1e-6)


def test_v2_stats_have_usage_but_no_peak() -> None:
    sample = parse_stats(v2_stats("2026-11-27T07:00:00Z", 12 * MIB, 1, 2))

    assert (sample.memory_usage, sample.memory_max_usage) == (12 * MIB, None)


def test_a_stopped_container_answers_an_empty_reading() -> None:
    sample = parse_stats({"read": "0001-01-01T00:00:00Z", "memory_stats": {}, "cpu_stats": {}})

    assert sample == StatsSample(None, None, None, None, None, None)


def test_cpu_cores_use_dockers_formula_and_fall_back_to_wall_time() -> None:
    # 1.5 s of CPU while the host's 4 cores ran 4 s together (1 s of wall time): 1.5 cores.
    before = parse_stats(v2_stats("2026-11-27T07:00:00Z", 1, 1_000_000_000, 100_000_000_000))
    after = parse_stats(v2_stats("2026-11-27T07:00:01Z", 1, 2_500_000_000, 104_000_000_000))
    assert cpu_cores(before, after) == pytest.approx(1.5)

    no_host = StatsSample(before.read_at, 1, None, before.cpu_total_ns, None, None)
    later = StatsSample(
        (before.read_at or 0) + 2, 1, None, (before.cpu_total_ns or 0) + 1_000_000_000, None, None
    )
    assert cpu_cores(no_host, later) == pytest.approx(0.5)
    # A counter that went back (a restarted container) says nothing.
    assert cpu_cores(after, before) is None
    assert mean_cpu_cores(before, after) == pytest.approx(1.5)


def test_the_tracker_keeps_the_kernels_peak_on_v1_and_the_sampled_one_otherwise() -> None:
    v1 = Tracker()
    for second, usage, peak in ((0, 5, 8), (1, 20, 25), (2, 12, 25)):
        v1.add(
            parse_stats(
                v1_stats(
                    f"2026-11-27T07:00:0{second}Z",
                    usage * MIB,
                    peak * MIB,
                    10**9 * second,
                    10**12 + 2 * 10**9 * second,
                )
            )
        )
    assert v1.memory(None) == (25 * MIB, F.MEMORY_PEAK_SOURCE_CGROUP_V1_MAX_USAGE)
    assert v1.peak_cpu == pytest.approx(1.0)
    assert v1.samples == 3

    v2 = Tracker()
    for second, usage in ((0, 5), (1, 20), (2, 12)):
        v2.add(parse_stats(v2_stats(f"2026-11-27T07:00:0{second}Z", usage * MIB, 1, 1)))
    v2.add(parse_stats({"memory_stats": {}}))  # the container ended: not a sample
    assert v2.samples == 3
    assert v2.memory(33 * MIB) == (33 * MIB, F.MEMORY_PEAK_SOURCE_CGROUP_V2_MEMORY_PEAK)
    assert v2.memory(None) == (20 * MIB, F.MEMORY_PEAK_SOURCE_SAMPLED_USAGE)


def test_memory_peak_reads_the_cgroup_of_the_containers_process(tmp_path: Path) -> None:
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "4242").mkdir(parents=True)
    (proc / "4242" / "cgroup").write_text("0::/system.slice/docker-abc.scope\n")
    scope = root / "system.slice" / "docker-abc.scope"
    scope.mkdir(parents=True)
    (scope / "memory.peak").write_text("123456789\n")

    assert memory_peak(4242, proc=proc, cgroup_root=root) == 123456789
    assert memory_peak(4343, proc=proc, cgroup_root=root) is None  # no such process
    (proc / "4242" / "cgroup").write_text("12:memory:/docker/abc\n11:cpu:/docker/abc\n")
    assert memory_peak(4242, proc=proc, cgroup_root=root) is None  # cgroup v1
    assert memory_peak(0, proc=proc, cgroup_root=root) is None


def test_cgroup_v2_path_ignores_v1_hierarchies_of_a_hybrid_host() -> None:
    text = "12:memory:/docker/abc\n0::/docker/abc\n"
    assert cgroup_v2_path(text) == "/docker/abc"

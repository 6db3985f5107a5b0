"""CPU, memory, disk and OS facts against what this machine's kernel says."""

from __future__ import annotations

import os
import platform
import re
import shutil
from pathlib import Path

import pytest

from ozwald_agent.hardware.cpu import collect_cpu, cpu_model
from ozwald_agent.hardware.disk import collect_state_disk, nearest_existing
from ozwald_agent.hardware.memory import collect_memory
from ozwald_agent.hardware.operating_system import collect_operating_system


def _meminfo_bytes(key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB$", Path("/proc/meminfo").read_text(), re.MULTILINE)
    assert match, f"/proc/meminfo has no {key}"
    return int(match.group(1)) * 1024


def test_cpu_counts_match_the_kernel() -> None:
    cpu = collect_cpu()

    assert cpu.logical_cores == os.cpu_count()
    assert cpu.usable_cores == len(os.sched_getaffinity(0))
    assert 0 <= cpu.physical_cores <= cpu.logical_cores
    assert cpu.architecture == platform.machine()
    assert min(cpu.load_average_1m, cpu.load_average_5m, cpu.load_average_15m) >= 0


def test_cpu_model_is_the_first_model_name_in_proc_cpuinfo() -> None:
    names = re.findall(r"^model name\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.M)

    assert collect_cpu().model == (names[0].strip() if names else "")


@pytest.mark.parametrize(
    ("cpuinfo", "model"),
    [
        (
            "processor\t: 0\nvendor_id\t: AuthenticAMD\n"
            "model name\t: AMD EPYC 9654 96-Core Processor\nprocessor\t: 1\n"
            "model name\t: AMD EPYC 9654 96-Core Processor\n",
            "AMD EPYC 9654 96-Core Processor",
        ),
        ("processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n", ""),
        ("", ""),
    ],
)
def test_cpu_model_parsing(cpuinfo: str, model: str) -> None:
    assert cpu_model(cpuinfo) == model


def test_memory_total_is_memtotal_exactly() -> None:
    memory = collect_memory()

    assert memory.total_bytes == _meminfo_bytes("MemTotal")
    assert memory.swap_total_bytes == _meminfo_bytes("SwapTotal")
    assert 0 < memory.available_bytes <= memory.total_bytes


def test_a_state_dir_not_yet_created_is_measured_on_its_parents_disk(tmp_path: Path) -> None:
    state_dir = tmp_path / "not" / "yet" / "there"

    disk = collect_state_disk(state_dir)

    assert disk.path == str(state_dir)
    assert disk.total_bytes == shutil.disk_usage(tmp_path).total
    assert 0 < disk.free_bytes <= disk.total_bytes
    assert disk.used_bytes <= disk.total_bytes


def test_nearest_existing_walks_up_to_an_existing_directory(tmp_path: Path) -> None:
    assert nearest_existing(tmp_path / "a" / "b") == tmp_path
    assert nearest_existing(tmp_path) == tmp_path


def test_operating_system_comes_from_uname_and_os_release() -> None:
    os_info = collect_operating_system()

    assert os_info.kernel_name == os.uname().sysname
    assert os_info.kernel_release == os.uname().release
    release = next(
        (p for p in (Path("/etc/os-release"), Path("/usr/lib/os-release")) if p.exists()), None
    )
    if release is None:
        assert os_info.distribution == ""
        return
    pretty = re.search(r'^PRETTY_NAME="?([^"\n]*)"?$', release.read_text(), re.M)
    assert os_info.distribution == (pretty.group(1) if pretty else "")

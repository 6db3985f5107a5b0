"""The testbed's process handling: found again by its marker, stopped, never confused with
a process that merely got a recorded pid; and the settings later commands read back."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from ozwald_testbed.real_fleet import HealthTimings, TestbedSettings
from ozwald_testbed.real_processes import TestbedProcess, find_processes, start_process

SLEEPER = "import sys, time; time.sleep(60)"


def test_a_started_process_is_found_again_by_its_marker_and_stopped(tmp_path: Path) -> None:
    marker = str(tmp_path / "bed")
    started = start_process(
        "sleeper", [sys.executable, "-c", SLEEPER, marker], log=tmp_path / "s.log", marker=marker
    )
    try:
        # Known by pid and marker alone (as after `up` exited); this also waits out the
        # instant of its exec, when its command line is still empty.
        assert TestbedProcess("sleeper", started.pid, marker, log=None).running()
        (found,) = find_processes(marker, programs=(SLEEPER,))
        assert found.pid == started.pid and found.running()
        found.stop(timeout=5.0)
        assert not started.running()
        assert find_processes(marker, programs=(SLEEPER,)) == []
    finally:
        started.kill()


def test_a_process_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    marker = str(tmp_path / "bed")
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ignoring', flush=True); time.sleep(60)"
    )
    log = tmp_path / "s.log"
    process = start_process(
        "stubborn", [sys.executable, "-c", stubborn, marker], log=log, marker=marker
    )
    deadline = time.monotonic() + 30
    while "ignoring" not in log.read_text():
        assert time.monotonic() < deadline, "the child never got ready"
        time.sleep(0.05)
    process.stop(timeout=0.5)
    assert not process.running()
    assert process.popen is not None and process.popen.returncode == -signal.SIGKILL


def test_a_pid_without_the_marker_is_not_ours_and_is_left_alone(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", SLEEPER])
    try:
        impostor = TestbedProcess(name="h1", pid=other.pid, marker=str(tmp_path), log=None)
        assert not impostor.running()
        impostor.signal(signal.SIGKILL)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_settings_survive_the_trip_through_testbed_json(tmp_path: Path) -> None:
    settings = TestbedSettings(
        workdir=tmp_path,
        hosts=2,
        subnet="10.218.0.0/24",
        prefix="ozft-h",
        bridge="ozft-br0",
        port=7444,
        timings=HealthTimings(heartbeat_interval=0.5, heartbeat_ttl=2, reschedule_grace=4),
        labels={"zone": "a"},
    )
    assert TestbedSettings.from_json(settings.to_json()) == settings

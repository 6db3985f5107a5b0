from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ozwald_sdk.process.exclusive_lock import ExclusiveLock, LockHeldError

HOLD_LOCK = """
import sys, time
from pathlib import Path
from ozwald_sdk.process.exclusive_lock import ExclusiveLock
ExclusiveLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
time.sleep(60)
"""


def test_lock_records_the_holder_and_refuses_a_second_holder(tmp_path: Path) -> None:
    path = tmp_path / "agent.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeldError) as held:
            ExclusiveLock(path).acquire()
        assert held.value.holder_pid == holder.pid
        assert f"process {holder.pid}" in str(held.value)
    finally:
        holder.kill()
        holder.wait()


def test_a_dead_holder_never_blocks_the_next_one(tmp_path: Path) -> None:
    path = tmp_path / "agent.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    holder.stdout.readline()
    holder.kill()
    holder.wait()
    assert path.exists(), "SIGKILL leaves the file; the kernel drops the lock"
    lock = ExclusiveLock(path)
    lock.acquire()
    assert path.read_text().strip() == str(os.getpid())
    lock.release()


def test_release_removes_the_file_and_allows_relocking(tmp_path: Path) -> None:
    path = tmp_path / "agent.lock"
    first = ExclusiveLock(path)
    first.acquire()
    first.release()
    assert not path.exists()
    second = ExclusiveLock(path)
    second.acquire()
    second.release()

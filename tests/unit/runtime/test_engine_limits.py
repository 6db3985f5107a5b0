"""How much `nofile` a container may get: the engine daemon's own hard limit."""

from __future__ import annotations

import os
import resource
import socket
from pathlib import Path

from ozwald_agent.runtime.engine_limits import (
    engine_open_files_limit,
    engine_pid,
    open_files_hard_limit,
)
from tests.support.short_paths import short_tmpdir

LIMITS = """Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            20000                20000                files
Max locked memory         8388608              8388608              bytes
"""


def test_the_hard_limit_is_read_from_proc_limits() -> None:
    assert open_files_hard_limit(LIMITS) == 20000
    assert (
        open_files_hard_limit(LIMITS.replace("20000                files", "unlimited files"))
        is None
    )
    assert open_files_hard_limit("Limit Soft Hard\n") is None


def test_the_engine_is_whoever_serves_the_socket() -> None:
    with short_tmpdir() as workdir, socket.socket(socket.AF_UNIX) as server:
        path = str(workdir / "engine.sock")
        server.bind(path)
        server.listen()

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        assert engine_pid(path) == os.getpid()
        assert engine_open_files_limit(path) == (None if hard == resource.RLIM_INFINITY else hard)


def test_no_engine_means_no_limit_known(tmp_path: Path) -> None:
    assert engine_pid(str(tmp_path / "absent.sock")) is None
    assert engine_open_files_limit(str(tmp_path / "absent.sock")) is None

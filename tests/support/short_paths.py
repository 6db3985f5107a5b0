"""Directories short enough for unix sockets (a socket path must fit in 107 bytes)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def short_tmpdir() -> Iterator[Path]:
    """A fresh directory under /tmp, removed afterwards (pytest's tmp_path can be too long)."""
    path = Path(tempfile.mkdtemp(prefix="oz-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)

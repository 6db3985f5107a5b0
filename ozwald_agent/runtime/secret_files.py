"""Secret files on the host's tmpfs, for one container to bind-mount read-only.

Layout: `BASE/<agent id>/<container name>/<locker>/<name>`, where BASE (default
`/run/ozwald/secrets`) must be on tmpfs or ramfs, so values never reach a disk. The
container's directory is bind-mounted read-only at `/run/secrets`, so a service reads
`/run/secrets/<locker>/<name>`. Files are 0400 and directories 0500, all owned by the
container's user (numeric uid and gid), so only that user (and root) inside the
container can read them. The agent removes the directory when the container is removed
and sweeps directories without a container when it starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path

from ozwald_agent.runtime.errors import ContainerRuntimeError

DEFAULT_BASE = Path("/run/ozwald/secrets")
MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})
FILE_MODE = 0o400
DIR_MODE = 0o500
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8


class SecretFilesError(ContainerRuntimeError):
    """Secret files could not be placed safely; the service is not started."""

    reason = "SECRET_FILES"


def filesystem_type(path: Path) -> str:
    """The type of the filesystem `path` lives on, from /proc/self/mountinfo."""
    target = os.path.realpath(path)
    best, kind = "", ""
    with open("/proc/self/mountinfo", encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            separator = fields.index("-")
            mount_point = fields[4].replace("\\040", " ")
            inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= len(best):
                best, kind = mount_point, fields[separator + 1]
    return kind


def prepare_base(base: Path) -> None:
    """Creates `base` (0700) and makes sure it is in memory.

    When it is not and the agent is root, a private tmpfs (nosuid, nodev, noexec, 0700)
    is mounted on it; otherwise the agent refuses, rather than writing values to a disk.
    """
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(base, 0o700)
    if filesystem_type(base) in MEMORY_FILESYSTEMS:
        return
    if os.geteuid() == 0:
        _mount_tmpfs(base)
    kind = filesystem_type(base)
    if kind not in MEMORY_FILESYSTEMS:
        raise SecretFilesError(
            f"{base} is on {kind or 'an unknown filesystem'}, not tmpfs: secret values would "
            "be written to a disk",
            remedy="mount a tmpfs there (`mount -t tmpfs -o mode=0700 tmpfs DIR`), run the "
            "agent as root so it can, or choose --secrets-dir on a tmpfs such as /run",
        )


def _mount_tmpfs(target: Path) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    # A failure leaves the directory as it was; prepare_base then refuses with the reason.
    libc.mount(b"tmpfs", os.fsencode(target), b"tmpfs", flags, b"mode=0700,size=64m")


def write_secret_dir(
    directory: Path, lockers: Mapping[str, Mapping[str, bytes]], uid: int, gid: int
) -> None:
    """Replaces `directory` with one file per secret, owned by uid:gid."""
    remove_secret_dir(directory)
    directory.mkdir(mode=0o700)
    try:
        for locker, values in lockers.items():
            locker_dir = directory / locker
            locker_dir.mkdir(mode=0o700)
            for name, value in values.items():
                path = locker_dir / name
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
                try:
                    os.write(fd, value)
                    os.fchown(fd, uid, gid)
                    os.fchmod(fd, FILE_MODE)
                finally:
                    os.close(fd)
            os.chown(locker_dir, uid, gid)
            os.chmod(locker_dir, DIR_MODE)
        os.chown(directory, uid, gid)
        os.chmod(directory, DIR_MODE)
    except OSError as e:
        remove_secret_dir(directory)
        raise SecretFilesError(
            f"cannot write secret files under {directory}: {e.strerror}",
            remedy="the agent must run as root to give the files to the container's user",
        ) from e


def remove_secret_dir(directory: Path) -> None:
    if not directory.exists() and not directory.is_symlink():
        return
    # 0500 directories: make them writable first for an agent that is not root.
    for root, dirs, _ in os.walk(directory):
        for name in [root, *(os.path.join(root, d) for d in dirs)]:
            with contextlib.suppress(OSError):
                os.chmod(name, stat.S_IRWXU)
    shutil.rmtree(directory, ignore_errors=True)

"""The gocryptfs backend: a directory of ciphertext, opened as a FUSE mount.

Decisions:
- The key reaches gocryptfs on its standard input (a pipe), never as an argument (seen in
  `ps`), an environment variable, or a file (which a crash could leave behind): gocryptfs
  reads the password from stdin when stdin is not a terminal. It must be one line.
- gocryptfs daemonizes itself: the command returns only once the mount is up (exit 0) or
  has failed (exit 12: wrong key). The daemon is not the agent's child, so an agent that
  dies does not take running containers' volumes with it; its leftovers are found in
  /proc/self/mountinfo at the next start.
- `-nosyslog` keeps its messages off syslog (which may not exist in a container) and in a
  log file of the runtime directory; gocryptfs never writes the password there.
- `-allow_other`: the Docker daemon and the container's user must reach the plaintext.
- `-fsname ozwald-volume:<label>` names the mount in mountinfo (instead of the cipher
  directory's path), so `findmnt` tells what it is.
- Random per-instance keys (encrypted-tmp) use scrypt cost 2^10: the key is 256 random
  bits already, so a slow KDF adds nothing but start-up time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ozwald_agent.volumes.errors import BackendUnavailableError, VolumeError, VolumeKeyError

GOCRYPTFS = "gocryptfs"
FUSERMOUNTS = ("fusermount3", "fusermount")
FUSE_DEVICE = Path("/dev/fuse")
EXIT_WRONG_PASSWORD = 12
FAST_SCRYPT_LOG_N = 10
MOUNT_TIMEOUT_S = 60.0
MAX_KEY_BYTES = 2048


def unavailable_reason(fuse_device: Path = FUSE_DEVICE) -> str | None:
    """Why gocryptfs cannot run here, or None when it can."""
    if shutil.which(GOCRYPTFS) is None:
        return "gocryptfs is not installed (Debian: apt-get install gocryptfs fuse3)"
    if not any(shutil.which(f) for f in FUSERMOUNTS):
        return "fusermount is not installed (Debian: apt-get install fuse3)"
    if not fuse_device.exists():
        return f"{fuse_device} does not exist (load the fuse module, or pass the device in)"
    return None


def check_key(key: bytes) -> bytes:
    """The key as gocryptfs will read it: one line of 1 to 2048 bytes."""
    key = key.rstrip(b"\r\n")
    if not key:
        raise VolumeKeyError("the volume key is empty", remedy="set a long random value")
    if b"\n" in key or b"\r" in key or len(key) > MAX_KEY_BYTES:
        raise VolumeKeyError(
            "the volume key must be one line of at most 2048 bytes",
            remedy="set a single-line value, e.g. `openssl rand -hex 32`",
        )
    return key


def init_argv(cipher: Path, *, fast_kdf: bool = False) -> list[str]:
    argv = [GOCRYPTFS, "-init", "-q"]
    if fast_kdf:
        argv += ["-scryptn", str(FAST_SCRYPT_LOG_N)]
    return [*argv, "--", str(cipher)]


def mount_argv(cipher: Path, plain: Path, *, label: str, read_only: bool) -> list[str]:
    argv = [GOCRYPTFS, "-q", "-nosyslog", "-allow_other", "-fsname", f"ozwald-volume:{label}"]
    if read_only:
        argv.append("-ro")
    return [*argv, "--", str(cipher), str(plain)]


def unmount_argv(plain: Path, *, lazy: bool = False) -> list[str]:
    tool = next((f for f in FUSERMOUNTS if shutil.which(f)), FUSERMOUNTS[0])
    return [tool, "-u", *(["-z"] if lazy else []), str(plain)]


def is_initialised(cipher: Path) -> bool:
    return (cipher / "gocryptfs.conf").is_file()


def initialise(cipher: Path, key: bytes, *, fast_kdf: bool = False) -> None:
    """Makes `cipher` a new gocryptfs directory (it must be empty)."""
    cipher.mkdir(parents=True, exist_ok=True, mode=0o700)
    result = _run(init_argv(cipher, fast_kdf=fast_kdf), key, log=None)
    if result.returncode != 0:
        raise VolumeError(
            f"gocryptfs -init {cipher} failed (exit {result.returncode}): {result.stderr.strip()}"
        )


def mount(cipher: Path, plain: Path, key: bytes, *, label: str, read_only: bool, log: Path) -> None:
    plain.mkdir(parents=True, exist_ok=True, mode=0o755)
    result = _run(mount_argv(cipher, plain, label=label, read_only=read_only), key, log=log)
    if result.returncode == EXIT_WRONG_PASSWORD:
        raise VolumeKeyError(
            f"the key does not open volume {label} (gocryptfs: password incorrect)",
            remedy="set the volume's key secret back to the value it was created with "
            "(`ozwald secrets set LOCKER NAME`), then apply again",
        )
    if result.returncode != 0:
        raise VolumeError(
            f"gocryptfs could not mount volume {label} (exit {result.returncode}): {_tail(log)}",
            remedy="see the agent's log; `gocryptfs -fsck` checks the ciphertext",
        )


def unmount(plain: Path) -> None:
    """Unmounts; lazily when busy, so the host loses the plaintext view at once."""
    result = subprocess.run(unmount_argv(plain), capture_output=True, text=True, check=False)
    if result.returncode == 0:
        return
    lazy = subprocess.run(
        unmount_argv(plain, lazy=True), capture_output=True, text=True, check=False
    )
    if lazy.returncode != 0:
        raise VolumeError(f"cannot unmount {plain}: {result.stderr.strip() or lazy.stderr.strip()}")


class _Result:
    def __init__(self, returncode: int, stderr: str) -> None:
        self.returncode, self.stderr = returncode, stderr


def _run(argv: Sequence[str], key: bytes, *, log: Path | None) -> _Result:
    if unavailable_reason() is not None:
        raise BackendUnavailableError(f"gocryptfs cannot run: {unavailable_reason()}")
    secret = check_key(key) + b"\n"
    # A daemonized gocryptfs keeps its stdout and stderr open: they must be a file, or
    # reading them would wait for the unmount.
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    else:
        out = subprocess.PIPE
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=out if log is not None else subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
        _, stderr = process.communicate(secret, timeout=MOUNT_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        process.kill()
        raise VolumeError(f"{argv[0]} did not finish within {MOUNT_TIMEOUT_S:.0f} s") from e
    finally:
        if log is not None:
            os.close(out)
    return _Result(process.returncode, (stderr or b"").decode(errors="replace"))


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(lines[-3:]) or "(no message)"

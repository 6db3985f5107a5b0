"""The LUKS2 backend: an encrypted ext4 image per volume, opened through cryptsetup.

It needs the kernel's device-mapper (`/dev/mapper/control`), `cryptsetup` and
`mkfs.ext4`. Where one is missing (containers without device-mapper, hosts without the
package), `unavailable_reason()` says so and admission refuses a service that asks for
LUKS2 with VOLUME_BACKEND_UNAVAILABLE: nothing is faked.

Decisions:
- Only persistent `encrypted` volumes: versions are copies of a gocryptfs directory, and
  a per-instance image would make every start pay for a format; config and admission
  refuse `encrypted-tmp` and `versioned` with luks2.
- The key reaches cryptsetup on its standard input (`--key-file -`, read to the end, so
  every byte is key), never as an argument, an environment variable or a file.
- The image is sparse, made under a temporary name (`luks2.img.new`) and renamed only
  after luksFormat and mkfs succeeded: a half-made image is never taken for a volume and
  is removed (it holds no data) at the next attempt or sweep.
- The key is checked with `cryptsetup open --test-passphrase` before anything is opened:
  a wrong key makes no device, no mount and no loop device.
- `cryptsetup open` attaches the loop device itself, with autoclear: `cryptsetup close`
  detaches it. Teardown still detaches any loop device left on the image (a crash at
  the wrong moment), so nothing decrypted or attached outlives the last user.
- Mapper names start with `ozwald-<agent id>-`: the sweep at agent start and stop closes
  exactly this agent's devices, after unmounting their mounts under its runtime dir.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ozwald_agent.volumes import mountinfo
from ozwald_agent.volumes.errors import VolumeError, VolumeKeyError

CRYPTSETUP = "cryptsetup"
MKFS = "mkfs.ext4"
MAPPER_CONTROL = Path("/dev/mapper/control")
MAPPER_DIR = Path("/dev/mapper")
PROC_MISC = Path("/proc/misc")
IMAGE = "luks2.img"
NEW_IMAGE = "luks2.img.new"
FSTYPE = "ext4"
EXIT_WRONG_KEY = 2
"""cryptsetup's exit code for "no key available with this passphrase"."""
MIN_SIZE_BYTES = 32 * 1024 * 1024
"""The LUKS2 header takes 16 MiB; below twice that an ext4 is not worth making."""
COMMAND_TIMEOUT_S = 120.0


def unavailable_reason(
    mapper_control: Path = MAPPER_CONTROL, proc_misc: Path = PROC_MISC
) -> str | None:
    """Why LUKS2 volumes cannot be opened here, or None when they can."""
    if not mapper_control.exists():
        registered = _misc_registers_device_mapper(proc_misc)
        why = (
            f"{mapper_control} does not exist (the kernel registers device-mapper, but this "
            "agent cannot reach it: a container without the device?)"
            if registered
            else f"{mapper_control} does not exist and the kernel has no device-mapper "
            "(load the dm_mod and dm_crypt modules)"
        )
        return f"device-mapper unavailable: {why}"
    unusable = _cannot_open(mapper_control)
    if unusable is not None:
        # libdevmapper makes the node whenever it is missing, even where the kernel has no
        # driver behind it (any cryptsetup command does): only opening it tells.
        return (
            f"device-mapper unavailable: {mapper_control} exists but cannot be opened "
            f"({unusable}: the kernel has no device-mapper, or this agent may not use it)"
        )
    if shutil.which(CRYPTSETUP) is None:
        return "cryptsetup is not installed (Debian: apt-get install cryptsetup-bin)"
    if shutil.which(MKFS) is None:
        return "mkfs.ext4 is not installed (Debian: apt-get install e2fsprogs)"
    return None


def _cannot_open(device: Path) -> str | None:
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return e.strerror or str(e)
    os.close(fd)
    return None


def _misc_registers_device_mapper(proc_misc: Path) -> bool:
    try:
        lines = proc_misc.read_text().splitlines()
    except OSError:
        return False
    return any(line.split()[1:] == ["device-mapper"] for line in lines)


def mapper_prefix(agent_id: str) -> str:
    return f"ozwald-{agent_id[:12]}-"


def mapper_name(agent_id: str, realm: str, volume: str) -> str:
    """The device-mapper name: unique per agent, realm and volume."""
    return f"{mapper_prefix(agent_id)}{realm}-{volume}"


# Command lines -------------------------------------------------------------------------


def format_argv(image: Path) -> list[str]:
    return [
        CRYPTSETUP,
        "luksFormat",
        "--type",
        "luks2",
        "--batch-mode",
        "--key-file",
        "-",
        str(image),
    ]


def key_check_argv(image: Path) -> list[str]:
    return [
        CRYPTSETUP,
        "open",
        "--test-passphrase",
        "--type",
        "luks2",
        "--key-file",
        "-",
        str(image),
    ]


def open_argv(image: Path, name: str, *, read_only: bool = False) -> list[str]:
    argv = [CRYPTSETUP, "open", "--type", "luks2", "--key-file", "-"]
    if read_only:
        argv.append("--readonly")
    return [*argv, str(image), name]


def mkfs_argv(name: str) -> list[str]:
    return [MKFS, "-q", "-m", "0", f"/dev/mapper/{name}"]


def mount_argv(name: str, plain: Path, *, read_only: bool = False) -> list[str]:
    options = "nosuid,nodev" + (",ro" if read_only else "")
    return ["mount", "-o", options, f"/dev/mapper/{name}", str(plain)]


def unmount_argv(plain: Path, *, lazy: bool = False) -> list[str]:
    return ["umount", *(["--lazy"] if lazy else []), str(plain)]


def close_argv(name: str) -> list[str]:
    return [CRYPTSETUP, "close", name]


def loops_argv(image: Path) -> list[str]:
    return ["losetup", "--noheadings", "--output", "NAME", "--associated", str(image)]


def detach_argv(loop: str) -> list[str]:
    return ["losetup", "--detach", loop]


# Running them --------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str = ""
    stderr: str = ""


class CommandRunner(Protocol):
    def __call__(self, argv: Sequence[str], *, stdin: bytes | None = None) -> CommandResult: ...


def run_command(argv: Sequence[str], *, stdin: bytes | None = None) -> CommandResult:
    """Runs a command; `stdin` (a key) goes through a pipe, never argv or the environment."""
    try:
        done = subprocess.run(
            list(argv),
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise VolumeError(f"{argv[0]} did not finish within {COMMAND_TIMEOUT_S:.0f} s") from e
    return CommandResult(
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )


def create_image(image: Path, size_bytes: int) -> None:
    """A sparse file of `size_bytes`, readable by root only; it must not exist yet."""
    image.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, size_bytes)
    finally:
        os.close(fd)


class Luks2:
    """Opens, mounts, unmounts and closes LUKS2 images of one agent."""

    def __init__(
        self,
        agent_id: str,
        runner: CommandRunner = run_command,
        *,
        mapper_dir: Path = MAPPER_DIR,
        read_mounts: Callable[[], list[mountinfo.MountEntry]] = mountinfo.read,
    ) -> None:
        self.agent_id = agent_id
        self._run = runner
        self._mapper_dir = mapper_dir
        self._read_mounts = read_mounts

    def name(self, realm: str, volume: str) -> str:
        return mapper_name(self.agent_id, realm, volume)

    def format(self, image: Path, key: bytes, size_bytes: int) -> None:
        """A new image at `image` (which must not exist), LUKS2-formatted with `key`."""
        if size_bytes < MIN_SIZE_BYTES:
            raise VolumeError(
                f"a LUKS2 image needs at least {MIN_SIZE_BYTES // 2**20} MiB, got "
                f"{size_bytes} bytes",
                remedy="give the volume a larger size: in the config",
            )
        create_image(image, size_bytes)
        try:
            self._check(format_argv(image), key, f"cannot LUKS2-format {image}")
        except BaseException:
            image.unlink(missing_ok=True)
            raise

    def key_opens(self, image: Path, key: bytes) -> bool:
        """Whether `key` opens `image`; needs no device-mapper and opens nothing."""
        result = self._run(key_check_argv(image), stdin=key)
        if result.returncode == EXIT_WRONG_KEY:
            return False
        if result.returncode != 0:
            raise VolumeError(
                f"cannot read the LUKS2 header of {image} (exit {result.returncode}): "
                f"{result.stderr.strip()}",
                remedy=f"`cryptsetup luksDump {image}` shows whether it is intact",
            )
        return True

    def open(
        self,
        backing: Path,
        name: str,
        plain: Path,
        key: bytes,
        *,
        size_bytes: int,
        owner: tuple[int, int],
        label: str,
    ) -> None:
        """Makes the plaintext of the volume in `backing` reachable at `plain`: creates
        the image on first use; on failure leaves nothing open, mounted or attached."""
        image, new_image = backing / IMAGE, backing / NEW_IMAGE
        new_image.unlink(missing_ok=True)  # half-made by an earlier attempt: no data
        first_use = not image.exists()
        if first_use:
            self.format(new_image, key, size_bytes)
            image_now = new_image
        else:
            image_now = image
            if not self.key_opens(image, key):
                raise VolumeKeyError(
                    f"the key does not open volume {label} (cryptsetup: no key available "
                    "with this passphrase)",
                    remedy="set the volume's key secret back to the value it was created "
                    "with (`ozwald secrets set LOCKER NAME`), then apply again",
                )
        opened = mounted = False
        try:
            self._check(open_argv(image_now, name), key, f"cannot open volume {label}")
            opened = True
            if first_use:
                self._check(mkfs_argv(name), None, f"cannot make a file system on {label}")
            plain.mkdir(parents=True, exist_ok=True, mode=0o755)
            self._check(mount_argv(name, plain), None, f"cannot mount volume {label}")
            mounted = True
            os.chown(plain, *owner)
            if first_use:
                new_image.rename(image)
        except BaseException:
            with contextlib.suppress(VolumeError):
                self.close(plain if mounted else None, name if opened else None, image_now)
            with contextlib.suppress(OSError):
                plain.rmdir()  # made here, never mounted
            if first_use:
                new_image.unlink(missing_ok=True)
            raise

    def close(self, plain: Path | None, name: str | None, image: Path | None) -> None:
        """Unmounts (lazily when busy), removes the mount point, closes the device and
        detaches what is left on the image, in that order; each part only when given."""
        if plain is not None:
            if self._run(unmount_argv(plain)).returncode != 0:
                self._check(unmount_argv(plain, lazy=True), None, f"cannot unmount {plain}")
            with contextlib.suppress(OSError):
                plain.rmdir()
        if name is not None and (self._mapper_dir / name).exists():
            self._check(close_argv(name), None, f"cannot close device {name}")
        if image is not None and image.exists():
            for loop in self._run(loops_argv(image)).stdout.split():
                self._check(detach_argv(loop), None, f"cannot detach {loop} from {image}")

    # Leftovers -------------------------------------------------------------------------

    def mounts_under(self, run: Path) -> list[mountinfo.MountEntry]:
        """This agent's LUKS2 mounts at or below `run`, deepest first."""
        prefix = str(run).rstrip("/") + "/"
        device = f"/dev/mapper/{mapper_prefix(self.agent_id)}"
        found = [
            e
            for e in self._read_mounts()
            if e.source.startswith(device) and e.mount_point.startswith(prefix)
        ]
        return sorted(found, key=lambda e: (-e.mount_point.count("/"), e.mount_point))

    def open_devices(self) -> list[str]:
        """Names of this agent's device-mapper devices that are open."""
        if not self._mapper_dir.is_dir():
            return []
        prefix = mapper_prefix(self.agent_id)
        return sorted(p.name for p in self._mapper_dir.iterdir() if p.name.startswith(prefix))

    def close_leftovers(
        self, keep: Iterable[str], backings: Iterable[tuple[str, Path]]
    ) -> list[str]:
        """Closes this agent's devices not in `keep`; for each (mapper name, backing dir)
        of a LUKS2 volume not kept, detaches loop devices left on its image and removes a
        half-made image. Returns the names it closed."""
        kept = set(keep)
        closed = []
        for name in self.open_devices():
            if name not in kept:
                self.close(None, name, None)
                closed.append(name)
        for name, backing in backings:
            if name in kept:
                continue
            for image in (backing / IMAGE, backing / NEW_IMAGE):
                self.close(None, None, image)
            (backing / NEW_IMAGE).unlink(missing_ok=True)
        return closed

    def _check(self, argv: list[str], key: bytes | None, what: str) -> None:
        result = self._run(argv, stdin=key)
        if result.returncode != 0:
            raise VolumeError(
                f"{what}: {argv[0]} {argv[1]} failed (exit {result.returncode}): "
                f"{result.stderr.strip() or '(no message)'}",
                remedy="see the agent's log; `cryptsetup status` and `findmnt` show the state",
            )

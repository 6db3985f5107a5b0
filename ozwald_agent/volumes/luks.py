"""The LUKS2 backend: an encrypted file system image opened through cryptsetup.

It needs the kernel's device-mapper (`/dev/mapper/control`) and the `cryptsetup` program.
Where either is missing (containers without device-mapper, hosts without the package),
`unavailable_reason()` says so and admission refuses a service that asks for LUKS2 with
VOLUME_BACKEND_UNAVAILABLE: nothing is faked. The command lines are built here (and unit
tested); the key reaches cryptsetup on stdin (`--key-file -`), never as an argument.

Life cycle of a LUKS2 volume (image at `BACKING/luks2.img`, size from the config):
`truncate -s SIZE` + `cryptsetup luksFormat` + `cryptsetup open` + `mkfs.ext4` the first
time; then `cryptsetup open` + `mount` before a container, `umount` + `cryptsetup close`
after the last one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CRYPTSETUP = "cryptsetup"
MAPPER_CONTROL = Path("/dev/mapper/control")
PROC_MISC = Path("/proc/misc")


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
    if shutil.which(CRYPTSETUP) is None:
        return "cryptsetup is not installed (Debian: apt-get install cryptsetup-bin)"
    return None


def _misc_registers_device_mapper(proc_misc: Path) -> bool:
    try:
        lines = proc_misc.read_text().splitlines()
    except OSError:
        return False
    return any(line.split()[1:] == ["device-mapper"] for line in lines)


def mapper_name(agent_id: str, realm: str, volume: str) -> str:
    """The device-mapper name: unique per agent, realm and volume."""
    return f"ozwald-{agent_id[:12]}-{realm}-{volume}"


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


def open_argv(image: Path, name: str, *, read_only: bool = False) -> list[str]:
    argv = [CRYPTSETUP, "open", "--type", "luks2", "--key-file", "-"]
    if read_only:
        argv.append("--readonly")
    return [*argv, str(image), name]


def mkfs_argv(name: str) -> list[str]:
    return ["mkfs.ext4", "-q", "-m", "0", f"/dev/mapper/{name}"]


def mount_argv(name: str, plain: Path, *, read_only: bool = False) -> list[str]:
    options = "nosuid,nodev" + (",ro" if read_only else "")
    return ["mount", "-o", options, f"/dev/mapper/{name}", str(plain)]


def unmount_argv(plain: Path) -> list[str]:
    return ["umount", str(plain)]


def close_argv(name: str) -> list[str]:
    return [CRYPTSETUP, "close", name]


def create_image_argv(image: Path, size_bytes: int) -> list[str]:
    return ["truncate", "-s", str(size_bytes), str(image)]

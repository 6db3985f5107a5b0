"""LUKS2 with the real cryptsetup, as far as a host without device-mapper allows: format
an image with the key on stdin, read its header, check right and wrong keys, look for
the key in every process's arguments and environment while cryptsetup runs, and see an
open fail without leaving a device, a loop device or a mount point. Opening, mkfs and
mounting are tested as command lines only (tests/unit/volumes/test_luks2_backend.py)."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from ozwald_agent.volumes import luks
from ozwald_agent.volumes.errors import VolumeError


@pytest.fixture(autouse=True)
def _cryptsetup() -> None:
    # .ci/run installs it: missing here is a broken set-up, not a reason to prove nothing.
    if shutil.which("cryptsetup") is None:
        pytest.fail("cryptsetup is not installed: apt-get install -y cryptsetup-bin")


AGENT = "luks2test0000000"
SIZE = 40 * 2**20


class WatchingRunner:
    """Runs each command for real while scanning every process's argv and environment
    for the key; counts the scans that saw the command running, so the check cannot
    pass by never looking."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.seen_running = 0
        self.leaks: list[str] = []

    def __call__(self, argv: Sequence[str], *, stdin: bytes | None = None) -> luks.CommandResult:
        result: list[luks.CommandResult] = []
        worker = threading.Thread(target=lambda: result.append(luks.run_command(argv, stdin=stdin)))
        worker.start()
        while worker.is_alive():
            for proc in Path("/proc").glob("[0-9]*"):
                with contextlib.suppress(OSError):
                    cmdline = (proc / "cmdline").read_bytes()
                    if cmdline.startswith(argv[0].encode()) and str(argv[1]).encode() in cmdline:
                        self.seen_running += 1
                    for what in ("cmdline", "environ"):
                        if self.key in (proc / what).read_bytes():
                            self.leaks.append(f"{proc}/{what}")
            worker.join(0.02)
        return result[0]


@pytest.fixture(scope="module", autouse=True)
def no_dangling_control_node() -> Iterator[None]:
    """cryptsetup (libdevmapper) makes /dev/mapper/control even where the kernel has no
    device-mapper; remove it again when it was not there before and cannot be opened."""
    control = luks.MAPPER_CONTROL
    existed = control.exists()
    yield
    if not existed and control.exists() and luks._cannot_open(control) is not None:
        control.unlink()
        with contextlib.suppress(OSError):
            control.parent.rmdir()


@pytest.fixture(scope="module")
def key() -> bytes:
    return secrets.token_hex(32).encode()


@pytest.fixture(scope="module")
def formatted(
    tmp_path_factory: pytest.TempPathFactory, key: bytes
) -> Iterator[tuple[Path, WatchingRunner]]:
    """One image for the module: luksFormat costs seconds (argon2id)."""
    image = tmp_path_factory.mktemp("luks2") / luks.IMAGE
    runner = WatchingRunner(key)
    luks.Luks2(AGENT, runner).format(image, key, SIZE)
    yield image, runner
    image.unlink()


def test_the_key_reaches_cryptsetup_only_on_stdin(formatted: tuple[Path, WatchingRunner]) -> None:
    _, runner = formatted
    assert runner.seen_running > 0, "cryptsetup was never seen running"
    assert runner.leaks == []


def test_the_image_is_a_sparse_luks2_volume_without_the_key_in_it(
    formatted: tuple[Path, WatchingRunner], key: bytes
) -> None:
    image, _ = formatted
    dump = subprocess.run(
        ["cryptsetup", "luksDump", str(image)], capture_output=True, text=True, check=True
    ).stdout
    assert dump.startswith("LUKS header information")
    assert "Version:       \t2" in dump and "PBKDF:      argon2id" in dump
    assert image.stat().st_size == SIZE and image.stat().st_blocks * 512 < SIZE
    assert image.stat().st_mode & 0o777 == 0o600
    content = image.read_bytes()
    assert key not in content and key.decode().upper().encode() not in content


def test_the_right_key_opens_the_header_and_a_wrong_one_does_not(
    formatted: tuple[Path, WatchingRunner], key: bytes
) -> None:
    image, _ = formatted
    backend = luks.Luks2(AGENT)
    assert backend.key_opens(image, key)
    assert not backend.key_opens(image, key[:-1] + b"x")
    # Every byte on stdin is key: a trailing newline makes another key.
    assert not backend.key_opens(image, key + b"\n")


def test_a_damaged_header_is_an_error_not_a_wrong_key(tmp_path: Path) -> None:
    image = tmp_path / luks.IMAGE
    image.write_bytes(b"\0" * 4096)
    with pytest.raises(VolumeError, match="cannot read the LUKS2 header"):
        luks.Luks2(AGENT).key_opens(image, b"k")


@pytest.mark.skipif(
    luks.unavailable_reason() is None, reason="this host has device-mapper: open would work"
)
def test_where_device_mapper_is_missing_an_open_fails_and_leaves_nothing(
    formatted: tuple[Path, WatchingRunner], key: bytes, tmp_path: Path
) -> None:
    image, _ = formatted
    backing = tmp_path / "backing"
    backing.mkdir()
    (backing / luks.IMAGE).symlink_to(image)
    plain = tmp_path / "run" / "working"
    name = luks.mapper_name(AGENT, "shop", "data")
    with pytest.raises(
        VolumeError, match=r"(?s)cannot open volume shop/data: cryptsetup open failed.*dm_mod"
    ):
        luks.Luks2(AGENT).open(
            backing, name, plain, key, size_bytes=SIZE, owner=(0, 0), label="shop/data"
        )
    assert not plain.exists()
    assert not (luks.MAPPER_DIR / name).exists()
    loops = subprocess.run(
        luks.loops_argv(image), capture_output=True, text=True, check=False
    ).stdout
    assert loops.strip() == ""

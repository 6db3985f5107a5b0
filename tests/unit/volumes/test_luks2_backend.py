"""The LUKS2 backend without device-mapper: the exact commands it runs, in which order,
with the key only ever on stdin, and what it leaves behind; recorded by a fake runner
that plays cryptsetup's part (a device appears in the mapper dir on open, goes on close)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.secrets.vault import Vault
from ozwald_agent.volumes import luks, mountinfo
from ozwald_agent.volumes.errors import VolumeError, VolumeKeyError
from ozwald_agent.volumes.gate import VolumesGate
from ozwald_agent.volumes.mounts import Layout, VolumeMounts
from ozwald_sdk.config import load_config
from tests.unit.config.support import position, rendered

AGENT = "abcdef0123456789"
NAME = "ozwald-abcdef012345-shop-data"
KEY = b"0123456789abcdef-the-volume-key"
SIZE = 64 * 2**20
OWNER = (os.getuid(), os.getgid())

Call = tuple[list[str], bytes | None]


class RecordingRunner:
    """Records every command; answers with `failures[argv[:2]]` (or 0), and keeps the
    mapper dir as cryptsetup would."""

    def __init__(self, mapper_dir: Path) -> None:
        self.mapper_dir = mapper_dir
        self.calls: list[Call] = []
        self.failures: dict[tuple[str, ...], luks.CommandResult] = {}
        self.loops = ""

    def __call__(self, argv: Sequence[str], *, stdin: bytes | None = None) -> luks.CommandResult:
        argv = list(argv)
        self.calls.append((argv, stdin))
        failed = self.failures.get(tuple(argv[:2])) or self.failures.get(tuple(argv[:3]))
        if failed is not None:
            return failed
        if argv[:2] == ["cryptsetup", "open"] and "--test-passphrase" not in argv:
            (self.mapper_dir / argv[-1]).touch()
        if argv[:2] == ["cryptsetup", "close"]:
            (self.mapper_dir / argv[-1]).unlink()
        if argv[:2] == ["losetup", "--noheadings"]:
            return luks.CommandResult(0, stdout=self.loops)
        return luks.CommandResult(0)

    def argvs(self) -> list[list[str]]:
        return [argv for argv, _ in self.calls]

    def keyed(self) -> list[str]:
        """The commands that got the key (on stdin), as `tool verb`."""
        return [" ".join(argv[:2]) for argv, stdin in self.calls if stdin == KEY]


class Host:
    def __init__(self, tmp_path: Path, mounted: list[mountinfo.MountEntry]) -> None:
        self.layout = Layout(tmp_path / "state", tmp_path / "run" / AGENT)
        mapper = tmp_path / "mapper"
        mapper.mkdir()
        self.runner = RecordingRunner(mapper)
        self.mounted = mounted
        self.luks = luks.Luks2(
            AGENT, self.runner, mapper_dir=mapper, read_mounts=lambda: list(self.mounted)
        )
        self.mounts = VolumeMounts(self.layout, luks2=self.luks, unavailable=lambda b: None)
        self.mounts.skip_sweep()
        self.keys_read = 0

    @property
    def plain(self) -> Path:
        return self.layout.plain("shop", "data")

    @property
    def image(self) -> Path:
        return self.layout.backing("shop", "data") / luks.IMAGE

    def read_key(self, realm: str, service: str, volume: object) -> bytes:
        self.keys_read += 1
        return KEY

    def acquire(self, container: str, kind: int = service_spec_pb2.VOLUME_KIND_ENCRYPTED) -> Path:
        plains = self.mounts.acquire(container, _spec(kind), *OWNER, self.read_key)
        return plains[0]


def _spec(kind: int, size: int = SIZE) -> service_spec_pb2.ServiceSpec:
    return service_spec_pb2.ServiceSpec(
        realm="shop",
        name="app",
        image="x",
        volumes=[
            service_spec_pb2.VolumeMount(
                kind=kind,  # type: ignore[arg-type]
                target="/data",
                encrypted=service_spec_pb2.EncryptedVolume(
                    volume="data",
                    backend=service_spec_pb2.ENCRYPTION_BACKEND_LUKS2,
                    key_locker="disk",
                    key_name="k",
                    size_bytes=size,
                ),
            )
        ],
    )


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path, [])


def test_first_use_formats_opens_makes_a_file_system_and_mounts_with_the_key_on_stdin(
    host: Host,
) -> None:
    plain = host.acquire("shop-app")
    new = str(host.image.with_name(luks.NEW_IMAGE))
    assert host.runner.argvs() == [
        ["cryptsetup", "luksFormat", "--type", "luks2", "--batch-mode", "--key-file", "-", new],
        ["cryptsetup", "open", "--type", "luks2", "--key-file", "-", new, NAME],
        ["mkfs.ext4", "-q", "-m", "0", f"/dev/mapper/{NAME}"],
        ["mount", "-o", "nosuid,nodev", f"/dev/mapper/{NAME}", str(plain)],
    ]
    assert host.runner.keyed() == ["cryptsetup luksFormat", "cryptsetup open"]
    assert not any(KEY.decode() in " ".join(argv) for argv in host.runner.argvs())
    # Renamed into place only once it holds a file system; sparse, root's alone.
    assert not host.image.with_name(luks.NEW_IMAGE).exists()
    stat = host.image.stat()
    assert (stat.st_size, stat.st_blocks, stat.st_mode & 0o777) == (SIZE, 0, 0o600)
    assert plain.is_dir() and (plain.stat().st_uid, plain.stat().st_gid) == OWNER


def test_later_uses_check_the_key_first_share_the_mount_and_tear_down_after_the_last(
    host: Host,
) -> None:
    host.luks.format(host.image, KEY, SIZE)
    host.runner.calls.clear()
    plain = host.acquire("shop-app")
    assert host.acquire("shop-other") == plain
    image = str(host.image)
    assert host.runner.argvs() == [
        ["cryptsetup", "open", "--test-passphrase", "--type", "luks2", "--key-file", "-", image],
        ["cryptsetup", "open", "--type", "luks2", "--key-file", "-", image, NAME],
        ["mount", "-o", "nosuid,nodev", f"/dev/mapper/{NAME}", str(plain)],
    ]
    assert host.keys_read == 1

    host.runner.calls.clear()
    assert host.mounts.release("shop-app") == []
    assert host.runner.calls == []
    host.runner.loops = "/dev/loop7\n"  # not cleared by the close: detached explicitly
    assert host.mounts.release("shop-other") == [plain]
    assert host.runner.argvs() == [
        ["umount", str(plain)],
        ["cryptsetup", "close", NAME],
        ["losetup", "--noheadings", "--output", "NAME", "--associated", image],
        ["losetup", "--detach", "/dev/loop7"],
    ]
    assert not plain.exists() and not (host.runner.mapper_dir / NAME).exists()
    assert host.mounts.users() == {}


def test_a_busy_mount_is_unmounted_lazily(host: Host) -> None:
    host.luks.format(host.image, KEY, SIZE)
    plain = host.acquire("shop-app")
    host.runner.calls.clear()
    host.runner.failures[("umount", str(plain))] = luks.CommandResult(32, stderr="busy")
    host.mounts.release("shop-app")
    assert host.runner.argvs()[:3] == [
        ["umount", str(plain)],
        ["umount", "--lazy", str(plain)],
        ["cryptsetup", "close", NAME],
    ]


def test_a_wrong_key_refuses_before_anything_is_opened(host: Host) -> None:
    host.luks.format(host.image, KEY, SIZE)
    host.runner.calls.clear()
    host.runner.failures[("cryptsetup", "open", "--test-passphrase")] = luks.CommandResult(
        luks.EXIT_WRONG_KEY, stderr="No key available with this passphrase."
    )
    with pytest.raises(VolumeKeyError, match="the key does not open volume shop/data"):
        host.acquire("shop-app")
    assert [argv[:3] for argv in host.runner.argvs()] == [
        ["cryptsetup", "open", "--test-passphrase"]
    ]
    assert not host.plain.exists() and list(host.runner.mapper_dir.iterdir()) == []
    assert host.image.exists()  # the data is not touched


def test_a_failed_first_mount_closes_the_device_and_leaves_no_image(host: Host) -> None:
    host.runner.failures[("mount", "-o")] = luks.CommandResult(32, stderr="wrong fs type")
    with pytest.raises(VolumeError, match=r"cannot mount volume shop/data.*wrong fs type"):
        host.acquire("shop-app")
    new = host.image.with_name(luks.NEW_IMAGE)
    assert host.runner.argvs()[-3:] == [
        ["mount", "-o", "nosuid,nodev", f"/dev/mapper/{NAME}", str(host.plain)],
        ["cryptsetup", "close", NAME],
        ["losetup", "--noheadings", "--output", "NAME", "--associated", str(new)],
    ]
    assert not new.exists() and not host.image.exists() and not host.plain.exists()
    assert list(host.runner.mapper_dir.iterdir()) == [] and host.mounts.users() == {}


@pytest.mark.parametrize(
    "kind", [service_spec_pb2.VOLUME_KIND_VERSIONED, service_spec_pb2.VOLUME_KIND_ENCRYPTED_TMP]
)
def test_luks2_is_only_for_persistent_encrypted_volumes(host: Host, kind: int) -> None:
    with pytest.raises(VolumeError, match="supports only type encrypted"):
        host.acquire("shop-app", kind)
    assert host.runner.calls == [] and host.keys_read == 0


def test_an_image_below_the_header_size_is_refused(host: Host) -> None:
    with pytest.raises(VolumeError, match="at least 32 MiB"):
        host.luks.format(host.image, KEY, 16 * 2**20)
    assert host.runner.calls == [] and not host.image.exists()


def _mount(point: Path, device: str) -> mountinfo.MountEntry:
    return mountinfo.MountEntry(1, str(point), "ext4", f"/dev/mapper/{device}")


def test_the_sweep_adopts_bound_mounts_and_closes_every_other_device_of_this_agent(
    tmp_path: Path,
) -> None:
    host = Host(tmp_path, [])
    layout = host.layout
    used, left = layout.plain("shop", "data"), layout.plain("shop", "logs")
    used_name, left_name = NAME, "ozwald-abcdef012345-shop-logs"
    stale = "ozwald-abcdef012345-shop-gone"  # opened, never mounted
    foreign = "ozwald-999999999999-shop-data"  # another agent's
    for point in (used, left):
        point.mkdir(parents=True)
    for device in (used_name, left_name, stale, foreign):
        (host.runner.mapper_dir / device).touch()
    host.mounted = [
        _mount(used, used_name),
        _mount(left, left_name),
        _mount(tmp_path / "elsewhere", "ozwald-abcdef012345-x-y"),
    ]
    half_made = layout.backing("shop", "half") / luks.NEW_IMAGE
    half_made.parent.mkdir(parents=True)
    half_made.touch()

    assert host.mounts.sweep({"shop-app": [str(used)], "shop-old": []}) == [left]
    assert host.mounts.users() == {used: frozenset({"shop-app"})}
    assert ["umount", str(left)] in host.runner.argvs()
    closed = [argv[2] for argv in host.runner.argvs() if argv[:2] == ["cryptsetup", "close"]]
    assert sorted(closed) == sorted([left_name, stale])
    assert sorted(p.name for p in host.runner.mapper_dir.iterdir()) == [foreign, used_name]
    assert not half_made.exists() and not left.exists()

    # The adopted volume is torn down when its container goes.
    host.mounted = [_mount(used, used_name)]
    host.runner.calls.clear()
    assert host.mounts.release("shop-app") == [used]
    assert host.runner.argvs()[:2] == [["umount", str(used)], ["cryptsetup", "close", NAME]]


def test_a_leftover_mount_is_never_reused_for_a_new_container(tmp_path: Path) -> None:
    host = Host(tmp_path, [])
    host.luks.format(host.image, KEY, SIZE)
    host.plain.mkdir(parents=True)
    (host.runner.mapper_dir / NAME).touch()
    host.mounted = [_mount(host.plain, NAME)]
    host.runner.calls.clear()
    host.acquire("shop-app")
    assert host.runner.argvs()[:3] == [
        ["umount", str(host.plain)],
        ["cryptsetup", "close", NAME],
        [
            "cryptsetup",
            "open",
            "--test-passphrase",
            "--type",
            "luks2",
            "--key-file",
            "-",
            str(host.image),
        ],
    ]


def test_a_control_node_without_a_driver_is_no_device_mapper(tmp_path: Path) -> None:
    # What libdevmapper leaves on a host without dm_mod: a node that cannot be opened.
    node = tmp_path / "control"
    node.mkdir()
    reason = luks.unavailable_reason(node, tmp_path / "misc")
    assert reason is not None and reason.startswith("device-mapper unavailable: ")
    assert "exists but cannot be opened" in reason


@pytest.fixture
def gate(tmp_path: Path) -> VolumesGate:
    vault = Vault(tmp_path / "vault.db")
    vault.unlock(b"passphrase", create=True)
    vault.set("shop", "disk", {"k": b"key"})
    return VolumesGate(
        vault, VolumeMounts(Layout(tmp_path / "s", tmp_path / "r")), unavailable=lambda b: None
    )


def _refused(gate: VolumesGate, spec: service_spec_pb2.ServiceSpec) -> list[plan_pb2.Refusal]:
    (stamped,) = gate.stamp([spec])
    plan = plan_pb2.Plan(admitted=True)
    plan.actions.add(realm="shop", name="app", kind=plan_pb2.ACTION_KIND_START).spec.CopyFrom(
        stamped
    )
    gate.refuse(plan)
    return list(plan.refusals)


def test_admission_refuses_luks2_specs_that_config_validation_would_have_caught(
    gate: VolumesGate,
) -> None:
    assert _refused(gate, _spec(service_spec_pb2.VOLUME_KIND_ENCRYPTED)) == []
    (versioned,) = _refused(gate, _spec(service_spec_pb2.VOLUME_KIND_VERSIONED))
    assert versioned.reason == plan_pb2.REFUSAL_REASON_INVALID_SPEC
    assert "supports only volumes of type encrypted" in versioned.message
    (sizeless,) = _refused(gate, _spec(service_spec_pb2.VOLUME_KIND_ENCRYPTED, size=0))
    assert sizeless.reason == plan_pb2.REFUSAL_REASON_INVALID_SPEC
    assert "at least 32 MiB (got 0 bytes)" in sizeless.message and sizeless.subject == "data"


def test_config_refuses_luks2_where_it_cannot_serve_each_located(tmp_path: Path) -> None:
    path = tmp_path / "ozwald.yml"
    path.write_text(
        """\
version: 1
realms:
  shop:
    vault: {lockers: [disk]}
    volumes:
      scratch: {type: encrypted-tmp, backend: luks2}
      models: {type: versioned, backend: luks2, key: {locker: disk, name: k}}
      tiny: {type: encrypted, backend: luks2, key: {locker: disk, name: k}, size: 16MiB}
      data: {type: encrypted, backend: luks2, key: {locker: disk, name: k}, size: 1GiB}
"""
    )
    assert rendered(path) == [
        f"{position(path, 'luks2')}: realms.shop.volumes.scratch.backend: volume 'scratch' is "
        "of type encrypted-tmp, which the luks2 backend does not support (only type "
        "encrypted): use backend: gocryptfs",
        f"{position(path, 'luks2', 2)}: realms.shop.volumes.models.backend: volume 'models' is "
        "of type versioned, which the luks2 backend does not support (only type encrypted): "
        "use backend: gocryptfs",
        f"{position(path, '16MiB')}: realms.shop.volumes.tiny.size: volume 'tiny' uses backend "
        "luks2, whose header alone takes 16MiB: give it a size of at least 32MiB",
    ]
    valid = path.read_text().splitlines()
    path.write_text("\n".join([*valid[:5], valid[-1]]) + "\n")
    assert load_config(path).model.realms["shop"].volumes["data"].type == "encrypted"

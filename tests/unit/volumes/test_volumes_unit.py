"""Encrypted volumes without Docker: mountinfo, command lines, keys, LUKS detection,
admission refusals, versions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.secrets.vault import Vault
from ozwald_agent.volumes import gocryptfs, luks, mountinfo, versions
from ozwald_agent.volumes.errors import VolumeKeyError
from ozwald_agent.volumes.gate import VolumesGate
from ozwald_agent.volumes.mounts import Layout, VolumeMounts

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
48 22 0:50 / /run/oz/volumes/a1/shop/data/working rw,nosuid,nodev,relatime shared:30 - \
fuse.gocryptfs ozwald-volume:shop/data rw,user_id=0,group_id=0,allow_other
49 22 0:51 / /run/oz/volumes/a1/shop/my\\040dir/working rw - fuse.gocryptfs /x rw
50 22 0:52 / /run/oz/volumes/a1/.tmp/c/scratch rw - fuse.gocryptfs ozwald-volume:t rw
51 22 0:53 / /run/oz/volumes/a2/shop/data/working rw - fuse.gocryptfs other-agent rw
52 22 0:54 / /run/oz/volumes/a1/shop/nfs rw - nfs server:/x rw
"""


def test_mountinfo_finds_this_agents_gocryptfs_mounts_only_deepest_first() -> None:
    entries = mountinfo.parse(MOUNTINFO.splitlines())
    found = mountinfo.gocryptfs_mounts_under(Path("/run/oz/volumes/a1"), entries)
    assert [e.mount_point for e in found] == [
        "/run/oz/volumes/a1/.tmp/c/scratch",
        "/run/oz/volumes/a1/shop/data/working",
        "/run/oz/volumes/a1/shop/my dir/working",
    ]
    assert found[1].source == "ozwald-volume:shop/data"
    assert found[1].mount_id == 48


def test_gocryptfs_command_lines_never_carry_the_key() -> None:
    argv = gocryptfs.mount_argv(Path("/c"), Path("/p"), label="shop/data", read_only=True)
    assert argv == [
        "gocryptfs",
        "-q",
        "-nosyslog",
        "-allow_other",
        "-fsname",
        "ozwald-volume:shop/data",
        "-ro",
        "--",
        "/c",
        "/p",
    ]
    assert "-passfile" not in argv and "-extpass" not in argv
    assert gocryptfs.init_argv(Path("/c"), fast_kdf=True) == [
        "gocryptfs",
        "-init",
        "-q",
        "-scryptn",
        "10",
        "--",
        "/c",
    ]
    assert gocryptfs.unmount_argv(Path("/p"), lazy=True)[1:] == ["-u", "-z", "/p"]


@pytest.mark.parametrize("bad", [b"", b"\n", b"two\nlines", b"x" * 2049])
def test_a_key_that_gocryptfs_would_truncate_is_refused(bad: bytes) -> None:
    with pytest.raises(VolumeKeyError) as refused:
        gocryptfs.check_key(bad)
    if bad.strip():
        assert bad.decode() not in str(refused.value)


def test_a_trailing_newline_of_a_key_is_not_part_of_it() -> None:
    assert gocryptfs.check_key(b"abc\r\n") == b"abc"


def test_luks_on_a_host_without_device_mapper_says_so(tmp_path: Path) -> None:
    misc = tmp_path / "misc"
    misc.write_text(" 63 device-mapper\n229 fuse\n")
    reason = luks.unavailable_reason(tmp_path / "no-control", misc)
    assert reason is not None and reason.startswith("device-mapper unavailable: ")
    assert "cannot reach it" in reason
    misc.write_text("229 fuse\n")
    assert "load the dm_mod" in (luks.unavailable_reason(tmp_path / "no-control", misc) or "")


def test_luks_on_this_host() -> None:
    reason = luks.unavailable_reason()
    if Path("/dev/mapper/control").exists():
        pytest.skip("this host has device-mapper")
    assert reason is not None and reason.startswith("device-mapper unavailable")


def test_luks_command_lines_read_the_key_from_stdin() -> None:
    image, name = Path("/s/luks2.img"), luks.mapper_name("abcdef0123456789", "shop", "data")
    assert name == "ozwald-abcdef012345-shop-data"
    assert luks.format_argv(image) == [
        "cryptsetup",
        "luksFormat",
        "--type",
        "luks2",
        "--batch-mode",
        "--key-file",
        "-",
        "/s/luks2.img",
    ]
    assert luks.open_argv(image, name, read_only=True) == [
        "cryptsetup",
        "open",
        "--type",
        "luks2",
        "--key-file",
        "-",
        "--readonly",
        "/s/luks2.img",
        name,
    ]
    assert luks.mount_argv(name, Path("/p")) == [
        "mount",
        "-o",
        "nosuid,nodev",
        f"/dev/mapper/{name}",
        "/p",
    ]
    assert luks.close_argv(name) == ["cryptsetup", "close", name]


def test_a_version_is_read_only_and_its_hash_covers_its_ciphertext(tmp_path: Path) -> None:
    cipher = tmp_path / "cipher"
    (cipher / "d").mkdir(parents=True)
    (cipher / "gocryptfs.conf").write_text("{}")
    (cipher / "d" / "f").write_bytes(b"ciphertext")
    v1 = versions.snapshot(cipher, tmp_path / "versions")
    (cipher / "d" / "f").write_bytes(b"changed")
    v2 = versions.snapshot(cipher, tmp_path / "versions")
    assert (v1.number, v2.number) == (1, 2)
    assert v1.content_sha256 != v2.content_sha256
    stored = tmp_path / "versions" / "1"
    assert versions.content_hash(stored / "cipher")[0] == v1.content_sha256
    assert not os.stat(stored / "cipher" / "d" / "f").st_mode & 0o222
    assert not os.stat(stored / "cipher" / "d").st_mode & 0o222
    assert [v.number for v in versions.read(tmp_path / "versions")] == [1, 2]


def _spec(kind: int, backend: int, **encrypted: object) -> service_spec_pb2.ServiceSpec:
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
                    backend=backend,  # type: ignore[arg-type]
                    **encrypted,  # type: ignore[arg-type]
                ),
            )
        ],
    )


def _refusals(gate: VolumesGate, spec: service_spec_pb2.ServiceSpec) -> list[plan_pb2.Refusal]:
    (stamped,) = gate.stamp([spec])
    result = plan_pb2.Plan(admitted=True)
    result.actions.add(realm="shop", name="app", kind=plan_pb2.ACTION_KIND_START).spec.CopyFrom(
        stamped
    )
    gate.refuse(result)
    assert result.admitted == (not result.refusals)
    return list(result.refusals)


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault(tmp_path / "vault.db")


def test_admission_refuses_luks2_without_device_mapper_and_missing_keys(
    vault: Vault, tmp_path: Path
) -> None:
    mounts = VolumeMounts(Layout(tmp_path / "state", tmp_path / "run"))
    gate = VolumesGate(
        vault, mounts, unavailable=lambda b: "device-mapper unavailable: test" if b == 2 else None
    )
    luks2 = _spec(service_spec_pb2.VOLUME_KIND_ENCRYPTED, 2, key_locker="disk", key_name="k")
    (refused,) = _refusals(gate, luks2)
    assert refused.reason == plan_pb2.REFUSAL_REASON_VOLUME_BACKEND_UNAVAILABLE
    assert "device-mapper unavailable" in refused.message and refused.subject == "data"

    missing = _spec(service_spec_pb2.VOLUME_KIND_ENCRYPTED, 1, key_locker="disk", key_name="k")
    (refused,) = _refusals(gate, missing)
    assert refused.reason == plan_pb2.REFUSAL_REASON_LOCKER_MISSING

    vault.unlock(b"passphrase", create=True)
    vault.set("shop", "disk", {"other": b"v"})
    (refused,) = _refusals(gate, missing)
    assert refused.reason == plan_pb2.REFUSAL_REASON_VOLUME_KEY_MISSING

    vault.set("shop", "disk", {"k": b"secret-key-value"})
    assert _refusals(gate, missing) == []
    vault.lock()
    (refused,) = _refusals(gate, missing)
    assert refused.reason == plan_pb2.REFUSAL_REASON_VAULT_LOCKED
    assert "secret-key-value" not in str(refused)


def test_admission_pins_the_newest_version_and_refuses_a_missing_one(
    vault: Vault, tmp_path: Path
) -> None:
    vault.unlock(b"passphrase", create=True)
    vault.set("shop", "disk", {"k": b"secret"})
    layout = Layout(tmp_path / "state", tmp_path / "run")
    gate = VolumesGate(vault, VolumeMounts(layout), unavailable=lambda b: None)
    newest = _spec(service_spec_pb2.VOLUME_KIND_VERSIONED, 1, key_locker="disk", key_name="k")
    (refused,) = _refusals(gate, newest)
    assert refused.reason == plan_pb2.REFUSAL_REASON_VOLUME_VERSION_MISSING

    cipher = layout.cipher("shop", "data")
    cipher.mkdir(parents=True)
    (cipher / "gocryptfs.conf").write_text("{}")
    versions.snapshot(cipher, layout.versions("shop", "data"))
    assert _refusals(gate, newest) == []
    (stamped,) = gate.stamp([newest])
    assert stamped.volumes[0].encrypted.resolved_version == 1
    assert stamped.volumes[0].encrypted.key_revision > 0
    pinned = _spec(
        service_spec_pb2.VOLUME_KIND_VERSIONED, 1, key_locker="disk", key_name="k", version=7
    )
    (refused,) = _refusals(gate, pinned)
    assert "version 7" in refused.message

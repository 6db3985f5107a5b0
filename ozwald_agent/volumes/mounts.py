"""Which encrypted volumes are mounted, for which containers; mounting and unmounting.

Layout (`state` is `STATE_DIR/volumes`, `run` is `--volumes-dir/<agent id>`):

- ciphertext of a volume (its working copy, when versioned): `state/<realm>/<volume>/cipher`
- version n: `state/<realm>/<volume>/versions/<n>/cipher` and `.../manifest.json`
- ciphertext of an encrypted-tmp volume: `state/.tmp/<container>/<volume>/cipher`
- plaintext of a volume: `run/<realm>/<volume>/working`; of version n: `.../v<n>`
- plaintext of an encrypted-tmp volume: `run/.tmp/<container>/<volume>`

A mount point has users (container names). A volume is mounted when its first user is
created and unmounted, and its mount point removed, after its last user is removed: a
container can then never bind the empty directory by mistake (Docker refuses a missing
bind source). `sweep` (agent start and stop) unmounts every gocryptfs mount under `run`
that no existing container of this agent binds, and adopts the others.

LUKS2 (`luks.py`): the image of a volume is `state/<realm>/<volume>/luks2.img`, opened as
device `ozwald-<agent id>-<realm>-<volume>` and mounted at the same plaintext mount point;
only `encrypted` volumes. The sweep handles its mounts like gocryptfs ones, then closes
this agent's devices that no adopted mount uses.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.volumes import gocryptfs, luks, mountinfo, versions
from ozwald_agent.volumes.errors import BackendUnavailableError, VolumeError, VolumeNotFoundError

logger = logging.getLogger(__name__)

ENCRYPTED_KINDS = frozenset(
    {
        service_spec_pb2.VOLUME_KIND_ENCRYPTED,
        service_spec_pb2.VOLUME_KIND_ENCRYPTED_TMP,
        service_spec_pb2.VOLUME_KIND_VERSIONED,
    }
)
TMP = ".tmp"
SWEEP_WAIT_S = 60.0
LOGS = ".logs"

KeyReader = Callable[[str, str, service_spec_pb2.EncryptedVolume], bytes]
"""(realm, service, volume) -> the key bytes; raises VolumeKeyError."""
Unavailable = Callable[[service_spec_pb2.EncryptionBackend.ValueType], str | None]
LUKS2 = service_spec_pb2.ENCRYPTION_BACKEND_LUKS2


def is_encrypted(mount: service_spec_pb2.VolumeMount) -> bool:
    return mount.kind in ENCRYPTED_KINDS


def backend_unavailable_reason(backend: service_spec_pb2.EncryptionBackend.ValueType) -> str | None:
    if backend == service_spec_pb2.ENCRYPTION_BACKEND_LUKS2:
        return luks.unavailable_reason()
    if backend == service_spec_pb2.ENCRYPTION_BACKEND_GOCRYPTFS:
        return gocryptfs.unavailable_reason()
    return "no encryption backend is set (gocryptfs or luks2)"


@dataclass(frozen=True)
class Layout:
    state: Path
    run: Path

    def backing(self, realm: str, volume: str) -> Path:
        return self.state / realm / volume

    def cipher(self, realm: str, volume: str) -> Path:
        return self.backing(realm, volume) / "cipher"

    def versions(self, realm: str, volume: str) -> Path:
        return self.backing(realm, volume) / "versions"

    def plain(self, realm: str, volume: str) -> Path:
        return self.run / realm / volume / "working"

    def version_plain(self, realm: str, volume: str, number: int) -> Path:
        return self.run / realm / volume / f"v{number}"

    def tmp_backing(self, container: str, volume: str) -> Path:
        return self.state / TMP / container / volume

    def tmp_plain(self, container: str, volume: str) -> Path:
        return self.run / TMP / container / volume

    @property
    def agent_id(self) -> str:
        return self.run.name

    def log(self, plain: Path) -> Path:
        return self.run / LOGS / (str(plain.relative_to(self.run)).replace("/", "_") + ".log")


@dataclass(frozen=True)
class _Where:
    plain: Path
    cipher: Path
    label: str
    tmp_backing: Path | None
    read_only: bool


class VolumeMounts:
    """Thread-safe: create and remove run on the reconciler's worker threads."""

    def __init__(
        self,
        layout: Layout,
        *,
        luks2: luks.Luks2 | None = None,
        unavailable: Unavailable = backend_unavailable_reason,
    ) -> None:
        self.layout = layout
        self._luks = luks2 if luks2 is not None else luks.Luks2(layout.agent_id)
        self._unavailable = unavailable
        self._luks_open: dict[Path, str] = {}  # plaintext -> device name, LUKS2 mounts
        self._lock = threading.RLock()
        self._users: dict[Path, set[str]] = {}
        self._tmp: dict[Path, Path] = {}
        self._labels: dict[Path, str] = {}
        self._swept = threading.Event()

    # Containers -------------------------------------------------------------------

    def acquire(
        self,
        container: str,
        spec: service_spec_pb2.ServiceSpec,
        uid: int,
        gid: int,
        read_key: KeyReader,
    ) -> dict[int, Path]:
        """Mounts what the spec's encrypted volumes need; index of the mount -> plaintext.

        On failure nothing this call mounted stays mounted."""
        out: dict[int, Path] = {}
        # Leftovers first: a container created before the start's sweep would adopt one.
        self._swept.wait(SWEEP_WAIT_S)
        with self._lock:
            try:
                for index, mount in enumerate(spec.volumes):
                    if is_encrypted(mount):
                        out[index] = self._acquire_one(container, spec, mount, (uid, gid), read_key)
            except BaseException:
                self.release(container)
                raise
        return out

    def _acquire_one(
        self,
        container: str,
        spec: service_spec_pb2.ServiceSpec,
        mount: service_spec_pb2.VolumeMount,
        owner: tuple[int, int],
        read_key: KeyReader,
    ) -> Path:
        enc = mount.encrypted
        reason = self._unavailable(enc.backend)
        if reason is not None:
            raise BackendUnavailableError(f"volume {spec.realm}/{enc.volume}: {reason}")
        if enc.backend == LUKS2:
            return self._acquire_luks(container, spec, mount, owner, read_key)
        where = self._where(container, spec.realm, mount)
        plain, cipher, tmp_backing = where.plain, where.cipher, where.tmp_backing
        label, read_only = where.label, where.read_only
        if self._users.get(plain):
            self._users[plain].add(container)
            return plain
        if self._is_mounted(plain):
            # Mounted by an agent that died, and adopted by no container: never reused,
            # so that the key is checked again.
            self._unmount(plain)
        if tmp_backing is not None:
            _remove_tree(tmp_backing)
            # A random key that lives only for this call: the ciphertext it leaves (should
            # the wipe after the container fail) can never be opened again.
            key = secrets.token_hex(32).encode()
            gocryptfs.initialise(cipher, key, fast_kdf=True)
        else:
            key = read_key(spec.realm, spec.name, enc)
            if not gocryptfs.is_initialised(cipher):
                gocryptfs.initialise(cipher, key)
                logger.info("created encrypted volume %s", label, extra={"volume": label})
        try:
            gocryptfs.mount(
                cipher, plain, key, label=label, read_only=read_only, log=self.layout.log(plain)
            )
            if not read_only:
                os.chown(plain, *owner)
        except BaseException:
            self._unmount(plain)
            if tmp_backing is not None:
                _remove_tree(tmp_backing)
            raise
        self._users[plain] = {container}
        self._labels[plain] = label
        if tmp_backing is not None:
            self._tmp[plain] = tmp_backing
        logger.info("mounted encrypted volume %s for %s", label, container, extra={"volume": label})
        return plain

    def _acquire_luks(
        self,
        container: str,
        spec: service_spec_pb2.ServiceSpec,
        mount: service_spec_pb2.VolumeMount,
        owner: tuple[int, int],
        read_key: KeyReader,
    ) -> Path:
        enc, realm = mount.encrypted, spec.realm
        label = f"{realm}/{enc.volume}"
        if mount.kind != service_spec_pb2.VOLUME_KIND_ENCRYPTED:
            raise VolumeError(
                f"volume {label}: the luks2 backend supports only type encrypted",
                remedy="use backend: gocryptfs for encrypted-tmp and versioned volumes",
            )
        plain = self.layout.plain(realm, enc.volume)
        if self._users.get(plain):
            self._users[plain].add(container)
            return plain
        name = self._luks.name(realm, enc.volume)
        backing = self.layout.backing(realm, enc.volume)
        # Left by an agent that died, and adopted by no container: never reused, so that
        # the key is checked again.
        self._luks.close(plain if self._luks_mounted(plain) else None, name, None)
        key = read_key(realm, spec.name, enc)
        self._luks.open(
            backing, name, plain, key, size_bytes=enc.size_bytes, owner=owner, label=label
        )
        self._users[plain] = {container}
        self._labels[plain] = label
        self._luks_open[plain] = name
        logger.info("mounted encrypted volume %s for %s", label, container, extra={"volume": label})
        return plain

    def _where(self, container: str, realm: str, mount: service_spec_pb2.VolumeMount) -> _Where:
        enc = mount.encrypted
        if mount.kind == service_spec_pb2.VOLUME_KIND_ENCRYPTED_TMP:
            backing = self.layout.tmp_backing(container, enc.volume)
            return _Where(
                self.layout.tmp_plain(container, enc.volume),
                backing / "cipher",
                f"{realm}/{enc.volume}@{container}",
                backing,
                read_only=False,
            )
        if mount.kind == service_spec_pb2.VOLUME_KIND_VERSIONED and not enc.working_copy:
            number = enc.resolved_version or enc.version
            cipher = self.layout.versions(realm, enc.volume) / str(number) / versions.CIPHER
            if not gocryptfs.is_initialised(cipher):
                raise VolumeNotFoundError(
                    f"volume {realm}/{enc.volume} has no version {number}",
                    remedy=f"list them: `ozwald volumes versions {realm} {enc.volume}`",
                )
            return _Where(
                self.layout.version_plain(realm, enc.volume, number),
                cipher,
                f"{realm}/{enc.volume}@v{number}",
                None,
                read_only=True,
            )
        return _Where(
            self.layout.plain(realm, enc.volume),
            self.layout.cipher(realm, enc.volume),
            f"{realm}/{enc.volume}",
            None,
            read_only=False,
        )

    def release(self, container: str) -> list[Path]:
        """Drops `container` as a user; unmounts what nobody uses any more."""
        unmounted = []
        with self._lock:
            for plain, users in list(self._users.items()):
                users.discard(container)
                if users:
                    continue
                del self._users[plain]
                self._unmount(plain)
                tmp_backing = self._tmp.pop(plain, None)
                if tmp_backing is not None:
                    _remove_tree(tmp_backing)
                label = self._labels.pop(plain, str(plain))
                logger.info("unmounted encrypted volume %s", label, extra={"volume": label})
                unmounted.append(plain)
        return unmounted

    def sweep(self, binds: Mapping[str, Iterable[str]]) -> list[Path]:
        """Unmounts leftovers and adopts mounts in use; `binds` is container -> bind sources
        of every existing container of this agent. Returns what it unmounted."""
        unmounted = []
        with self._lock:
            sources = {c: {str(s) for s in srcs} for c, srcs in binds.items()}
            for entry in mountinfo.gocryptfs_mounts_under(self.layout.run, mountinfo.read()):
                plain = Path(entry.mount_point)
                if self._users.get(plain):
                    continue  # mounted by this process for a container being created
                users = {c for c, srcs in sources.items() if entry.mount_point in srcs}
                if users:
                    self._users.setdefault(plain, set()).update(users)
                    if plain.is_relative_to(self.layout.run / TMP):
                        container, volume = plain.relative_to(self.layout.run / TMP).parts[:2]
                        self._tmp[plain] = self.layout.tmp_backing(container, volume)
                    continue
                self._unmount(plain)
                self._users.pop(plain, None)
                unmounted.append(plain)
                logger.info("unmounted a leftover encrypted volume at %s", plain)
            if self._unavailable(LUKS2) is None:
                unmounted.extend(self._sweep_luks(sources))
            # Ciphertext of tmp volumes whose mount is gone can never be opened again.
            tmp_root = self.layout.state / TMP
            kept = set(self._tmp.values())
            if tmp_root.is_dir():
                for backing in sorted(tmp_root.glob("*/*")):
                    if backing not in kept:
                        _remove_tree(backing)
                _remove_empty_dirs(tmp_root)
            if self.layout.run.is_dir():
                _remove_empty_dirs(self.layout.run, keep_root=True)
        self._swept.set()
        return unmounted

    def _sweep_luks(self, sources: Mapping[str, set[str]]) -> list[Path]:
        unmounted = []
        for entry in self._luks.mounts_under(self.layout.run):
            plain = Path(entry.mount_point)
            name = entry.source.removeprefix("/dev/mapper/")
            if self._users.get(plain):
                continue
            users = {c for c, srcs in sources.items() if entry.mount_point in srcs}
            if users:
                self._users.setdefault(plain, set()).update(users)
                self._luks_open[plain] = name
                continue
            self._luks.close(plain, None, None)
            unmounted.append(plain)
            logger.info("unmounted a leftover encrypted volume at %s", plain)
        for name in self._luks.close_leftovers(self._luks_open.values(), self._luks_backings()):
            logger.info("closed a leftover encrypted device %s", name)
        return unmounted

    def _luks_backings(self) -> Iterator[tuple[str, Path]]:
        for realm, volume in self.volumes():
            backing = self.layout.backing(realm, volume)
            if (backing / luks.IMAGE).exists() or (backing / luks.NEW_IMAGE).exists():
                yield self._luks.name(realm, volume), backing

    def skip_sweep(self) -> None:
        """Lets mounts go ahead when the sweep could not run (its failure is logged)."""
        self._swept.set()

    # Volumes ----------------------------------------------------------------------

    def users(self) -> dict[Path, frozenset[str]]:
        with self._lock:
            return {p: frozenset(u) for p, u in self._users.items()}

    def snapshot(self, realm: str, volume: str) -> versions.VersionInfo:
        with self._lock:
            cipher = self.layout.cipher(realm, volume)
            if not gocryptfs.is_initialised(cipher):
                raise VolumeNotFoundError(
                    f"volume {realm}/{volume} has no working copy on this host",
                    remedy="start a service that mounts it with `version: working` first",
                )
            info = versions.snapshot(cipher, self.layout.versions(realm, volume))
        logger.info("volume %s/%s: made version %d", realm, volume, info.number)
        return info

    def versions(self, realm: str, volume: str) -> list[versions.VersionInfo]:
        if not self.layout.backing(realm, volume).is_dir():
            raise VolumeNotFoundError(f"no volume {realm}/{volume} on this host")
        return versions.read(self.layout.versions(realm, volume))

    def newest_version(self, realm: str, volume: str) -> int:
        found = versions.numbers(self.layout.versions(realm, volume))
        return found[-1] if found else 0

    def has_version(self, realm: str, volume: str, number: int) -> bool:
        return number in versions.numbers(self.layout.versions(realm, volume))

    def volumes(self, realm: str = "") -> list[tuple[str, str]]:
        if not self.layout.state.is_dir():
            return []
        realms = [self.layout.state / realm] if realm else sorted(self.layout.state.iterdir())
        return [
            (r.name, v.name)
            for r in realms
            if r.is_dir() and not r.name.startswith(".")
            for v in sorted(r.iterdir())
            if v.is_dir()
        ]

    # Internals ----------------------------------------------------------------------

    def _luks_mounted(self, plain: Path) -> bool:
        return any(e.mount_point == str(plain) for e in self._luks.mounts_under(plain.parent))

    def _is_mounted(self, plain: Path) -> bool:
        return any(
            e.mount_point == str(plain)
            for e in mountinfo.gocryptfs_mounts_under(plain, mountinfo.read())
        )

    def _unmount(self, plain: Path) -> None:
        name = self._luks_open.pop(plain, None)
        if name is not None:
            realm, volume = plain.relative_to(self.layout.run).parts[:2]
            self._luks.close(plain, name, self.layout.backing(realm, volume) / luks.IMAGE)
            return
        if self._is_mounted(plain):
            gocryptfs.unmount(plain)
        with contextlib.suppress(OSError):
            plain.rmdir()
        with contextlib.suppress(OSError):
            self.layout.log(plain).unlink()


def _remove_tree(path: Path) -> None:
    if path.exists():
        versions.make_writable(path)
        shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def _remove_empty_dirs(root: Path, *, keep_root: bool = False) -> None:
    """Removes empty directories below `root`, never entering a mount point (inside one
    are a volume's own directories)."""
    found: list[str] = []
    for directory, dirs, _ in os.walk(root):
        dirs[:] = [d for d in dirs if d != LOGS and not os.path.ismount(os.path.join(directory, d))]
        found.append(directory)
    for directory in sorted(found, key=lambda d: -d.count("/")):
        if keep_root and directory == str(root):
            continue
        with contextlib.suppress(OSError):
            os.rmdir(directory)

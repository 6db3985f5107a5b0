"""Checks of encrypted volumes (docs/volumes.md): their keys name declared lockers, LUKS2
images have a size, and mounts pick versions only of versioned volumes, read-only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ozwald_sdk.config.diagnostics import Diagnostic
from ozwald_sdk.config.diagnostics import Path as KeyPath
from ozwald_sdk.config.model import (
    EncryptedTmpVolume,
    EncryptedVolume,
    Realm,
    VersionedVolume,
)
from ozwald_sdk.config.model_service import VolumeMount
from ozwald_sdk.config.problems import closest
from ozwald_sdk.config.source import SourceMap

if TYPE_CHECKING:
    from ozwald_sdk.config.checks import RealmView

LUKS2_MIN_SIZE = 32 * 2**20
"""Bytes; the agent's `luks.MIN_SIZE_BYTES`."""


def encrypted_volume_problems(
    realm: str, declared: Realm, source: SourceMap
) -> Iterator[Diagnostic]:
    lockers = declared.vault.lockers if declared.vault is not None else ()
    for name, volume in declared.volumes.items():
        path: KeyPath = ("realms", realm, "volumes", name)
        key = volume.key if isinstance(volume, EncryptedVolume | VersionedVolume) else None
        if key is not None and key.locker not in lockers:
            yield source.diagnostic(
                (*path, "key", "locker"),
                f"volume '{name}' takes its key from locker '{key.locker}', which is not "
                f"declared in the vault of realm '{realm}' (vault: {{lockers: [...]}})",
                suggestion=closest(key.locker, lockers),
            )
        if (
            not isinstance(volume, EncryptedVolume | EncryptedTmpVolume | VersionedVolume)
            or volume.backend != "luks2"
        ):
            continue
        if not isinstance(volume, EncryptedVolume):
            yield source.diagnostic(
                (*path, "backend"),
                f"volume '{name}' is of type {volume.type}, which the luks2 backend does not "
                "support (only type encrypted): use backend: gocryptfs",
            )
        elif volume.size is None:
            yield source.diagnostic(
                (*path, "backend"),
                f"volume '{name}' uses backend luks2, which needs a size (e.g. size: 10GiB)",
            )
        elif volume.size < LUKS2_MIN_SIZE:
            yield source.diagnostic(
                (*path, "size"),
                f"volume '{name}' uses backend luks2, whose header alone takes 16MiB: give it "
                "a size of at least 32MiB",
            )


def encrypted_mount_problems(
    view: RealmView, path: KeyPath, mount: VolumeMount, source: SourceMap
) -> Iterator[Diagnostic]:
    declared = view.realm.volumes.get(mount.volume) if mount.volume is not None else None
    if mount.version is None:
        if isinstance(declared, VersionedVolume) and not mount.read_only:
            yield _writable_version(path, mount, source)
        return
    if not isinstance(declared, VersionedVolume):
        if declared is not None or mount.volume is None:
            yield source.diagnostic(
                (*path, "version"),
                f"only versioned volumes have versions; '{mount.volume or mount.source}' is "
                f"{'of type ' + declared.type if declared is not None else 'a host path'}",
            )
        return
    if mount.version != "working" and not mount.read_only:
        yield _writable_version(path, mount, source)


def _writable_version(path: KeyPath, mount: VolumeMount, source: SourceMap) -> Diagnostic:
    return source.diagnostic(
        (*path, "read_only"),
        f"versions of volume '{mount.volume}' are immutable: mount them read-only "
        f"('{mount.volume}:{mount.target}:ro' or read_only: true), or mount the working "
        "copy with version: working",
    )

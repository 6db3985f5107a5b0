"""Immutable versions of a versioned volume: ciphertext copies with a manifest.

A snapshot copies the working copy's cipher directory to `versions/<n>/cipher`, writes
`versions/<n>/manifest.json` (number, time, SHA-256 over the ciphertext, size, files),
then removes every write bit (files 0444, directories 0555) and only then renames the
directory into place, so a half-made version never has a number. Versions are mounted
with `gocryptfs -ro` and bind-mounted read-only: a write inside the container fails
(read-only file system), and the manifest's hash lets anyone check that a version never
changed (`ozwald volumes versions`). A snapshot of a working copy that a service is
writing is consistent per file, not across files: stop writers first when that matters.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MANIFEST = "manifest.json"
CIPHER = "cipher"


@dataclass(frozen=True)
class VersionInfo:
    number: int
    created_at: float
    content_sha256: str
    size_bytes: int
    file_count: int


def content_hash(root: Path) -> tuple[str, int, int]:
    """SHA-256 over every file below `root` (relative path and content), size, files."""
    digest = hashlib.sha256()
    size = files = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        rel = path.relative_to(root).as_posix()
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
        size += len(data)
        files += 1
    return digest.hexdigest(), size, files


def numbers(versions_dir: Path) -> list[int]:
    if not versions_dir.is_dir():
        return []
    return sorted(int(p.name) for p in versions_dir.iterdir() if p.name.isdigit())


def read(versions_dir: Path) -> list[VersionInfo]:
    out = []
    for number in numbers(versions_dir):
        manifest = json.loads((versions_dir / str(number) / MANIFEST).read_text())
        out.append(VersionInfo(**manifest))
    return out


def snapshot(cipher: Path, versions_dir: Path) -> VersionInfo:
    existing = numbers(versions_dir)
    number = (existing[-1] if existing else 0) + 1
    versions_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = versions_dir / f".staging-{number}"
    if staging.exists():
        make_writable(staging)
        shutil.rmtree(staging)
    staging.mkdir(mode=0o700)
    shutil.copytree(cipher, staging / CIPHER, symlinks=True)
    sha, size, files = content_hash(staging / CIPHER)
    info = VersionInfo(number, time.time(), sha, size, files)
    (staging / MANIFEST).write_text(json.dumps(asdict(info), indent=2) + "\n")
    make_read_only(staging)
    os.rename(staging, versions_dir / str(number))
    return info


def make_read_only(root: Path) -> None:
    for directory, dirs, names in os.walk(root, topdown=False):
        for name in names:
            os.chmod(os.path.join(directory, name), 0o444)
        for name in dirs:
            os.chmod(os.path.join(directory, name), 0o555)
    os.chmod(root, 0o555)


def make_writable(root: Path) -> None:
    os.chmod(root, 0o700)
    for directory, dirs, names in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(directory, name), 0o700)
        for name in names:
            os.chmod(os.path.join(directory, name), 0o600)

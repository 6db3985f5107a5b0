"""The audit log's head checkpoint: the last record's sequence and hash, in a file of its own.

A hash chain cannot reveal records cut off its end, nor a database file swapped for an
older copy: what is left is still a valid chain. The checkpoint lives outside the
database and is rewritten (atomically: a temporary file, fsync, rename) about once a
second after records are committed, so `verify` can require the log to still reach it.
Anyone who can write the state directory can rewrite the checkpoint too; an anchor kept
elsewhere (`ozwald audit verify --anchor`) is the defence against that.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

_HEX = frozenset("0123456789abcdef")


class CheckpointError(Exception):
    """The checkpoint file exists but does not hold a sequence and a hash."""


@dataclass(frozen=True)
class Checkpoint:
    sequence: int
    hash: str


def read_checkpoint(path: Path) -> Checkpoint | None:
    """The checkpoint, or None when none was written yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from e
    try:
        document = json.loads(text)
        sequence, digest = document["sequence"], document["hash"]
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{path} is not an audit head checkpoint: {e}") from e
    if (
        not isinstance(sequence, int)
        or sequence < 0
        or not isinstance(digest, str)
        or len(digest) != 64
        or not set(digest) <= _HEX
    ):
        raise CheckpointError(f"{path} does not hold a sequence and a SHA-256 hash")
    return Checkpoint(sequence, digest)


def write_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Replace the checkpoint; a crash leaves the old one or the new one, never half."""
    temporary = path.with_name(f".{path.name}.tmp")
    body = json.dumps({"sequence": checkpoint.sequence, "hash": checkpoint.hash}) + "\n"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, body.encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)

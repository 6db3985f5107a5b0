"""Which realm, locker and secret names the vault accepts.

Names become paths (`/run/secrets/<locker>/<name>`) and associated data, so they are
kept to characters that are safe in both: no "/", no NUL, no leading dot.
"""

from __future__ import annotations

import re

from ozwald_agent.secrets.errors import InvalidSecretError

MAX_VALUE_BYTES = 64 * 1024
_LOCKER = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_SECRET = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
_REALM = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
DEFAULT_REALM = "default"


def check_realm(realm: str) -> str:
    realm = realm or DEFAULT_REALM
    if not _REALM.fullmatch(realm):
        raise InvalidSecretError(
            f"realm {realm!r} is not a valid name",
            "use lowercase letters, digits, '-' and '_'",
            field="realm",
        )
    return realm


def check_locker(locker: str) -> str:
    if not _LOCKER.fullmatch(locker):
        raise InvalidSecretError(
            f"locker name {locker!r} is not valid",
            "use 1 to 63 lowercase letters, digits, '-' and '_', starting with a letter or digit",
            field="locker",
        )
    return locker


def check_secret_name(name: str) -> str:
    if not _SECRET.fullmatch(name):
        raise InvalidSecretError(
            f"secret name {name!r} is not valid",
            "use letters, digits, '_', '-' and '.', starting with a letter or '_' "
            "(at most 128 characters)",
            field="name",
        )
    return name


def check_value(name: str, value: bytes) -> bytes:
    if len(value) > MAX_VALUE_BYTES:
        raise InvalidSecretError(
            f"the value of {name!r} is {len(value)} bytes, more than {MAX_VALUE_BYTES}",
            "store large material (certificates bundles, model keys) in an encrypted volume",
            field="values",
        )
    return value

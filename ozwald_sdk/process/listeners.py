"""A server's listeners: its unix socket (file permissions are the access control) and
an optional TCP port that takes only clients with a certificate the given CA signed.

The functions take a `grpc.Server` or a `grpc.aio.Server`: both bind ports the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

# Owner and group may connect; the umask closes the window between bind and chmod.
SOCKET_MODE = 0o660
_SOCKET_UMASK = 0o117
# sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH_BYTES = 107


class ListenError(Exception):
    """A listener could not be opened (permissions, bad address, unreadable TLS files)."""


class TlsMaterialError(ListenError):
    """The TLS files cannot be read, are not PEM, or the key does not match the cert."""


@dataclass(frozen=True)
class TlsListener:
    """A TCP listener that accepts only clients with a certificate signed by client_ca."""

    address: str
    cert: Path
    key: Path
    client_ca: Path


class PortBinder(Protocol):
    """What grpc.Server and grpc.aio.Server share for binding."""

    def add_insecure_port(self, address: str) -> int: ...

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int: ...


def socket_path_problem(path: Path) -> str | None:
    """Why `path` cannot be a unix socket's path, or None."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        return (
            f"--socket {path} is longer than the {MAX_SOCKET_PATH_BYTES} bytes a unix socket "
            "path may have; choose a shorter path"
        )
    return None


def bind_unix(server: PortBinder, path: Path, gid: int | None) -> None:
    """Listen on the unix socket `path`, mode 0660, owned by group `gid` when given."""
    previous = os.umask(_SOCKET_UMASK)
    try:
        server.add_insecure_port(f"unix:{path}")
    except RuntimeError as e:
        raise ListenError(f"cannot listen on unix socket {path}: {e}") from e
    finally:
        os.umask(previous)
    os.chmod(path, SOCKET_MODE)
    if gid is not None:
        os.chown(path, -1, gid)


def bind_tls(server: PortBinder, tcp: TlsListener) -> int:
    """Listen on `tcp.address` with mutual TLS; returns the port (the one chosen for 0)."""
    try:
        cert, key, client_ca = (
            tcp.cert.read_bytes(),
            tcp.key.read_bytes(),
            tcp.client_ca.read_bytes(),
        )
    except OSError as e:
        raise TlsMaterialError(f"cannot read TLS material: {e}") from e
    _check_tls(tcp, cert, key, client_ca)
    credentials = grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=True
    )
    try:
        port = server.add_secure_port(tcp.address, credentials)
    except RuntimeError as e:
        raise ListenError(f"cannot listen on {tcp.address}: {e}") from e
    if port == 0:
        raise ListenError(f"cannot listen on {tcp.address}: the address is in use or invalid")
    return port


def _check_tls(tcp: TlsListener, cert: bytes, key: bytes, client_ca: bytes) -> None:
    """Say which file is wrong before gRPC's bind fails with a bare "failed to bind"."""
    try:
        certificate = x509.load_pem_x509_certificate(cert)
    except ValueError as e:
        raise TlsMaterialError(f"--tls-cert {tcp.cert} is not a PEM certificate ({e})") from e
    try:
        private_key = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as e:
        raise TlsMaterialError(
            f"--tls-key {tcp.key} is not an unencrypted PEM private key ({e})"
        ) from e
    try:
        x509.load_pem_x509_certificates(client_ca)
    except ValueError as e:
        raise TlsMaterialError(
            f"--tls-client-ca {tcp.client_ca} is not a PEM certificate ({e})"
        ) from e
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if private_key.public_key().public_bytes(
        encoding, public
    ) != certificate.public_key().public_bytes(encoding, public):
        raise TlsMaterialError(f"--tls-key {tcp.key} is not the key of --tls-cert {tcp.cert}")

"""The orchestrator's address as `--orchestrator` takes it: HOST:PORT or [IPV6]:PORT."""

from __future__ import annotations

FORMS = "HOST:PORT, e.g. orchestrator.lan:7443, 10.0.0.5:7443 or [fd00::5]:7443"


def parse_orchestrator_address(text: str) -> str:
    """The gRPC target for `text`; ValueError says what is wrong with it."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not an address; write {FORMS}")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ValueError(f"{text!r}: an IPv6 address needs brackets, e.g. [fd00::5]:7443")
    if "/" in host or " " in host:
        raise ValueError(f"{text!r} is not an address; write {FORMS}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: {port!r} is not a TCP port (1-65535)")
    return f"{host}:{int(port)}"

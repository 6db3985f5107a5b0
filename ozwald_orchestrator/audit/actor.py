"""Who made a call, as the audit log names them.

Over mutual TLS the client certificate says it: `ozwald ca issue` puts the role in the
organizational unit and the name in the common name, so an operator "alice" is
"operator:alice". The unix socket carries no certificate, and grpcio does not expose
the socket's SO_PEERCRED to handlers, so a local call is "local:uid=N" with the uid the
client sends (the socket's file permissions decide who may connect at all), or "local"
when it sent none.
"""

from __future__ import annotations

from typing import Any

import grpc

from ozwald_orchestrator.identity import ROLE_AGENT, ROLE_OPERATOR, peer_identity
from ozwald_sdk.metadata import CLIENT_UID_KEY

LOCAL = "local"


def caller(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The actor for the call `context` belongs to."""
    identity = peer_identity(context.auth_context())
    if identity is not None:
        for role in (ROLE_OPERATOR, ROLE_AGENT):
            if role in identity.roles:
                return f"{role}:{identity.common_name}"
        roles = "+".join(sorted(identity.roles)) or "certificate"
        return f"{roles}:{identity.common_name}"
    for key, value in context.invocation_metadata() or ():
        if key == CLIENT_UID_KEY and isinstance(value, str) and value.isdigit():
            return f"{LOCAL}:uid={int(value)}"
    return LOCAL

"""Which certificate role may use a service over TCP, and the refusal for the others.

Over mutual TLS every caller has a certificate from the fleet's CA, and `ozwald ca
issue` writes its role into the organizational unit: an agent's certificate must not
drive the fleet or read its audit log, which are the operators'.
"""

from __future__ import annotations

from typing import Any

import grpc
from ozwald.common.v1.error_reason_pb2 import ERROR_REASON_ROLE_NOT_ALLOWED

from ozwald_orchestrator.identity import peer_identity
from ozwald_orchestrator.rpc_errors import abort


async def require_role(
    context: grpc.aio.ServicerContext[Any, Any], required: str, service: str
) -> None:
    """Return when the caller's certificate holds `required`; otherwise end the call with
    PERMISSION_DENIED, reason ROLE_NOT_ALLOWED (metadata role, required)."""
    identity = peer_identity(context.auth_context())
    if identity is not None and required in identity.roles:
        return
    if identity is None:
        held, who = "none", "a caller without a certificate"
    else:
        held, who = ",".join(sorted(identity.roles)) or "none", f"the {identity.describe()}"
    await abort(
        context,
        grpc.StatusCode.PERMISSION_DENIED,
        ERROR_REASON_ROLE_NOT_ALLOWED,
        f"{service} over TCP is for {required}s (certificates of role {required}), and {who} "
        "is not one",
        f"use a certificate from `ozwald ca issue --role {required} NAME`, or the "
        "orchestrator's unix socket on its host",
        role=held,
        required=required,
    )

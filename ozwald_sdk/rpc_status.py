"""Server side of Ozwald's error contract: a google.rpc.Status with an "ozwald" ErrorInfo.

A servicer refuses a call with `abort(context, code, reason, message, remedy, **metadata)`;
clients turn what arrives into the matching `ozwald_sdk.errors` class.
"""

from __future__ import annotations

from typing import NoReturn

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from ozwald.common.v1.error_reason_pb2 import ERROR_REASON_UNSPECIFIED, ErrorReason

from ozwald_sdk.metadata import ERROR_DOMAIN, REMEDY_KEY, reason_name


def status_error(
    code: grpc.StatusCode,
    reason: ErrorReason.ValueType,
    message: str,
    remedy: str,
    **metadata: str,
) -> status_pb2.Status:
    """A google.rpc.Status for `code` whose ErrorInfo names `reason` and carries `remedy`.

    `metadata` adds machine-readable facts beside the remedy, e.g. field="interval".
    """
    if code == grpc.StatusCode.OK:
        raise ValueError("an error status needs a code other than OK")
    if reason == ERROR_REASON_UNSPECIFIED:
        raise ValueError("an error status needs a reason other than ERROR_REASON_UNSPECIFIED")
    info = error_details_pb2.ErrorInfo(
        reason=reason_name(reason),
        domain=ERROR_DOMAIN,
        metadata={REMEDY_KEY: remedy, **metadata},
    )
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(info)
    return status


def abort(
    context: grpc.ServicerContext,
    code: grpc.StatusCode,
    reason: ErrorReason.ValueType,
    message: str,
    remedy: str,
    **metadata: str,
) -> NoReturn:
    """End the call being served with `status_error(...)`; never returns."""
    context.abort_with_status(
        rpc_status.to_status(status_error(code, reason, message, remedy, **metadata))
    )

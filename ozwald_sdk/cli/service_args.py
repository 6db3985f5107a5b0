"""What the service commands share: `[realm:]name` arguments, wait timeouts, usage
errors, and protobuf messages as JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from ozwald_sdk.config import Selector
from ozwald_sdk.config.selector import selector_error
from ozwald_sdk.errors import ExitCode, OzwaldError


class UsageError(OzwaldError):
    """The command line asks for something contradictory (exit code 2, as argparse)."""

    exit_code = ExitCode.USAGE


def service_ref(text: str) -> tuple[str, str]:
    """(realm, name) from `[realm:]name`; the realm is "" when not given, and the agent
    then takes the only realm it runs, else `default`. Raises ConfigInvalidError (10)."""
    selector = Selector.parse(text)
    if selector.variety is not None or selector.profile is not None:
        raise selector_error(
            text,
            f"name a service as [realm:]name, without variety or profile: write "
            f"'{Selector(service=selector.service, realm=selector.realm)}'",
            remedy="`ozwald status` lists the services this agent knows",
        )
    return selector.realm or "", selector.service


def seconds(text: str) -> float:
    """argparse type: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def message_dict(message: Message) -> dict[str, Any]:
    """A message in the protobuf JSON mapping: proto field names, every field present."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def dumps(document: Message | Mapping[str, Any]) -> str:
    body = message_dict(document) if isinstance(document, Message) else dict(document)
    return json.dumps(body, indent=2)

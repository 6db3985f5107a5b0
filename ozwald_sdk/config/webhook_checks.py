"""Checks of webhooks across a realm: services name declared hooks; signing keys exist."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path

from ozwald_sdk.config.build import host_path
from ozwald_sdk.config.diagnostics import Diagnostic
from ozwald_sdk.config.diagnostics import Path as KeyPath
from ozwald_sdk.config.model import Realm
from ozwald_sdk.config.model_service import ServiceFields
from ozwald_sdk.config.problems import closest
from ozwald_sdk.config.source import SourceMap


def webhook_reference_problems(
    realm: str,
    fields: ServiceFields,
    path: KeyPath,
    declared: Collection[str],
    source: SourceMap,
) -> Iterator[Diagnostic]:
    """Each hook a layer subscribes to must be declared in the realm's `webhooks`."""
    for i, hook in enumerate(fields.webhooks or ()):
        if hook not in declared:
            yield source.diagnostic(
                (*path, "webhooks", i),
                f"no webhook '{hook}' is declared in realm '{realm}' (declare it under "
                f"realms.{realm}.webhooks)",
                suggestion=closest(hook, declared),
            )


def webhook_declaration_problems(
    realm_name: str, realm: Realm, base_dir: Path, source: SourceMap
) -> Iterator[Diagnostic]:
    """A hook's signing key file must exist now, as env files must: a typo found at
    delivery time would veto (or silently skip) a real deployment."""
    for name, hook in realm.webhooks.items():
        key_file = host_path(base_dir, hook.signing_key_file)
        if not key_file.is_file():
            yield source.diagnostic(
                ("realms", realm_name, "webhooks", name, "signing_key_file"),
                f"signing key file {key_file} does not exist or is not a file",
            )

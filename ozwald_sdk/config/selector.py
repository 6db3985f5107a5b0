"""Service selectors: `[realm:]service[variety][profile]`.

    embed                   the realm's embed, variety chosen for the host, no profile
    default:embed[cpu]      realm default, variety cpu
    embed[nvidia][fast]     variety nvidia, profile fast
    embed[][fast]           variety chosen for the host, profile fast
    embed[cpu][]            same as embed[cpu]

Empty brackets mean "not named". Quote selectors in a shell: brackets are glob characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ozwald_sdk.config.diagnostics import Diagnostic
from ozwald_sdk.config.names import NAME_PATTERN, NAME_RULE, PROFILE_PATTERN, PROFILE_RULE
from ozwald_sdk.errors import ConfigInvalidError

SELECTOR_FORM: Final = (
    "[realm:]service[variety][profile], e.g. embed, default:embed[cpu] or embed[][fast]"
)
_SELECTOR: Final = re.compile(
    r"(?:(?P<realm>[^:\[\]]*):)?(?P<service>[^:\[\]]*)"
    r"(?:\[(?P<variety>[^\[\]]*)\](?:\[(?P<profile>[^\[\]]*)\])?)?"
)


@dataclass(frozen=True)
class Selector:
    """Which service, and optionally which realm, variety and profile; None: not named."""

    service: str
    realm: str | None = None
    variety: str | None = None
    profile: str | None = None

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse `text`; raises ConfigInvalidError (exit code 10) saying what is wrong."""
        match = _SELECTOR.fullmatch(text.strip())
        if match is None:
            raise selector_error(text, f"not a service selector: expected {SELECTOR_FORM}")
        realm, service = match.group("realm"), match.group("service")
        variety = match.group("variety") or None
        profile = match.group("profile") or None
        for what, value, pattern, rule in (
            ("realm", realm, NAME_PATTERN, NAME_RULE),
            ("service", service, NAME_PATTERN, NAME_RULE),
            ("profile", profile, PROFILE_PATTERN, PROFILE_RULE),
        ):
            if value is not None and not re.match(pattern, value):
                shown = f"'{value}'" if value else "nothing"
                raise selector_error(text, f"the {what} must be {rule}, found {shown}")
        return cls(service=service, realm=realm, variety=variety, profile=profile)

    def __str__(self) -> str:
        text = f"{self.realm}:{self.service}" if self.realm else self.service
        if self.variety is not None or self.profile is not None:
            text += f"[{self.variety or ''}]"
        if self.profile is not None:
            text += f"[{self.profile}]"
        return text


def selector_error(
    text: str, message: str, *, suggestion: str | None = None, remedy: str | None = None
) -> ConfigInvalidError:
    """A ConfigInvalidError about a selector typed on the command line."""
    diagnostic = Diagnostic(None, None, None, text, message, suggestion)
    return ConfigInvalidError(
        "invalid service selector:",
        [diagnostic],
        remedy=remedy
        or "`ozwald list_configured_services` shows the services, varieties and profiles",
    )

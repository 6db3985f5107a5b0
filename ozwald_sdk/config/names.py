"""Names in a config (realms, services, varieties, profiles) and the Docker names they become."""

from __future__ import annotations

from typing import Annotated, Final, Literal, get_args

from pydantic import Field

Variety = Literal["nvidia", "amdgpu", "cpu"]
"""A hardware flavour of a service."""

VARIETIES: Final[tuple[Variety, ...]] = get_args(Variety)
DEFAULT_VARIETY_PREFERENCE: Final[tuple[Variety, ...]] = ("nvidia", "amdgpu", "cpu")

GpuVendorName = Literal["nvidia", "amd"]
"""A GPU maker as a config names it."""

VARIETY_VENDOR: Final[dict[Variety, GpuVendorName | None]] = {
    "nvidia": "nvidia",
    "amdgpu": "amd",
    "cpu": None,
}

# Realm, service, network and volume names become DNS names on the realm's network and
# parts of Docker object names, so they keep to what both accept. "_" is left out on
# purpose: Docker names join realm and object with it, which keeps them unambiguous.
NAME_PATTERN: Final = r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$"
NAME_RULE: Final = (
    "a name of lowercase letters, digits and '-', starting with a letter, "
    "not ending with '-', at most 63 characters"
)
# Profiles appear inside the brackets of a selector, so brackets and ':' are out.
PROFILE_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
PROFILE_RULE: Final = (
    "a profile name of letters, digits, '_', '.' and '-', starting with a letter or "
    "digit, at most 63 characters"
)
# Fleet instances run as services named `<deployment>-<ordinal>`, so a deployment's name
# leaves room for a six-digit ordinal within the 63 characters of a service name.
DEPLOYMENT_NAME_PATTERN: Final = r"^[a-z](?:[a-z0-9-]{0,54}[a-z0-9])?$"
DEPLOYMENT_NAME_RULE: Final = (
    "a deployment name of lowercase letters, digits and '-', starting with a letter, "
    "not ending with '-', at most 56 characters"
)
ENV_NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"
ENV_NAME_RULE: Final = "a variable name of letters, digits and '_', not starting with a digit"

PATTERN_RULES: Final[dict[str, str]] = {
    NAME_PATTERN: NAME_RULE,
    PROFILE_PATTERN: PROFILE_RULE,
    ENV_NAME_PATTERN: ENV_NAME_RULE,
    DEPLOYMENT_NAME_PATTERN: DEPLOYMENT_NAME_RULE,
}

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
ProfileName = Annotated[str, Field(pattern=PROFILE_PATTERN)]
EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN)]
DeploymentName = Annotated[str, Field(pattern=DEPLOYMENT_NAME_PATTERN)]

RESERVED_LABEL_PREFIX: Final = "ozwald."
DOCKER_PREFIX: Final = "ozwald-"


def shared_network_name(realm: str) -> str:
    """The Docker network every service of `realm` joins: `ozwald-<realm>`."""
    return f"{DOCKER_PREFIX}{realm}"


def realm_object_name(realm: str, name: str) -> str:
    """The Docker name of a declared network or named volume: `ozwald-<realm>_<name>`."""
    return f"{DOCKER_PREFIX}{realm}_{name}"

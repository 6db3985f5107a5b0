"""ozwald.yml: the model, validation with located diagnostics, effective specs, selectors.

    config = load_config("ozwald.yml")              # ConfigInvalidError lists every problem
    spec = resolve(config, "embed[][fast]", host)   # EffectiveService, variety for `host`
    spec.to_service_spec()                          # the ozwald.common.v1.ServiceSpec message
    spec.fingerprint()                              # changes when the effective spec does

docs/configuration.md describes every key, the merge rules and the selector syntax.
"""

from ozwald_sdk.config.catalog import ConfiguredService, PortalSummary, configured_services
from ozwald_sdk.config.diagnostics import Diagnostic
from ozwald_sdk.config.effective import (
    EffectiveGpus,
    EffectiveHealthCheck,
    EffectiveHttpProbe,
    EffectiveMount,
    EffectiveNetwork,
    EffectivePortal,
    EffectiveResources,
    EffectiveRestart,
    EffectiveService,
)
from ozwald_sdk.config.loader import Config, load_config, parse_config
from ozwald_sdk.config.locate import CONFIG_ENV, DEFAULT_CONFIG, config_path
from ozwald_sdk.config.model import OzwaldConfig, Realm
from ozwald_sdk.config.model_service import ServiceDefinition, ServiceOverride
from ozwald_sdk.config.names import VARIETIES, Variety, realm_object_name, shared_network_name
from ozwald_sdk.config.resolve import DEFAULT_REALM, default_realm, resolve, resolve_all
from ozwald_sdk.config.schema import SCHEMA_PATH, json_schema, json_schema_text
from ozwald_sdk.config.selector import Selector
from ozwald_sdk.config.service_spec import to_service_spec
from ozwald_sdk.config.units import parse_duration, parse_size
from ozwald_sdk.config.variety import choose_variety, host_varieties
from ozwald_sdk.errors import ConfigInvalidError

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "DEFAULT_REALM",
    "SCHEMA_PATH",
    "VARIETIES",
    "Config",
    "ConfigInvalidError",
    "ConfiguredService",
    "Diagnostic",
    "EffectiveGpus",
    "EffectiveHealthCheck",
    "EffectiveHttpProbe",
    "EffectiveMount",
    "EffectiveNetwork",
    "EffectivePortal",
    "EffectiveResources",
    "EffectiveRestart",
    "EffectiveService",
    "OzwaldConfig",
    "PortalSummary",
    "Realm",
    "Selector",
    "ServiceDefinition",
    "ServiceOverride",
    "Variety",
    "choose_variety",
    "config_path",
    "configured_services",
    "default_realm",
    "host_varieties",
    "json_schema",
    "json_schema_text",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_size",
    "realm_object_name",
    "resolve",
    "resolve_all",
    "shared_network_name",
    "to_service_spec",
]

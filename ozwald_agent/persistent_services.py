"""Persistent services: read from ozwald.yml when the agent starts, and started with it."""

from __future__ import annotations

from pathlib import Path

from ozwald.common.v1 import host_profile_pb2, service_spec_pb2

from ozwald_sdk.config import configured_services, load_config, resolve


def persistent_specs(
    config_path: Path, host: host_profile_pb2.HostProfile
) -> list[service_spec_pb2.ServiceSpec]:
    """Every persistent service of the config, resolved for this host.

    Raises ConfigInvalidError when the file or a service cannot be resolved.
    """
    config = load_config(config_path)
    return [
        resolve(config, f"{service.realm}:{service.name}", host).to_service_spec()
        for service in configured_services(config)
        if service.persistent
    ]

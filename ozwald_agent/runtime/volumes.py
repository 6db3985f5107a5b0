"""Named volumes: created (labelled) when missing, never removed by the runtime.

A named volume holds data a person cares about (model caches, databases), so an existing
one is used whoever created it, and removing one is always an explicit human act
(`docker volume rm`). Bind and tmpfs mounts need nothing from the engine beforehand: they
are part of the container's create arguments (see `container_spec.py`).
"""

from __future__ import annotations

import logging

import docker
import docker.errors

from ozwald_agent.runtime import labels as lbl
from ozwald_agent.runtime.container_spec import VolumeWant
from ozwald_agent.runtime.docker_errors import engine_call

logger = logging.getLogger(__name__)


def ensure_volume(client: docker.DockerClient, want: VolumeWant, agent_id: str) -> bool:
    """Makes sure the volume exists; True when it was created now."""
    with engine_call(f"looking up volume {want.name}"):
        try:
            client.volumes.get(want.name)
            return False
        except docker.errors.NotFound:
            pass
    labels = lbl.resource_labels(agent_id, want.realm, {lbl.VOLUME: want.name})
    # Creating a volume that exists is not an error for the engine, so a concurrent
    # creator is harmless.
    with engine_call(f"creating volume {want.name}"):
        client.volumes.create(want.name, driver="local", labels=labels)
    logger.info("created volume %s", want.name, extra={"volume": want.name})
    return True

"""Ozwald's bridge networks: one shared per realm plus declared ones, created when missing.

Every network carries the managed/agent/realm labels plus `ozwald.network` (the declared
name, empty for the realm's own). An existing network under Ozwald's name is used only when
its labels say it is the same realm's same network (possibly created by another agent on
the same engine: networks are shared, containers are not); anything else is a
`NameConflictError`, never silently joined.

Networks are removed only when empty and only the caller agent's own; volumes never.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.networks import Network

from ozwald_agent.runtime import labels as lbl
from ozwald_agent.runtime.container_spec import NetworkWant
from ozwald_agent.runtime.docker_errors import engine_call
from ozwald_agent.runtime.errors import NameConflictError

logger = logging.getLogger(__name__)


def ensure_network(client: docker.DockerClient, want: NetworkWant, agent_id: str) -> Network:
    """The network `want`, created (labelled, bridge driver) when missing."""
    existing = _get(client, want.name)
    if existing is not None:
        _check_is(existing, want)
        return existing
    labels = lbl.resource_labels(agent_id, want.realm, {lbl.NETWORK: want.declared})
    try:
        with engine_call(f"creating network {want.name}"):
            network = client.networks.create(
                want.name, driver="bridge", labels=labels, check_duplicate=True
            )
    except Exception:
        # Another agent (or a concurrent apply) may have created it in between.
        existing = _get(client, want.name)
        if existing is None:
            raise
        _check_is(existing, want)
        return existing
    logger.info("created network %s", want.name, extra={"network": want.name})
    return network


def connect(
    client: docker.DockerClient, network_name: str, container: Container, aliases: Sequence[str]
) -> None:
    """Joins `container` to the network with `aliases`; nothing when already joined."""
    container.reload()
    joined = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
    if network_name in joined:
        return
    with engine_call(f"connecting container {container.name} to network {network_name}"):
        client.networks.get(network_name).connect(container, aliases=list(aliases))


def remove_unused_networks(
    client: docker.DockerClient, agent_id: str, realm: str | None = None
) -> list[str]:
    """Removes this agent's networks that no container uses; returns their names."""
    removed: list[str] = []
    with engine_call("listing Ozwald networks"):
        networks = client.networks.list(
            filters={"label": lbl.label_filters(agent_id, realm=realm)}, greedy=True
        )
    for network in networks:
        if network.attrs.get("Containers"):
            continue
        try:
            with engine_call(f"removing network {network.name}"):
                network.remove()
        except Exception as e:
            # In use after all (a container joined since the listing) or already gone.
            logger.info("network %s not removed: %s", network.name, e)
            continue
        removed.append(str(network.name))
    return removed


def _get(client: docker.DockerClient, name: str) -> Network | None:
    with engine_call(f"looking up network {name}"):
        try:
            network = client.networks.get(name)
        except docker.errors.NotFound:
            return None
    # The engine also matches ids and id prefixes; only an exact name is ours.
    return network if network.name == name else None


def _check_is(network: Network, want: NetworkWant) -> None:
    labels = network.attrs.get("Labels") or {}
    if (
        labels.get(lbl.MANAGED) == lbl.TRUE
        and labels.get(lbl.REALM) == want.realm
        and labels.get(lbl.NETWORK, "") == want.declared
    ):
        return
    what = f"realm {want.realm!r}" + (f", network {want.declared!r}" if want.declared else "")
    if labels.get(lbl.MANAGED) == lbl.TRUE:
        owner = f"Ozwald's realm {labels.get(lbl.REALM)!r}" + (
            f", network {labels.get(lbl.NETWORK)!r}" if labels.get(lbl.NETWORK) else ""
        )
    else:
        owner = "something other than Ozwald"
    raise NameConflictError(
        f"network {want.name} (wanted for {what}) already exists and belongs to {owner}",
        remedy="remove or rename that network, or rename the realm or network in ozwald.yml",
    )

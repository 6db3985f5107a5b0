"""Channels to the orchestrator: a new one for every attempt, with the TLS files read again.

Reading the files at each attempt lets an operator renew the agent's certificate in place
(`ozwald ca issue` over the old files): the next reconnect uses it, no restart needed. A
renewal that cannot be used (unreadable, or naming another host) is logged and the last
good credentials stay in use, since the host id is fixed for the agent's life.
"""

from __future__ import annotations

import logging

import grpc

from ozwald_agent.fleet.config import FleetLinkConfig, LinkTiming
from ozwald_agent.fleet.identity import FleetCredentials, FleetIdentityError, load_credentials
from ozwald_sdk.channel import CHANNEL_OPTIONS

logger = logging.getLogger(__name__)


def link_channel_options(timing: LinkTiming) -> tuple[tuple[str, int], ...]:
    """The channel's options: reconnecting, and HTTP/2 pings that find a dead link.

    grpcio 1.85 sends the keepalive ping but does not end the transport when its ack is
    late (`keepalive_timeout_ms` alone left a partitioned agent unaware for minutes);
    the ping timeout does, so both are set to the same bound.
    """
    timeout_ms = int(timing.keepalive_timeout_s * 1000)
    return (
        *CHANNEL_OPTIONS,
        ("grpc.keepalive_time_ms", int(timing.keepalive_s * 1000)),
        ("grpc.keepalive_timeout_ms", timeout_ms),
        ("grpc.http2.ping_timeout_ms", timeout_ms),
    )


class FleetChannels:
    def __init__(self, config: FleetLinkConfig) -> None:
        self._config = config
        self._credentials: FleetCredentials = config.credentials
        self._refused = ""

    @property
    def host_id(self) -> str:
        return self._credentials.host_id

    def open(self) -> grpc.Channel:
        self._reload()
        return grpc.secure_channel(
            self._config.address,
            self._credentials.channel_credentials(),
            options=link_channel_options(self._config.timing),
        )

    def _reload(self) -> None:
        cfg = self._config
        try:
            fresh = load_credentials(cfg.ca, cfg.cert, cfg.key)
        except FleetIdentityError as e:
            self._refuse(f"{e.message}; keeping the certificate loaded before ({e.remedy})")
            return
        if fresh.host_id != self._credentials.host_id:
            self._refuse(
                f"--fleet-cert {cfg.cert} now names host {fresh.host_id!r}, but this agent "
                f"joined as {self._credentials.host_id!r}; keeping the old certificate "
                "(restart the agent to change its host id)"
            )
            return
        if fresh != self._credentials:
            logger.info("fleet TLS files changed; the link uses the new ones from now on")
        self._credentials = fresh
        self._refused = ""

    def _refuse(self, message: str) -> None:
        if message != self._refused:
            logger.error("%s", message)
        self._refused = message

"""What `ozwald-agent --orchestrator` configures: where, who, and how often."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ozwald_agent.fleet.identity import FleetCredentials


@dataclass(frozen=True)
class LinkTiming:
    """Intervals of the link, in seconds. The heartbeat interval is the orchestrator's
    (Registered.heartbeat_interval); this one is used only when it sends none."""

    heartbeat_s: float = 1.0
    profile_s: float = 30.0
    # Footprints are recorded rarely (a profiling run); reading the table is cheap.
    footprint_poll_s: float = 2.0
    # Status changes arriving within this window go up in one InstanceReport.
    batch_window_s: float = 0.05
    # A stream whose Register is not answered by then is given up and reopened.
    register_timeout_s: float = 10.0
    reconnect_first_s: float = 0.5
    reconnect_max_s: float = 10.0
    # HTTP/2 pings while the stream is open: a link that died without a word (a cable
    # pulled, a partition) is noticed within keepalive + timeout, not the minutes TCP
    # takes. The orchestrator accepts pings every 5 s or more.
    keepalive_s: float = 10.0
    keepalive_timeout_s: float = 5.0


@dataclass(frozen=True)
class FleetLinkConfig:
    """The orchestrator to join (the gRPC target of `HOST:PORT`), the TLS files with what
    was loaded from them at start (checked, so the agent refuses bad files at once), and
    the host's labels."""

    address: str
    ca: Path
    cert: Path
    key: Path
    credentials: FleetCredentials
    labels: dict[str, str] = field(default_factory=dict)
    timing: LinkTiming = field(default_factory=LinkTiming)

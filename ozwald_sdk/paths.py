"""Where Ozwald's processes meet on one host, shared by the agent and its clients."""

from __future__ import annotations

import os
from pathlib import Path

AGENT_SOCKET_NAME = "agent.sock"
ORCHESTRATOR_SOCKET_NAME = "orchestrator.sock"
ROOT_RUNTIME_DIR = Path("/run/ozwald")
ROOT_STATE_DIR = Path("/var/lib/ozwald/agent")
ROOT_ORCHESTRATOR_STATE_DIR = Path("/var/lib/ozwald/orchestrator")


def runtime_dir() -> Path:
    """Directory for sockets: /run/ozwald for root, $XDG_RUNTIME_DIR/ozwald otherwise.

    Without XDG_RUNTIME_DIR (e.g. a bare `su` session) an unprivileged user falls back to
    /tmp/ozwald-UID, which the agent creates with mode 0700.
    """
    if os.geteuid() == 0:
        return ROOT_RUNTIME_DIR
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "ozwald"
    return Path(f"/tmp/ozwald-{os.geteuid()}")


def default_agent_socket() -> Path:
    """The agent's unix socket when neither --socket nor --agent says otherwise."""
    return runtime_dir() / AGENT_SOCKET_NAME


def default_agent_state_dir() -> Path:
    """The agent's state directory: /var/lib/ozwald/agent for root, XDG state home otherwise."""
    if os.geteuid() == 0:
        return ROOT_STATE_DIR
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "ozwald" / "agent"


def default_orchestrator_socket() -> Path:
    """The orchestrator's unix socket (FleetService for local operators) when neither
    --socket nor --orchestrator says otherwise."""
    return runtime_dir() / ORCHESTRATOR_SOCKET_NAME


def default_orchestrator_state_dir() -> Path:
    """The orchestrator's state directory: /var/lib/ozwald/orchestrator for root, XDG state
    home otherwise."""
    if os.geteuid() == 0:
        return ROOT_ORCHESTRATOR_STATE_DIR
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "ozwald" / "orchestrator"

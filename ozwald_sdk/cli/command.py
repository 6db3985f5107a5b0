"""What a subcommand is, and what it gets when it runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.target import resolve_target


@dataclass(frozen=True)
class Invocation:
    """One run of the CLI: the parsed options, and the client they describe."""

    args: argparse.Namespace

    @property
    def json(self) -> bool:
        """Whether to print machine-readable JSON instead of text for people."""
        return bool(self.args.json)

    def agent_client(self) -> AgentClient:
        """A client for the agent named by --agent / OZWALD_AGENT, --timeout and TLS flags."""
        target = resolve_target(
            self.args.agent,
            tls_ca=self.args.tls_ca,
            tls_cert=self.args.tls_cert,
            tls_key=self.args.tls_key,
        )
        return AgentClient(target, timeout=self.args.timeout)


@dataclass(frozen=True)
class Command:
    """A subcommand: its name and aliases, one line of help, and what it does.

    `run` returns the exit code and raises OzwaldError for anything that went wrong;
    `main` turns that into `error:` / `hint:` lines and the error's exit code.
    `arguments` adds the subcommand's own options and positionals, if it has any.
    """

    name: str
    help: str
    run: Callable[[Invocation], int]
    aliases: tuple[str, ...] = ()
    arguments: Callable[[argparse.ArgumentParser], None] | None = None

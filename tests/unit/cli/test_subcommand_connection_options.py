"""Commands with subcommands (secrets, volumes, webhooks) take the connection options
after the subcommand too, as every other command does: the address given is the one
dialled, wherever it stands on the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ozwald_sdk.cli.main import main
from ozwald_sdk.errors import ExitCode

COMMANDS = [["secrets", "list"], ["volumes", "list"], ["webhooks", "deliveries"]]


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_the_agent_address_is_honoured_before_and_after_the_subcommand(
    command: list[str], where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-agent-here.sock"
    connection = ["--agent", str(missing), "--timeout", "2"]
    argv = connection + command if where == "before" else command + connection

    code = main(argv)

    assert code == ExitCode.AGENT_UNREACHABLE
    assert str(missing) in capsys.readouterr().err

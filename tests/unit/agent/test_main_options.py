"""Start-up option checks of `ozwald-agent` that refuse before anything is created."""

from __future__ import annotations

from pathlib import Path

import pytest

from ozwald_agent.main import EXIT_USAGE, main


@pytest.mark.parametrize("ttl", ["0", "-5", "nan", "inf"])
def test_a_token_lifetime_that_is_not_positive_and_finite_is_a_usage_error(
    ttl: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "--secrets-token-ttl",
                ttl,
                "--socket",
                str(tmp_path / "agent.sock"),
                "--state-dir",
                str(state),
                "--secrets-dir",
                str(tmp_path / "secrets"),
                "--log-format",
                "text",
            ]
        )
    assert exited.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--secrets-token-ttl" in err
    assert "positive" in err
    # Refused before the agent started: no state, no socket, no secrets directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == []

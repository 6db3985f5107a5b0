"""`ozwald config validate|schema|show` and `ozwald list_configured_services`, argv to output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ozwald_sdk.cli.main import main
from ozwald_sdk.config import SCHEMA_PATH
from ozwald_sdk.errors import ExitCode
from ozwald_sdk.testing import FakeAgent, serve_agent
from tests.unit.config.support import ConfigWriter, host, position

VALID = """\
version: 1
realms:
  default:
    portals:
      api: {service: embed, host_port: 8080}
      lan: {service: embed, host_port: 9090, host_ip: 0.0.0.0, container_port: 9000}
    services:
      embed:
        image: embed:base
        connector_port: 8000
        varieties:
          nvidia: {image: embed:cuda}
          cpu: {}
        profiles:
          fast: {environment: {FAST: "1"}}
      keeper: {image: keeper, persistent: true}
"""

INVALID = """\
version: 1
realms:
  default:
    services:
      embed:
        imge: x
        depends_on: [keeper]
"""

# No agent answers here: commands that read only the config must not try it.
NO_AGENT = "unix:///nonexistent/ozwald-agent.sock"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--agent", NO_AGENT, *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def valid(write: ConfigWriter) -> Path:
    return write(VALID)


def test_validate_prints_a_summary(capsys: pytest.CaptureFixture[str], valid: Path) -> None:
    code, out, err = _run(capsys, "config", "validate", "--config", str(valid))
    assert (code, err) == (ExitCode.OK, "")
    assert out == f"{valid}: valid (1 realm, 2 services, 2 portals)\n"


def test_validate_finds_the_file_from_the_environment_then_the_directory(
    capsys: pytest.CaptureFixture[str],
    valid: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OZWALD_CONFIG", str(valid))
    monkeypatch.chdir(tmp_path / "..")
    assert _run(capsys, "config", "validate")[1].startswith(f"{valid}: valid")
    monkeypatch.delenv("OZWALD_CONFIG")
    monkeypatch.chdir(tmp_path)
    assert (
        _run(capsys, "config", "validate")[1]
        == "ozwald.yml: valid (1 realm, 2 services, 2 portals)\n"
    )


def test_validate_lists_every_problem_and_exits_10(
    capsys: pytest.CaptureFixture[str], write: ConfigWriter
) -> None:
    path = write(INVALID)
    code, out, err = _run(capsys, "config", "validate", "--config", str(path))
    assert (code, out) == (ExitCode.CONFIG_INVALID, "")
    assert code == 10
    assert err.splitlines() == [
        f"error: {path} is not valid (2 problems):",
        f"{position(path, 'imge')}: realms.default.services.embed.imge: unknown key 'imge'; "
        "did you mean 'image'?",
        f"{position(path, 'keeper')}: realms.default.services.embed.depends_on[0]: no service "
        "'keeper' in realm 'default'",
        "hint: fix the problems above, then check with `ozwald config validate`",
    ]


def test_validate_json(
    capsys: pytest.CaptureFixture[str], valid: Path, write: ConfigWriter
) -> None:
    code, out, _ = _run(capsys, "config", "validate", "--config", str(valid), "--json")
    assert code == ExitCode.OK
    assert json.loads(out) == {
        "valid": True,
        "file": str(valid),
        "realms": 1,
        "services": 2,
        "portals": 2,
        "diagnostics": [],
    }
    path = write(INVALID)
    code, out, err = _run(capsys, "--json", "config", "validate", "--config", str(path))
    assert (code, err) == (ExitCode.CONFIG_INVALID, "")
    report = json.loads(out)
    assert report["valid"] is False
    assert report["diagnostics"][0] == {
        "file": str(path),
        "line": 6,
        "column": 9,
        "path": "realms.default.services.embed.imge",
        "message": "unknown key 'imge'",
        "suggestion": "image",
    }


def test_a_missing_file_is_an_invalid_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.yml"
    code, _, err = _run(capsys, "config", "validate", "--config", str(missing))
    assert code == ExitCode.CONFIG_INVALID
    assert err.splitlines()[0] == (
        f"error: cannot read the config file {missing}: No such file or directory"
    )
    assert "hint: pass --config PATH or set OZWALD_CONFIG" in err


def test_schema_prints_the_committed_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "config", "schema")
    assert code == ExitCode.OK
    assert out == SCHEMA_PATH.read_text()


def test_show_prints_the_effective_spec_as_yaml(
    capsys: pytest.CaptureFixture[str], valid: Path
) -> None:
    code, out, err = _run(capsys, "config", "show", "embed[nvidia][fast]", "--config", str(valid))
    assert (code, err) == (ExitCode.OK, "")
    shown = yaml.safe_load(out)
    assert (shown["variety"], shown["profile"], shown["image"]) == ("nvidia", "fast", "embed:cuda")
    assert shown["environment"] == {"FAST": "1"}
    assert len(shown["fingerprint"]) == 64


def test_show_without_a_host_chooses_cpu_and_says_so(
    capsys: pytest.CaptureFixture[str], valid: Path
) -> None:
    code, out, err = _run(capsys, "config", "show", "embed", "--config", str(valid), "--json")
    assert code == ExitCode.OK
    assert json.loads(out)["variety"] == "cpu"
    assert err == (
        "note: no host profile, so variety 'cpu' was chosen as for a host without GPUs; "
        "name one ('embed[nvidia]') or pass --ask-agent\n"
    )


def test_show_can_ask_the_agent_for_its_host(
    capsys: pytest.CaptureFixture[str], valid: Path
) -> None:
    with serve_agent(FakeAgent(profile=host(nvidia=True))) as address:
        code = main(
            ["config", "show", "embed", "--config", str(valid), "--ask-agent", "--agent", address]
        )
    out, err = capsys.readouterr()
    assert (code, err) == (ExitCode.OK, "")
    assert yaml.safe_load(out)["variety"] == "nvidia"


def test_show_refuses_a_bad_selector(capsys: pytest.CaptureFixture[str], valid: Path) -> None:
    code, out, err = _run(capsys, "config", "show", "embed[fast]", "--config", str(valid))
    assert (code, out) == (ExitCode.CONFIG_INVALID, "")
    assert err.splitlines()[:2] == [
        "error: invalid service selector:",
        "embed[fast]: 'fast' is a profile of service 'embed', not a variety: write "
        "'embed[][fast]' (the first brackets name the variety)",
    ]
    code, out, _ = _run(capsys, "config", "show", "embed[fast]", "--config", str(valid), "--json")
    assert code == ExitCode.CONFIG_INVALID
    assert json.loads(out)["diagnostics"][0]["file"] is None


def test_list_configured_services(capsys: pytest.CaptureFixture[str], valid: Path) -> None:
    code, out, err = _run(capsys, "list_configured_services", "--config", str(valid))
    assert (code, err) == (ExitCode.OK, "")
    assert out.splitlines() == [
        "  REALM    SERVICE  VARIETIES   PROFILES  PERSISTENT  PORTALS",
        "  default  embed    nvidia,cpu  fast      no          8080->8000,0.0.0.0:9090->9000",
        "  default  keeper   -           -         yes         -",
    ]


def test_list_configured_services_json(capsys: pytest.CaptureFixture[str], valid: Path) -> None:
    code, out, _ = _run(capsys, "list_configured_services", "--config", str(valid), "--json")
    assert code == ExitCode.OK
    embed, keeper = json.loads(out)
    assert embed == {
        "realm": "default",
        "name": "embed",
        "varieties": ["nvidia", "cpu"],
        "profiles": ["fast"],
        "persistent": False,
        "portals": [
            {"name": "api", "host_ip": "127.0.0.1", "host_port": 8080, "container_port": 8000},
            {"name": "lan", "host_ip": "0.0.0.0", "host_port": 9090, "container_port": 9000},
        ],
    }
    assert keeper["persistent"] is True


def test_list_configured_services_of_an_invalid_config(
    capsys: pytest.CaptureFixture[str], write: ConfigWriter
) -> None:
    path = write(INVALID)
    code, out, err = _run(capsys, "list_configured_services", "--config", str(path))
    assert (code, out) == (ExitCode.CONFIG_INVALID, "")
    assert err.startswith(f"error: {path} is not valid (2 problems):\n")


def test_config_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["config"])
    assert raised.value.code == ExitCode.USAGE
    assert "ACTION" in capsys.readouterr().err


@pytest.fixture(autouse=True)
def _no_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("OZWALD_CONFIG", raising=False)
    yield

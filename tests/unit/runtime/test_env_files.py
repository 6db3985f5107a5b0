"""Env files read exactly as `docker run --env-file` reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ozwald_agent.runtime.env_files import parse_env_text, read_env_files
from ozwald_agent.runtime.errors import EnvFileError


def test_the_docker_env_file_rules() -> None:
    text = "\n".join(
        [
            "\ufeffFIRST=1",  # a byte order mark is dropped
            "# a comment",
            "   # an indented comment",
            "",
            "   ",
            "  INDENTED=yes",
            'QUOTED="kept as is"',
            "SINGLE='also kept'",
            "EQUALS=a=b=c",
            "HASH=value # not a comment",
            "TRAILING=space   ",
            "EMPTY=",
            "CRLF=windows\r",
            "$STRANGE.name=fine",
        ]
    )

    assert parse_env_text(text, "/etc/app.env") == {
        "FIRST": "1",
        "INDENTED": "yes",
        "QUOTED": '"kept as is"',
        "SINGLE": "'also kept'",
        "EQUALS": "a=b=c",
        "HASH": "value # not a comment",
        "TRAILING": "space   ",
        "EMPTY": "",
        "CRLF": "windows",
        "$STRANGE.name": "fine",
    }


def test_a_bare_name_sets_nothing_unless_passed_through() -> None:
    text = "HF_TOKEN\nOTHER=1\n"

    assert parse_env_text(text, "/x.env") == {"OTHER": "1"}
    assert parse_env_text(text, "/x.env", passthrough={"HF_TOKEN": "hf_abc"}) == {
        "HF_TOKEN": "hf_abc",
        "OTHER": "1",
    }


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("OK=1\nBAD KEY=1\n", 2, "contains whitespace"),
        ("OK=1\n\nKEY =1\n", 3, "contains whitespace"),
        ("=value\n", 1, "no variable name"),
        ("A=1\nB\tC\n", 2, "contains whitespace"),
    ],
)
def test_malformed_lines_are_refused_with_file_and_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(EnvFileError, match=problem) as caught:
        parse_env_text(text, "/srv/app.env")

    assert caught.value.line == line
    assert caught.value.path == "/srv/app.env"
    assert f"/srv/app.env:{line}" in str(caught.value)


def test_later_files_win(tmp_path: Path) -> None:
    first = tmp_path / "base.env"
    second = tmp_path / "site.env"
    first.write_text("MODEL=small\nPORT=8000\n")
    second.write_text("MODEL=large\n")

    assert read_env_files([str(first), str(second)]) == {"MODEL": "large", "PORT": "8000"}


def test_unreadable_files_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(EnvFileError, match="no such file on the agent's host"):
        read_env_files([str(tmp_path / "missing.env")])
    with pytest.raises(EnvFileError, match="not absolute"):
        read_env_files(["relative.env"])
    binary = tmp_path / "latin1.env"
    binary.write_bytes(b"A=1\nB=caf\xe9\n")
    with pytest.raises(EnvFileError, match="not valid UTF-8") as caught:
        read_env_files([str(binary)])
    assert caught.value.line == 2

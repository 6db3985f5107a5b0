"""YAML-level problems: syntax errors, repeated keys, anchors and merge keys, odd keys."""

from __future__ import annotations

from pathlib import Path

from ozwald_sdk.config import load_config, resolve
from tests.unit.config.support import ConfigWriter, position, rendered


def test_a_syntax_error_names_its_line_and_column(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services: {echo: {image: x}
        """
    )
    [problem] = rendered(path)
    assert problem.startswith(f"{path}:5:1: not valid YAML: ")
    assert "expected ',' or '}'" in problem


def test_a_repeated_key_is_an_error_at_the_second_one(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo:
                image: first
                connector_port: 80
                image: second
        """
    )
    assert rendered(path) == [
        f"{position(path, 'image', 2)}: realms.default.services.echo.image: duplicate key "
        "'image' (first at line 6, column 9); YAML would silently keep only the last one"
    ]


def test_repeated_keys_are_all_reported_with_other_problems(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        version: 1
        realms:
          default:
            services:
              echo: {image: x, imag: y}
              echo: {image: z}
        """
    )
    problems = rendered(path)
    assert [p.split(": ")[0] for p in problems] == [
        position(path, "version", 2),
        position(path, "echo", 2),
    ]


def test_an_empty_file_says_what_it_should_hold(write: ConfigWriter) -> None:
    path = write("# nothing yet\n")
    assert rendered(path) == [f"{path}: the file is empty: expected version: 1 and realms"]


def test_a_missing_file_is_a_config_error_without_a_line(tmp_path: Path) -> None:
    path = tmp_path / "absent.yml"
    problems = rendered(path)
    assert problems == [f"{path}: cannot read: No such file or directory"]


def test_anchors_merge_keys_and_x_keys_reuse_values(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        x-common: &common
          image: base:1
          environment: {A: "1"}
        realms:
          default:
            services:
              one:
                <<: *common
              two:
                <<: *common
                image: other:2
        """
    )
    config = load_config(path)
    assert resolve(config, "one").image == "base:1"
    assert resolve(config, "two").image == "other:2"
    assert resolve(config, "two").environment == {"A": "1"}


def test_a_merge_key_does_not_count_as_a_repeat(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        x-a: &a {image: a}
        x-b: &b {<<: *a, connector_port: 1}
        realms:
          default:
            services:
              one: {<<: *b, image: one}
              two: {<<: *b}
        """
    )
    config = load_config(path)
    assert resolve(config, "one").image == "one"
    assert resolve(config, "two").connector_port == 1


def test_keys_stay_text_even_when_yaml_would_read_a_boolean(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo:
                image: x
                labels: {yes: "on", 8080: port}
                environment: {"on": no}
        """
    )
    spec = resolve(load_config(path), "echo")
    assert spec.labels == {"yes": "on", "8080": "port"}
    # Values are YAML's: an unquoted no is false, written to the container as "false".
    assert spec.environment == {"on": "false"}

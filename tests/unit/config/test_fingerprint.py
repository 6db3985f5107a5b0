"""The fingerprint tells "the effective spec changed": stable for equal specs, new otherwise."""

from __future__ import annotations

import re

import pytest

from ozwald_sdk.config import load_config, resolve
from ozwald_sdk.fingerprint import fingerprint
from tests.unit.config.support import ConfigWriter

BASE = """\
version: 1
realms:
  default:
    volumes: {data: {type: named}}
    portals: {api: {service: echo, host_port: 8080}}
    services:
      helper: {image: h, persistent: true}
      echo:
        image: echo:1
        command: [serve]
        connector_port: 80
        environment: {A: "1", B: "2"}
        labels: {team: x}
        volumes: ["data:/data"]
        depends_on: [helper]
        health_check: {http: {path: /health}, interval: 10s}
        resources: {memory: 1GiB, cpus: 1}
        restart: {policy: on-failure}
        profiles: {fast: {}}
"""


def _fingerprint(write: ConfigWriter, text: str, selector: str = "echo") -> str:
    return resolve(load_config(write(text)), selector).fingerprint()


def test_equal_specs_have_equal_fingerprints(write: ConfigWriter) -> None:
    first = _fingerprint(write, BASE)
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert _fingerprint(write, BASE) == first
    # Key order and spelling of equal values do not matter.
    reordered = BASE.replace('environment: {A: "1", B: "2"}', "environment: {B: 2, A: 1}")
    reordered = reordered.replace("memory: 1GiB", "memory: 1073741824")
    reordered = reordered.replace("interval: 10s", "interval: 10")
    assert _fingerprint(write, reordered) == first


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("image: echo:1", "image: echo:2"),
        ("command: [serve]", "command: [serve, --debug]"),
        ("connector_port: 80", "connector_port: 81"),
        ('A: "1"', 'A: "one"'),
        ("labels: {team: x}", "labels: {team: y}"),
        ('"data:/data"', '"data:/data:ro"'),
        ("depends_on: [helper]", "depends_on: []"),
        ("interval: 10s", "interval: 11s"),
        ("memory: 1GiB", "memory: 2GiB"),
        ("cpus: 1", "cpus: 1.5"),
        ("policy: on-failure", "policy: always"),
        ("host_port: 8080", "host_port: 8081"),
        ("data: {type: named}", "data: {type: named, name: shared-data}"),
    ],
)
def test_any_change_changes_the_fingerprint(write: ConfigWriter, old: str, new: str) -> None:
    assert old in BASE
    assert _fingerprint(write, BASE.replace(old, new)) != _fingerprint(write, BASE)


def test_the_profile_is_part_of_the_spec(write: ConfigWriter) -> None:
    assert _fingerprint(write, BASE, "echo[][fast]") != _fingerprint(write, BASE)


def test_the_fingerprint_is_the_one_the_agent_computes(write: ConfigWriter) -> None:
    spec = resolve(load_config(write(BASE)), "echo")
    assert spec.fingerprint() == fingerprint(spec.to_service_spec())


def test_a_field_added_later_and_left_unset_does_not_change_old_fingerprints(
    write: ConfigWriter,
) -> None:
    spec = resolve(load_config(write(BASE)), "echo")
    message = spec.to_service_spec()
    # Defaults are left out of the canonical form: what an unset new field would be.
    message.ClearField("persistent")
    assert fingerprint(message) == spec.fingerprint()

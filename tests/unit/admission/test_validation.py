"""Malformed desired sets are refused with what is wrong, and claim nothing."""

from __future__ import annotations

import pytest
from ozwald.common.v1 import service_spec_pb2

from tests.unit.admission.builders import (
    GB,
    action,
    host,
    kinds,
    make_plan,
    reasons,
    service,
)


def test_a_service_named_twice_is_refused_and_the_first_one_counts() -> None:
    result = make_plan([service("a", memory=GB), service("a", memory=2 * GB)])

    assert reasons(result) == [("a", "DUPLICATE_SERVICE")]
    assert action(result, "a").resources.memory.accounted_bytes == GB


def _count_mismatch() -> service_spec_pb2.ServiceSpec:
    spec = service("s", device_ids=["0", "1"])
    spec.resources.gpus.count = 3
    return spec


def _relative_bind() -> service_spec_pb2.ServiceSpec:
    spec = service("s")
    spec.volumes.add(kind=service_spec_pb2.VOLUME_KIND_BIND, source="models", target="/m")
    return spec


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (_count_mismatch(), "count is 3 but 2 device ids are listed"),
        (service("s", device_ids=["0", "0"]), "lists 0 more than once"),
        (service("s", env_files=["app.env"]), "env file 'app.env' is not an absolute path"),
        (_relative_bind(), "has source 'models', not an absolute host path"),
        (service("s", ports=[0]), "host port 0; it must be between 1 and 65535"),
        (service("s", ports=[70000]), "host port 70000"),
        (service("s", image=""), "no image"),
        (service("s", cpus=-1), "resources.cpus must be a number >= 0"),
        (service("s", cpus=float("nan")), "resources.cpus must be a number >= 0"),
        (service_spec_pb2.ServiceSpec(realm="r", image="i"), "no realm or no name"),
        (
            service_spec_pb2.ServiceSpec(realm="r", name="s", image="i", persistent=True),
            "persistent",
        ),
    ],
)
def test_malformed_specs_are_refused_with_what_is_wrong(
    spec: service_spec_pb2.ServiceSpec, words: str
) -> None:
    result = make_plan([spec])

    assert [r for _, r in reasons(result)] == ["INVALID_SPEC"]
    assert words in result.refusals[0].message
    assert "ozwald config validate" in result.refusals[0].remedy


def test_a_malformed_spec_stays_in_the_diff_but_claims_nothing() -> None:
    broken = service("broken", memory=10 * GB, ports=[8080], env_files=["relative.env"])

    result = make_plan(
        [broken, service("web", ports=[8080], depends_on=["broken"])],
        on=host(available_gib=12),
    )

    assert kinds(result) == {"broken": "START", "web": "START"}
    # Only the malformed spec is refused: its port and memory were never claimed, and it
    # still satisfies depends_on.
    assert reasons(result) == [("broken", "INVALID_SPEC")]
    assert result.budget.memory.claimed_bytes == 0

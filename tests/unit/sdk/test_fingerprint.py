"""Fingerprints: equal for equal specs, different for any change, stable across releases."""

from __future__ import annotations

import hashlib

from google.protobuf import duration_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_sdk.fingerprint import canonical_form, fingerprint
from tests.unit.admission.builders import GB, service


def _spec() -> service_spec_pb2.ServiceSpec:
    spec = service(
        "llm",
        variety="nvidia",
        profile="fast",
        gpus=1,
        vram=40 * GB,
        cpus=1.5,
        environment={"B": "2", "A": "1"},
        ports=[8000],
    )
    spec.health_check.http.path = "/health"
    spec.health_check.interval.CopyFrom(duration_pb2.Duration(seconds=5))
    return spec


def test_the_fingerprint_of_a_known_spec_never_changes() -> None:
    # A different value here restarts every service after an upgrade: change it only with
    # a new form version and a migration of the recorded fingerprints.
    form = (
        b'{"environment":{"A":"1","B":"2"},"health_check":{"http":{"path":"/health"},'
        b'"interval":"5s"},"image":"ozwald/tiny:local","name":"llm","portals":[{'
        b'"container_port":80,"host_ip":"127.0.0.1","host_port":8000,"name":"p0"}],'
        b'"profile":"fast","realm":"default","resources":{"cpus":1.5,"gpus":{"count":1,'
        b'"vram_per_gpu_bytes":"40000000000"}},"variety":"nvidia"}'
    )

    assert canonical_form(_spec()) == form
    assert fingerprint(_spec()) == hashlib.sha256(b"ozwald.fingerprint.v1\n" + form).hexdigest()
    assert fingerprint(_spec()) == (
        "ca00ebb873bc6a121be71966c3680d122e20a15daeac30aa6974ad5e9847f14c"
    )


def test_map_order_does_not_matter() -> None:
    reordered = _spec()
    reordered.environment.clear()
    reordered.environment["A"] = "1"
    reordered.environment["B"] = "2"

    assert fingerprint(reordered) == fingerprint(_spec())


def test_any_change_changes_the_fingerprint() -> None:
    changed = _spec()
    changed.resources.gpus.vram_per_gpu_bytes += 1
    labelled = _spec()
    labelled.labels["team"] = "ml"

    assert len({fingerprint(_spec()), fingerprint(changed), fingerprint(labelled)}) == 3


def test_the_canonical_form_is_sorted_compact_json_without_defaults() -> None:
    form = canonical_form(service_spec_pb2.ServiceSpec(realm="r", name="n", image="i"))

    assert form == b'{"image":"i","name":"n","realm":"r"}'

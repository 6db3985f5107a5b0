"""The ozwald.* label scheme: written on create, read back when a restarted agent adopts."""

from __future__ import annotations

from ozwald_agent.runtime import labels as lbl
from ozwald_agent.runtime.labels import ServiceLabels

WEB = ServiceLabels(
    agent_id="host-a",
    realm="main",
    service="web",
    fingerprint="9c1e",
    variety="nvidia",
    profile="fast",
    persistent=True,
    gpus=("GPU-a", "GPU-b"),
)


def test_labels_round_trip() -> None:
    written = WEB.to_labels()

    assert written["ozwald.gpus"] == "GPU-a,GPU-b"
    assert written["ozwald.persistent"] == "true"
    assert ServiceLabels.from_labels(written) == WEB


def test_other_labels_beside_ours_are_ignored() -> None:
    written = {**WEB.to_labels(), "maintainer": "ops", "dev.ozwald.tiny.content-hash": "abc"}

    assert ServiceLabels.from_labels(written) == WEB


def test_defaults_read_back_as_empty() -> None:
    bare = ServiceLabels(agent_id="a", realm="r", service="s", fingerprint="f")

    parsed = ServiceLabels.from_labels(bare.to_labels())

    assert parsed == bare
    assert parsed is not None
    assert parsed.gpus == ()
    assert parsed.persistent is False


def test_a_container_that_is_not_ours_has_no_service_labels() -> None:
    assert ServiceLabels.from_labels(None) is None
    assert ServiceLabels.from_labels({}) is None
    assert ServiceLabels.from_labels({"ozwald.service": "web"}) is None
    assert ServiceLabels.from_labels({**WEB.to_labels(), "ozwald.managed": "false"}) is None


def test_a_managed_container_missing_a_required_label_is_not_adopted() -> None:
    damaged = WEB.to_labels()
    del damaged["ozwald.fingerprint"]

    assert ServiceLabels.from_labels(damaged) is None


def test_filters_select_one_agent_and_optionally_a_realm_and_service() -> None:
    assert lbl.label_filters("host-a") == ["ozwald.managed=true", "ozwald.agent=host-a"]
    assert lbl.label_filters("host-a", realm="main", service="web") == [
        "ozwald.managed=true",
        "ozwald.agent=host-a",
        "ozwald.realm=main",
        "ozwald.service=web",
    ]


def test_networks_and_volumes_carry_ownership_labels() -> None:
    assert lbl.resource_labels("host-a", "main", {lbl.NETWORK: "backend"}) == {
        "ozwald.managed": "true",
        "ozwald.agent": "host-a",
        "ozwald.realm": "main",
        "ozwald.network": "backend",
    }


def test_reserved_keys_are_the_ozwald_namespace() -> None:
    assert lbl.reserved_keys(["team", "ozwald.agent", "ozwaldish", "ozwald.x"]) == [
        "ozwald.agent",
        "ozwald.x",
    ]

"""Image, env files and bind sources must exist on the host for services that start."""

from __future__ import annotations

from ozwald.common.v1 import service_spec_pb2

from tests.unit.admission.builders import (
    FakeHostFacts,
    make_plan,
    reasons,
    running,
    service,
)


def test_a_missing_image_is_refused_and_never_pulled() -> None:
    result = make_plan([service("web", image="vllm/vllm-openai:v0.9")])

    assert reasons(result) == [("web", "IMAGE_MISSING")]
    refusal = result.refusals[0]
    assert refusal.subject == "vllm/vllm-openai:v0.9"
    assert "never pulls" in refusal.message
    assert "docker pull vllm/vllm-openai:v0.9" in refusal.remedy


def test_missing_env_files_and_bind_sources_are_each_refused() -> None:
    facts = FakeHostFacts(paths={"/etc/ozwald/present.env", "/srv/models"})
    spec = service(
        "web",
        env_files=["/etc/ozwald/present.env", "/etc/ozwald/absent.env"],
        binds=["/srv/models", "/srv/cache"],
    )

    result = make_plan([spec], facts=facts)

    assert reasons(result) == [("web", "ENV_FILE_MISSING"), ("web", "BIND_SOURCE_MISSING")]
    assert [r.subject for r in result.refusals] == ["/etc/ozwald/absent.env", "/srv/cache"]
    assert result.refusals[1].message == (
        "bind mount source /srv/cache (for /mnt/srv/cache) does not exist on this host"
    )


def test_named_and_tmpfs_volumes_need_nothing_on_the_host() -> None:
    spec = service("web")
    spec.volumes.add(kind=service_spec_pb2.VOLUME_KIND_NAMED, source="cache", target="/cache")
    spec.volumes.add(kind=service_spec_pb2.VOLUME_KIND_TMPFS, target="/tmp")
    facts = FakeHostFacts()

    result = make_plan([spec], facts=facts)

    assert result.admitted, result.refusals
    assert facts.asked == [("image", "ozwald/tiny:local")]


def test_kept_services_are_not_checked_again() -> None:
    # The image was removed after the service started: the kept service runs on.
    kept = service("kept", image="gone:1", env_files=["/gone.env"])
    facts = FakeHostFacts()

    result = make_plan([kept], [running(kept)], facts=facts)

    assert result.admitted
    assert facts.asked == []

"""What an arriving service needs to find on the host: its image, env files, bind sources.

Admission never pulls an image nor creates a bind source: a missing one is refused, so
that applying a plan does not depend on a registry or guess at a path's owner and mode.
Named volumes are created when missing and tmpfs needs nothing, so neither is checked.
"""

from __future__ import annotations

from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.admission.facts import HostFacts
from ozwald_agent.admission.keys import key_of
from ozwald_agent.admission.refusals import refusal


def check_host(spec: service_spec_pb2.ServiceSpec, facts: HostFacts) -> list[plan_pb2.Refusal]:
    key = key_of(spec)
    refused: list[plan_pb2.Refusal] = []
    if spec.image and not facts.image_present(spec.image):
        refused.append(
            refusal(
                key,
                plan_pb2.REFUSAL_REASON_IMAGE_MISSING,
                f"image {spec.image!r} is not present on this host (admission never pulls)",
                f"pull, load or build it on the host (`docker pull {spec.image}`, "
                "`docker load`, `docker build`), or fix the image reference",
                subject=spec.image,
            )
        )
    for path in spec.env_files:
        if not facts.path_exists(path):
            refused.append(
                refusal(
                    key,
                    plan_pb2.REFUSAL_REASON_ENV_FILE_MISSING,
                    f"env file {path} does not exist on this host",
                    "create the file on the agent's host, or remove it from env_files",
                    subject=path,
                )
            )
    for volume in spec.volumes:
        if volume.kind == service_spec_pb2.VOLUME_KIND_BIND and not facts.path_exists(
            volume.source
        ):
            refused.append(
                refusal(
                    key,
                    plan_pb2.REFUSAL_REASON_BIND_SOURCE_MISSING,
                    f"bind mount source {volume.source} (for {volume.target}) does not exist "
                    "on this host",
                    "create it on the agent's host with the owner and mode the container "
                    "expects, or fix the volume's source",
                    subject=volume.source,
                )
            )
    return refused

"""Ozwald's built-in ${OZWALD_*} variables in commands: values, precedence, errors."""

from __future__ import annotations

from pathlib import Path

from ozwald_sdk.config import load_config, resolve
from ozwald_sdk.config.interpolate import BUILTIN_VARIABLES
from tests.unit.config.support import ConfigWriter, position, rendered

DOCS = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
CHAT = "realms.default.services.chat"

SERVICE = """\
version: 1
realms:
  default:
    services:
      chat:
        image: x
        environment: {MAX_LEN: 4096}
        command: ["--tp=${OZWALD_GPU_COUNT}", "--who=${OZWALD_REALM}/${OZWALD_SERVICE}",
                  "--as=${OZWALD_VARIETY}:${OZWALD_PROFILE}", "--max=${MAX_LEN}"]
        health_check: {command: [check, "${OZWALD_GPU_COUNT}"]}
        resources: {gpus: {count: 1}}
        varieties:
          nvidia: {}
          cpu: {resources: {gpus: null}}
        profiles:
          tp2: {resources: {gpus: {count: 2}}}
          pinned: {resources: {gpus: {ids: [GPU-a, GPU-b, GPU-c]}}}
"""


def test_the_gpu_count_follows_the_effective_spec(write: ConfigWriter) -> None:
    config = load_config(write(SERVICE))
    assert resolve(config, "chat[nvidia]").command == (
        "--tp=1",
        "--who=default/chat",
        "--as=nvidia:",
        "--max=4096",
    )
    tp2 = resolve(config, "chat[nvidia][tp2]")
    assert tp2.command is not None and tp2.command[:3] == (
        "--tp=2",
        "--who=default/chat",
        "--as=nvidia:tp2",
    )
    assert tp2.health_check is not None and tp2.health_check.command == ("check", "2")
    pinned = resolve(config, "chat[nvidia][pinned]")
    assert pinned.command is not None and pinned.command[0] == "--tp=3"
    cpu = resolve(config, "chat[cpu]")
    assert cpu.command is not None and cpu.command[0] == "--tp=0"


def test_built_ins_are_not_put_in_the_containers_environment(write: ConfigWriter) -> None:
    spec = resolve(load_config(write(SERVICE)), "chat[nvidia][tp2]")
    assert spec.environment == {"MAX_LEN": "4096"}
    assert "OZWALD_GPU_COUNT" not in spec.to_service_spec().environment


def test_a_service_without_varieties_has_an_empty_variety(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              chat:
                image: x
                command: ["${OZWALD_VARIETY}|${OZWALD_PROFILE}|${OZWALD_GPU_COUNT}"]
        """
    )
    assert resolve(load_config(path), "chat").command == ("||0",)


def test_the_environment_may_not_set_a_built_in(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              chat:
                image: x
                command: ["--tp=${OZWALD_GPU_COUNT}"]
                profiles:
                  odd: {environment: {OZWALD_GPU_COUNT: 8}}
        """
    )
    assert rendered(path) == [
        f"{position(path, ': 8}', skip=2)}: {CHAT}.profiles.odd.environment."
        "OZWALD_GPU_COUNT: service 'chat' (profile odd) sets OZWALD_GPU_COUNT, the name of a "
        "built-in variable: rename it (Ozwald sets ${OZWALD_GPU_COUNT} itself, from the "
        "effective spec)"
    ]


def test_an_unknown_built_in_is_a_located_error_with_a_suggestion(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              chat:
                image: x
                command: [serve, "--tp=${OZWALD_GPUS}"]
        """
    )
    names = ", ".join(BUILTIN_VARIABLES)
    assert rendered(path) == [
        f"{position(path, '[serve')}: {CHAT}.command: service 'chat' refers to "
        f"${{OZWALD_GPUS}}, which is not a built-in variable (they are {names}; write $$ "
        "for a literal $); did you mean 'OZWALD_GPU_COUNT'?"
    ]


def test_every_built_in_is_documented() -> None:
    text = DOCS.read_text()
    for name in BUILTIN_VARIABLES:
        assert f"`{name}`" in text, name

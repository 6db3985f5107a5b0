"""What only the merged spec can show: GPUs vs variety, health checks, ${VAR}, profiles."""

from __future__ import annotations

import pytest

from ozwald_sdk.config import ConfigInvalidError, load_config, resolve
from tests.unit.config.support import ConfigWriter, position, rendered

ECHO = "realms.default.services.echo"


def test_a_cpu_variety_that_inherits_gpus_is_refused_where_they_were_asked(
    write: ConfigWriter,
) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo:
                image: x
                resources: {gpus: {count: 1}}
                varieties: {nvidia: {}, cpu: {}}
        """
    )
    assert rendered(path) == [
        f"{position(path, '1}')}: {ECHO}.resources.gpus.count: service 'echo' (variety cpu) "
        "asks for 1 GPU(s): a cpu variety runs without GPUs (set resources.gpus: null in the "
        "cpu variety to drop the base's request)"
    ]


def test_gpu_vendor_must_match_the_variety_and_be_known(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo:
                image: x
                varieties:
                  nvidia: {resources: {gpus: {count: 1, vendor: amd}}}
              bare:
                image: x
                resources: {gpus: {count: 2}}
        """
    )
    assert rendered(path) == [
        f"{position(path, 'amd')}: {ECHO}.varieties.nvidia.resources.gpus.vendor: service "
        "'echo' (variety nvidia) asks for amd GPUs, but the nvidia variety runs on nvidia GPUs",
        f"{position(path, '{count: 2')}: realms.default.services.bare.resources.gpus: "
        "service 'bare' asks for GPUs without a vendor: set resources.gpus.vendor (nvidia or "
        "amd), or define nvidia/amdgpu varieties",
    ]


def test_gpu_count_and_ids_must_agree(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo:
                image: x
                resources: {gpus: {vendor: nvidia, count: 2, ids: [0]}}
        """
    )
    assert rendered(path) == [
        f"{position(path, '2,')}: {ECHO}.resources.gpus.count: service 'echo' asks for 2 "
        "GPU(s) but names 1 in ids"
    ]


def test_gpu_ids_alone_set_the_count(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo:
                image: x
                resources: {gpus: {vendor: nvidia, ids: [0, GPU-1234]}}
        """
    )
    gpus = resolve(load_config(path), "echo").resources.gpus
    assert gpus is not None
    assert (gpus.count, gpus.ids) == (2, ("0", "GPU-1234"))


def test_health_checks_need_exactly_one_probe_and_a_port(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo:
                image: x
                health_check: {http: {path: /}, command: [probe]}
              quiet:
                image: x
                health_check: {http: {path: /ready}}
              lazy:
                image: x
                health_check: {interval: 5s}
        """
    )
    assert rendered(path) == [
        f"{position(path, '{http: {path: /}')}: {ECHO}.health_check: service 'echo': a health "
        "check needs exactly one of 'http' and 'command'",
        f"{position(path, '{path: /ready')}: realms.default.services.quiet.health_check.http: "
        "service 'quiet': the http health check needs a port: set health_check.http.port or "
        "the service's connector_port",
        f"{position(path, '{interval')}: realms.default.services.lazy.health_check: service "
        "'lazy': a health check needs exactly one of 'http' and 'command'",
    ]


def test_max_retries_only_with_on_failure(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo: {image: x, restart: {policy: always, max_retries: 3}}
        """
    )
    assert rendered(path) == [
        f"{position(path, '3}')}: {ECHO}.restart.max_retries: service 'echo': max_retries "
        "applies only to the on-failure policy, not to always"
    ]


def test_commands_take_variables_from_the_services_environment(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo:
                image: x
                environment: {MAX_LEN: 4096, NAME: echo}
                entrypoint: [sh, -c]
                command: ["serve --max-len=${MAX_LEN} --name ${NAME} --cost $$5 --pid $$$$"]
                health_check: {command: [check, "${NAME}"]}
                profiles:
                  long: {environment: {MAX_LEN: 32768}}
        """
    )
    config = load_config(path)
    assert resolve(config, "echo").command == (
        "serve --max-len=4096 --name echo --cost $5 --pid $$",
    )
    assert resolve(config, "echo[][long]").command == (
        "serve --max-len=32768 --name echo --cost $5 --pid $$",
    )
    check = resolve(config, "echo").health_check
    assert check is not None
    assert check.command == ("check", "echo")


def test_an_unknown_variable_is_an_error_with_a_suggestion(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo:
                image: x
                environment: {MAX_LEN: 4096}
                command: [serve, "--max-len=${MAX_LENGTH}"]
        """
    )
    assert rendered(path) == [
        f"{position(path, '[serve')}: {ECHO}.command: service 'echo' refers to ${{MAX_LENGTH}}, "
        "which its environment does not set (write $$ for a literal $); did you mean 'MAX_LEN'?"
    ]


def test_a_profile_that_fits_some_varieties_is_refused_only_when_selected(
    write: ConfigWriter,
) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              chat:
                image: x
                varieties:
                  nvidia: {resources: {gpus: {count: 1}}}
                  cpu: {}
                profiles:
                  tp2: {resources: {gpus: {count: 2}}}
        """
    )
    config = load_config(path)
    gpus = resolve(config, "chat[nvidia][tp2]").resources.gpus
    assert gpus is not None
    assert gpus.count == 2
    with pytest.raises(ConfigInvalidError) as raised:
        resolve(config, "chat[cpu][tp2]")
    assert raised.value.exit_code == 10
    assert [d.render() for d in raised.value.diagnostics] == [
        f"{position(path, '2}')}: realms.default.services.chat.profiles.tp2.resources.gpus."
        "count: service 'chat' (variety cpu, profile tp2) asks for 2 GPU(s): a cpu variety "
        "runs without GPUs (set resources.gpus: null in the cpu variety to drop the base's "
        "request)"
    ]


def test_a_profile_that_fits_no_variety_is_an_error(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              chat:
                image: x
                varieties: {cpu: {}}
                profiles:
                  tp2: {resources: {gpus: {count: 2}}}
        """
    )
    assert rendered(path) == [
        f"{position(path, '2}')}: realms.default.services.chat.profiles.tp2.resources.gpus."
        "count: service 'chat' (variety cpu, profile tp2) asks for 2 GPU(s): a cpu variety "
        "runs without GPUs (set resources.gpus: null in the cpu variety to drop the base's "
        "request)"
    ]

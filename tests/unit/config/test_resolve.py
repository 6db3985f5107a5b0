"""Choosing realm, variety and profile: from the selector, or from the host's hardware."""

from __future__ import annotations

import pytest
from ozwald.common.v1.host_profile_pb2 import HostProfile

from ozwald_sdk.config import Config, ConfigInvalidError, load_config, resolve, resolve_all
from tests.unit.config.support import ConfigWriter, host

THREE_WAYS = """\
version: 1
realms:
  default:
    services:
      embed:
        image: x
        varieties:
          cpu: {}
          amdgpu: {}
          nvidia: {}
        profiles:
          fast: {}
      gpu-only:
        image: x
        varieties: {nvidia: {}}
      plain: {image: x}
"""


@pytest.fixture
def config(write: ConfigWriter) -> Config:
    return load_config(write(THREE_WAYS))


def _error(config: Config, selector: str, host: HostProfile | None = None) -> str:
    with pytest.raises(ConfigInvalidError) as raised:
        resolve(config, selector, host)
    assert raised.value.exit_code == 10
    [diagnostic] = raised.value.diagnostics
    return diagnostic.render()


@pytest.mark.parametrize(
    ("nvidia", "amd", "expected"),
    [
        (True, True, "nvidia"),
        (True, False, "nvidia"),
        (False, True, "amdgpu"),
        (False, False, "cpu"),
    ],
)
def test_variety_follows_the_hardware_in_preference_order(
    config: Config, nvidia: bool, amd: bool, expected: str
) -> None:
    assert resolve(config, "embed", host(nvidia=nvidia, amd=amd)).variety == expected


def test_the_preference_is_configurable(write: ConfigWriter) -> None:
    config = load_config(
        write(THREE_WAYS.replace("version: 1\n", "version: 1\nvariety_preference: [amdgpu, cpu]\n"))
    )
    assert resolve(config, "embed", host(nvidia=True, amd=True)).variety == "amdgpu"
    # A variety left out of the preference is never chosen by itself.
    assert resolve(config, "embed", host(nvidia=True)).variety == "cpu"


def test_without_a_host_profile_only_cpu_is_assumed(config: Config) -> None:
    assert resolve(config, "embed").variety == "cpu"
    assert _error(config, "gpu-only") == (
        "gpu-only: no variety of service 'gpu-only' (it has: nvidia) fits this host (no host "
        "profile: only cpu is assumed), which offers: cpu; variety_preference is nvidia, "
        "amdgpu, cpu"
    )


def test_no_variety_for_this_host(config: Config) -> None:
    assert _error(config, "gpu-only", host=host(amd=True, name="rocm-box")) == (
        "gpu-only: no variety of service 'gpu-only' (it has: nvidia) fits host 'rocm-box', "
        "which offers: amdgpu, cpu; variety_preference is nvidia, amdgpu, cpu"
    )


def test_a_named_variety_is_used_whatever_the_host_has(config: Config) -> None:
    # Admission, not resolution, refuses what the host cannot run.
    assert resolve(config, "gpu-only[nvidia]", host()).variety == "nvidia"


def test_a_service_without_varieties_has_none(config: Config) -> None:
    spec = resolve(config, "plain", host(nvidia=True))
    assert spec.variety is None
    assert spec.selector == "default:plain"


def test_unknown_names_are_errors_with_suggestions(config: Config) -> None:
    assert _error(config, "embd") == (
        "embd: no service 'embd' in realm 'default'; did you mean 'embed'?"
    )
    assert _error(config, "embed[nvdia]") == (
        "embed[nvdia]: service 'embed' has no variety 'nvdia' (it has: cpu, amdgpu, nvidia); "
        "did you mean 'nvidia'?"
    )
    assert _error(config, "embed[cpu][fsat]") == (
        "embed[cpu][fsat]: service 'embed' has no profile 'fsat' (it has: fast); "
        "did you mean 'fast'?"
    )
    assert _error(config, "plain[][fast]") == (
        "plain[][fast]: service 'plain' has no profile 'fast' (it has: none)"
    )
    assert _error(config, "staging:embed") == (
        "staging:embed: no realm 'staging' in " + str(config.path) + " (it has: default)"
    )


def test_a_profile_in_the_variety_brackets_says_how_to_write_it(config: Config) -> None:
    assert _error(config, "embed[fast]") == (
        "embed[fast]: 'fast' is a profile of service 'embed', not a variety: write "
        "'embed[][fast]' (the first brackets name the variety)"
    )
    assert _error(config, "embed[][cpu]") == (
        "embed[][cpu]: 'cpu' is a variety of service 'embed', not a profile: write 'embed[cpu]'"
    )
    assert _error(config, "plain[cpu]") == (
        "plain[cpu]: service 'plain' defines no varieties: leave the variety out ('plain')"
    )


TWO_REALMS = """\
version: 1
realms:
  {first}:
    services: {{echo: {{image: first}}}}
  lab:
    services: {{echo: {{image: lab}}, probe: {{image: p}}}}
"""


def test_with_several_realms_the_default_one_is_named_default(write: ConfigWriter) -> None:
    config = load_config(write(TWO_REALMS.format(first="default")))
    assert resolve(config, "echo").image == "first"
    assert resolve(config, "lab:echo").image == "lab"
    assert _error(config, "probe") == (
        "probe: no service 'probe' in realm 'default'; it is in realm 'lab': write lab:probe"
    )


def test_with_several_realms_and_no_default_one_must_be_named(write: ConfigWriter) -> None:
    config = load_config(write(TWO_REALMS.format(first="prod")))
    assert _error(config, "probe") == (
        "probe: the config has several realms (prod, lab) and none is named 'default': "
        "name one, e.g. lab:probe"
    )


def test_the_only_realm_is_the_default_whatever_its_name(write: ConfigWriter) -> None:
    config = load_config(write("version: 1\nrealms: {lab: {services: {echo: {image: x}}}}\n"))
    assert resolve(config, "echo").realm == "lab"


def test_resolve_all_chooses_for_the_host(config: Config) -> None:
    specs = resolve_all(config, host(nvidia=True))
    assert [(s.name, s.variety, s.profile) for s in specs] == [
        ("embed", "nvidia", None),
        ("gpu-only", "nvidia", None),
        ("plain", None, None),
    ]


def test_resolve_all_names_every_service_that_does_not_fit(config: Config) -> None:
    with pytest.raises(ConfigInvalidError) as raised:
        resolve_all(config, host(amd=True))
    assert [d.path for d in raised.value.diagnostics] == ["default:gpu-only"]
    assert raised.value.summary == "1 service(s) cannot run on this host:"

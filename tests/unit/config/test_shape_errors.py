"""Each kind of mistake in the shape of the file, reported where it is, all at once."""

from __future__ import annotations

from ozwald_sdk.config import load_config, resolve
from tests.unit.config.support import ConfigWriter, position, rendered

SERVICE = "realms.default.services.echo"


def test_a_misspelt_key_suggests_the_right_one(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo:
                imgae: x
                resources: {memroy: 1g}
        """
    )
    assert rendered(path) == [
        f"{position(path, 'imgae')}: {SERVICE}.imgae: unknown key 'imgae'; did you mean 'image'?",
        f"{position(path, 'memroy')}: {SERVICE}.resources.memroy: unknown key 'memroy'; "
        "did you mean 'memory'?",
    ]


def test_an_unknown_key_with_no_close_match_lists_the_allowed_ones(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo:
                image: x
                restart: {whenever: true}
        """
    )
    assert rendered(path) == [
        f"{position(path, 'whenever')}: {SERVICE}.restart.whenever: unknown key 'whenever' "
        "(expected one of: policy, max_retries)"
    ]


def test_a_misspelt_top_level_key(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realm:
          default: {}
        """
    )
    assert rendered(path) == [
        f"{path}:1:1: required key 'realms' is missing",
        f"{position(path, 'realm:')}: realm: unknown key 'realm'; did you mean 'realms'?",
    ]


def test_wrong_types_say_what_was_expected_and_found(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 2
        realms:
          default:
            services:
              echo:
                image: [x]
                connector_port: eighty
                persistent: maybe
                resources: {cpus: lots, gpus: {count: -1}}
        """
    )
    assert rendered(path) == [
        f"{position(path, '2')}: version: expected 1, found 2",
        f"{position(path, '[x]')}: {SERVICE}.image: expected text, found a list",
        f"{position(path, 'eighty')}: {SERVICE}.connector_port: expected a whole number, "
        "found 'eighty'",
        f"{position(path, 'maybe')}: {SERVICE}.persistent: expected true or false, found 'maybe'",
        f"{position(path, 'lots')}: {SERVICE}.resources.cpus: expected a number, found 'lots'",
        f"{position(path, '-1')}: {SERVICE}.resources.gpus.count: expected a number of "
        "at least 0, found -1",
    ]


def test_ports_must_be_in_range(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo: {image: x, connector_port: 70000}
        """
    )
    assert rendered(path) == [
        f"{position(path, '70000')}: {SERVICE}.connector_port: expected a number of at most "
        "65535, found 70000"
    ]


def test_sizes_and_durations_name_their_forms(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo:
                image: x
                resources: {memory: 16 gigs, shm_size: 0}
                health_check: {command: [true], interval: 5 minutes}
        """
    )
    assert rendered(path) == [
        f"{position(path, '16 gigs')}: {SERVICE}.resources.memory: expected a size like "
        "6GiB, 512MiB, 1g, 1.5G or a whole number of bytes, found '16 gigs'",
        f"{position(path, '0}')}: {SERVICE}.resources.shm_size: expected a size above zero, "
        "like 6GiB, 512MiB, 1g or a number of bytes, found 0",
        f"{position(path, 'true]')}: {SERVICE}.health_check.command[0]: expected text, found true",
        f"{position(path, '5 minutes')}: {SERVICE}.health_check.interval: expected a duration "
        "like 30s, 5m, 1h30m, 500ms or a number of seconds, found '5 minutes'",
    ]


def test_names_must_fit_docker_and_dns(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          Default:
            services:
              echo_1: {image: x}
        """
    )
    rule = (
        "expected a name of lowercase letters, digits and '-', starting with a letter, "
        "not ending with '-', at most 63 characters"
    )
    assert rendered(path) == [
        f"{position(path, 'Default')}: realms.Default: {rule}, found 'Default'",
        f"{position(path, 'echo_1')}: realms.Default.services.echo_1: {rule}, found 'echo_1'",
    ]


def test_variety_keys_are_the_three_known_ones(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        variety_preference: [nvidia, cuda]
        realms:
          default:
            services:
              echo:
                image: x
                varieties:
                  nvdia: {}
                  amd: {}
        """
    )
    expected = "expected 'nvidia', 'amdgpu' or 'cpu'"
    assert rendered(path) == [
        f"{position(path, 'cuda')}: variety_preference[1]: {expected}, found 'cuda'",
        f"{position(path, 'nvdia')}: {SERVICE}.varieties.nvdia: {expected}, found 'nvdia'; "
        "did you mean 'nvidia'?",
        f"{position(path, 'amd:')}: {SERVICE}.varieties.amd: {expected}, found 'amd'; "
        "did you mean 'amdgpu'?",
    ]


def test_variety_preference_names_each_variety_once(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        variety_preference: [cpu, nvidia, cpu]
        realms: {default: {}}
        """
    )
    assert rendered(path) == [
        f"{position(path, '[cpu')}: variety_preference: names cpu more than once"
    ]


def test_service_only_keys_are_refused_in_varieties_and_profiles(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo:
                image: x
                varieties:
                  cpu: {persistent: true}
                profiles:
                  fast: {profiles: {}}
        """
    )
    assert rendered(path) == [
        f"{position(path, 'persistent')}: {SERVICE}.varieties.cpu.persistent: 'persistent' "
        "can be set only on the service itself, not in a variety or profile",
        f"{position(path, 'profiles', 2)}: {SERVICE}.profiles.fast.profiles: 'profiles' "
        "can be set only on the service itself, not in a variety or profile",
    ]


def test_labels_under_the_ozwald_prefix_are_refused(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo:
                image: x
                labels:
                  team: search
                  ozwald.realm: mine
        """
    )
    assert rendered(path) == [
        f'{position(path, "ozwald.realm")}: {SERVICE}.labels["ozwald.realm"]: label keys '
        "starting with 'ozwald.' are reserved: Ozwald sets them to recognise its own containers"
    ]


def test_volume_declarations_need_a_known_type(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            volumes:
              models: {type: bnd, source: ./models}
              cache: {name: shared}
              scratch: {type: tmpfs, source: /x}
        """
    )
    assert rendered(path) == [
        f"{position(path, '{type: bnd')}: realms.default.volumes.models: expected type "
        "'bind', 'named', 'tmpfs', 'encrypted', 'encrypted-tmp', 'versioned', "
        "found 'bnd'; did you mean 'bind'?",
        f"{position(path, '{name')}: realms.default.volumes.cache: expected a 'type' key "
        "(bind, named, tmpfs, encrypted, encrypted-tmp, versioned), found none",
        f"{position(path, 'source', 2)}: realms.default.volumes.scratch.source: unknown key "
        "'source' (expected one of: type, size)",
    ]


def test_mounts_short_and_long(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            volumes: {data: {type: named}}
            services:
              echo:
                image: x
                volumes:
                  - data
                  - data:relative
                  - {volume: data, source: ./d, target: /d}
                  - data:/d:rx
        """
    )
    short_form = "expected a mount like NAME:/target, ./dir:/target or NAME:/target:ro"
    assert rendered(path) == [
        f"{position(path, '- data', skip=2)}: {SERVICE}.volumes[0]: {short_form}, found 'data'",
        # The short form has no target key of its own: the place is the whole string.
        f"{position(path, 'data:relative')}: {SERVICE}.volumes[1]: expected an absolute "
        "path inside the container (starting with '/'), found 'relative'",
        f"{position(path, '{volume')}: {SERVICE}.volumes[2]: a mount needs exactly one of "
        "'volume' (a declared name) or 'source'",
        f"{position(path, 'data:/d:rx')}: {SERVICE}.volumes[3]: {short_form}, found 'data:/d:rx'",
    ]


def test_a_missing_required_key_points_at_its_mapping(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            portals:
              api: {host_port: 8080, host_ip: localhost}
            services:
              echo: {image: x}
        """
    )
    assert rendered(path) == [
        f"{position(path, '{host_port')}: realms.default.portals.api: required key 'service' "
        "is missing",
        f"{position(path, 'localhost')}: realms.default.portals.api.host_ip: expected an IP "
        "address of this host, like 127.0.0.1 or 0.0.0.0, found 'localhost'",
    ]


def test_a_restart_policy_suggests_the_right_spelling(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo: {image: x, restart: {policy: on-failur}}
              quiet: {image: x, restart: {policy: no}}
        """
    )
    assert rendered(path) == [
        f"{position(path, 'on-failur')}: {SERVICE}.restart.policy: expected 'no', 'always', "
        "'on-failure' or 'unless-stopped', found 'on-failur'; did you mean 'on-failure'?"
    ]


def test_unquoted_no_is_the_no_policy(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              quiet: {image: x, restart: {policy: no}}
        """
    )
    assert resolve(load_config(path), "quiet").restart.policy == "no"


def test_a_command_string_must_split_into_words(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo: {image: x, command: "serve 'unterminated"}
        """
    )
    assert rendered(path) == [
        f"{position(path, 'serve', skip=-1)}: {SERVICE}.command: expected a command line "
        "that splits "
        'into words (No closing quotation), found "serve \'unterminated"'
    ]


def test_every_problem_is_reported_in_one_go(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            portals:
              api: {service: ecko, host_port: 8080}
            services:
              echo:
                image: x
                connector_port: eighty
                networks: [backend]
                depends_on: [db]
              other:
                imge: y
        """
    )
    problems = rendered(path)
    assert [p.split(": ", 1)[0] for p in problems] == [
        position(path, "ecko"),
        position(path, "eighty"),
        position(path, "backend"),
        position(path, "db"),
        position(path, "imge"),
    ]

"""Names that refer to other parts of the file: networks, volumes, services, portals, files."""

from __future__ import annotations

from ozwald_sdk.config import load_config, resolve
from tests.unit.config.support import ConfigWriter, position, rendered

SERVICES = "realms.default.services"


def test_unknown_network_and_volume_suggest_declared_ones(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            networks: {backend: {}}
            volumes: {models: {type: named}}
            services:
              echo:
                image: x
                volumes: ["model:/models"]
                varieties:
                  cpu:
                    networks: [backnd]
        """
    )
    assert rendered(path) == [
        f"{position(path, 'model:', skip=-1)}: {SERVICES}.echo.volumes[0]: no volume 'model' is "
        "declared in realm 'default'; did you mean 'models'?",
        f"{position(path, 'backnd')}: {SERVICES}.echo.varieties.cpu.networks[0]: no network "
        "'backnd' is declared in realm 'default' (every service is on the realm's shared "
        "network already; declare others under realms.default.networks); "
        "did you mean 'backend'?",
    ]


def test_two_mounts_at_one_target(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            volumes: {a: {type: named}, b: {type: named}}
            services:
              echo:
                image: x
                volumes: ["a:/data", {volume: b, target: /data}]
        """
    )
    assert rendered(path) == [
        f"{position(path, '/data', 2)}: {SERVICES}.echo.volumes[1].target: two mounts at "
        "/data (the first is volumes[0])"
    ]


def test_depends_on_unknown_or_itself(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              web: {image: x, depends_on: [databse]}
              database: {image: x, depends_on: [database]}
        """
    )
    assert rendered(path) == [
        f"{position(path, 'databse')}: {SERVICES}.web.depends_on[0]: no service 'databse' "
        "in realm 'default'; did you mean 'database'?",
        f"{position(path, '[database]', skip=1)}: {SERVICES}.database.depends_on[0]: "
        "'database' depends on itself",
    ]


def test_a_dependency_cycle_is_named_once(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              c: {image: x, depends_on: [a]}
              a: {image: x, depends_on: [b]}
              b: {image: x, depends_on: [c]}
              d: {image: x, depends_on: [a]}
        """
    )
    assert rendered(path) == [
        f"{position(path, '[b]', skip=1)}: {SERVICES}.a.depends_on[0]: dependency cycle: "
        "a -> b -> c -> a"
    ]


def test_a_cycle_through_a_variety_counts(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              a: {image: x, depends_on: [b]}
              b:
                image: x
                varieties:
                  cpu: {depends_on: [a]}
        """
    )
    assert rendered(path) == [
        f"{position(path, '[b]', skip=1)}: {SERVICES}.a.depends_on[0]: dependency cycle: "
        "a -> b -> a"
    ]


def test_persistent_services_depend_only_on_persistent_ones(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              keeper: {image: x, persistent: true, depends_on: [web]}
              web: {image: x, depends_on: [store]}
              store: {image: x, persistent: true}
        """
    )
    assert rendered(path) == [
        f"{position(path, '[web]', skip=1)}: {SERVICES}.keeper.depends_on[0]: persistent "
        "service 'keeper' cannot depend on 'web', which is not persistent: the agent starts "
        "persistent services on its own, when 'web' may not be running (make 'web' "
        "persistent too)"
    ]


def test_env_files_must_exist_relative_to_the_config(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo: {image: x, env_files: [present.env, missing.env]}
        """
    )
    (path.parent / "present.env").write_text("A=1\n")
    assert rendered(path) == [
        f"{position(path, 'missing.env')}: {SERVICES}.echo.env_files[1]: env file "
        f"{path.parent / 'missing.env'} does not exist or is not a file"
    ]


def test_env_files_resolve_to_absolute_paths(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo: {image: x, env_files: [conf/./app.env]}
        """
    )
    (path.parent / "conf").mkdir()
    (path.parent / "conf" / "app.env").write_text("A=1\n")
    assert resolve(load_config(path), "echo").env_files == (path.parent / "conf" / "app.env",)


def test_portals_need_a_known_service_and_a_port(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            portals:
              api: {service: ecko, host_port: 8080}
              admin: {service: echo, host_port: 8081}
            services:
              echo: {image: x}
        """
    )
    assert rendered(path) == [
        f"{position(path, 'ecko')}: realms.default.portals.api.service: no service 'ecko' in "
        "realm 'default'; did you mean 'echo'?",
        f"{position(path, '{service: echo')}: realms.default.portals.admin: portal 'admin' "
        "needs a container port: set its container_port or the connector_port of service "
        "'echo'",
    ]


def test_a_portal_port_can_come_from_one_variety_only_if_all_have_it(
    write: ConfigWriter,
) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            portals:
              api: {service: echo, host_port: 8080}
            services:
              echo:
                image: x
                varieties:
                  nvidia: {connector_port: 8000}
                  cpu: {}
        """
    )
    assert rendered(path) == [
        f"{position(path, '{service')}: realms.default.portals.api: portal 'api' needs a "
        "container port: set its container_port or the connector_port of service 'echo' "
        "(variety cpu)"
    ]


def test_host_ports_are_unique_per_host_across_realms(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            portals:
              api: {service: echo, host_port: 8080}
              lan: {service: echo, host_port: 9090, host_ip: 192.168.1.5}
            services:
              echo: {image: x, connector_port: 80}
          staging:
            portals:
              api: {service: echo, host_port: 8080, host_ip: 0.0.0.0}
              lan: {service: echo, host_port: 9090, host_ip: 10.0.0.5}
            services:
              echo: {image: x, connector_port: 80}
        """
    )
    # Two specific addresses may share a port; the unspecified address takes them all.
    assert rendered(path) == [
        f"{position(path, '8080', 2)}: realms.staging.portals.api.host_port: host port 8080 "
        "on 0.0.0.0 is already taken by portal default.api (line 5)"
    ]


def test_references_of_a_broken_service_are_still_checked(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo:
                image: x
                connector_port: eighty
                depends_on: [nothing]
        """
    )
    assert [p.split(": ", 2)[1] for p in rendered(path)] == [
        f"{SERVICES}.echo.connector_port",
        f"{SERVICES}.echo.depends_on[0]",
    ]

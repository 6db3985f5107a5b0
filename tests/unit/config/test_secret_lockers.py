"""`secrets: [locker]` names lockers of the realm's `vault: {lockers: [...]}`; names only."""

from __future__ import annotations

from ozwald.common.v1 import service_spec_pb2

from ozwald_sdk.config import load_config, resolve
from tests.unit.config.support import ConfigWriter, host, rendered

CONFIG = """\
    version: 1
    realms:
      default:
        vault:
          lockers: [database, cache]
        services:
          app:
            image: x
            secrets: [{locker}]
    """


def test_a_declared_locker_reaches_the_spec_by_name(write: ConfigWriter) -> None:
    path = write(CONFIG.format(locker="database"))
    spec = resolve(load_config(path), "app", host()).to_service_spec()
    assert list(spec.secret_lockers) == [service_spec_pb2.SecretLockerRef(locker="database")]


def test_an_undeclared_locker_is_an_error_with_a_suggestion(write: ConfigWriter) -> None:
    path = write(CONFIG.format(locker="databse"))
    (problem,) = rendered(path)
    assert "realms.default.services.app.secrets[0]: no locker 'databse' is declared" in problem
    assert "did you mean 'database'?" in problem


def test_a_realm_without_a_vault_has_no_lockers(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              app: {image: x, secrets: [database]}
        """
    )
    (problem,) = rendered(path)
    assert "no locker 'database' is declared in the vault of realm 'default'" in problem

"""`strategy:` under a fleet deployment: sent as Deployment.strategy, its shape checked
here and its name by the orchestrator (which knows its plugins)."""

from __future__ import annotations

from ozwald_sdk.config import load_config
from ozwald_sdk.config.deployments import resolve_deployments
from tests.unit.config.support import ConfigWriter, position, rendered
from tests.unit.config.test_fleet_config import SERVICES


def test_the_strategy_is_sent_and_unset_means_the_orchestrator_s_default(
    write: ConfigWriter,
) -> None:
    path = write(
        SERVICES
        + """\
fleet:
  deployments:
    packed: {service: plain, replicas: 2, strategy: binpack}
    spread: {service: plain, strategy: least-fragmented}
    default: {service: plain}
"""
    )
    by_name = {d.name: d.strategy for d in resolve_deployments(load_config(path))}
    assert by_name == {"packed": "binpack", "spread": "least-fragmented", "default": ""}


def test_a_strategy_is_a_name(write: ConfigWriter) -> None:
    path = write(SERVICES + "fleet:\n  deployments:\n    x: {service: plain, strategy: Bin_Pack}\n")
    assert rendered(path) == [
        f"{position(path, 'Bin_Pack')}: fleet.deployments.x.strategy: expected a name of "
        "lowercase letters, digits and '-', starting with a letter, not ending with '-', at "
        "most 63 characters, found 'Bin_Pack'"
    ]

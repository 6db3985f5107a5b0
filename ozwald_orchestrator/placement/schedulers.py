"""One Scheduler per placement strategy in use, all on the fleet's one ledger.

A deployment's instances are placed by its own strategy (Deployment.strategy) or, when it
names none, by the orchestrator's default (`--strategy`). The schedulers share the
ledger, so every strategy sees every reservation, whichever strategy made it; each
strategy is made once, when a deployment first asks for it.
"""

from __future__ import annotations

import logging

from ozwald_orchestrator.placement.ledger import FleetLedger
from ozwald_orchestrator.placement.registry import (
    StrategyLoadError,
    StrategyRegistry,
    UnknownStrategyError,
)
from ozwald_orchestrator.placement.scheduler import Scheduler

logger = logging.getLogger(__name__)


class Schedulers:
    """The schedulers of one ledger, by strategy name (see the module docstring)."""

    def __init__(self, ledger: FleetLedger, default: str, registry: StrategyRegistry) -> None:
        """Raises UnknownStrategyError or StrategyLoadError when `default` cannot be had."""
        self.ledger = ledger
        self.registry = registry
        self.default = Scheduler(ledger, registry.load(default))
        self._by_name: dict[str, Scheduler] = {default: self.default}
        # Strategies a stored deployment names that cannot be loaded now, already logged.
        self._missing: set[str] = set()

    def names(self) -> list[str]:
        return self.registry.names()

    def get(self, name: str) -> Scheduler:
        """The scheduler of strategy `name` ("": the default). Raises UnknownStrategyError
        or StrategyLoadError."""
        if not name:
            return self.default
        scheduler = self._by_name.get(name)
        if scheduler is None:
            scheduler = self._by_name[name] = Scheduler(self.ledger, self.registry.load(name))
        return scheduler

    def problem(self, name: str) -> str | None:
        """Why a deployment may not name strategy `name`, or None when it may."""
        try:
            self.get(name)
        except (UnknownStrategyError, StrategyLoadError) as e:
            return str(e)
        return None

    def for_deployment(self, strategy: str) -> Scheduler:
        """The scheduler for a deployment that names `strategy`. A stored deployment may
        name a plugin that was uninstalled since: its instances are placed by the default
        rather than not at all, and the problem is logged once."""
        try:
            return self.get(strategy)
        except (UnknownStrategyError, StrategyLoadError) as e:
            if strategy not in self._missing:
                self._missing.add(strategy)
                logger.error(
                    "%s; placing the instances of deployments that name it with %s instead "
                    "(install the plugin and restart the orchestrator, or apply the "
                    "deployments with another strategy)",
                    e,
                    self.default.strategy.name,
                    extra={"strategy": strategy},
                )
            return self.default

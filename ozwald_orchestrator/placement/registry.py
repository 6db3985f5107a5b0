"""Placement strategies by name: the built-ins and plugins from Python entry points.

A plugin is any installed distribution that names a strategy factory in its metadata,
in the entry-point group `ozwald.placement_strategies`:

    [project.entry-points."ozwald.placement_strategies"]
    least-loaded = "my_package.strategy:LeastLoaded"

The object is a class, or any callable without arguments, returning a `Strategy`
(strategies.py: a `name`, `key` and `search`). Declaring the factory as
`StrategyFactory` (`FACTORY: StrategyFactory = LeastLoaded`) makes mypy check that the
plugin fits the protocol. fgd, shipped with Ozwald, is registered exactly this way in
Ozwald's own pyproject.toml, so it is loaded by the same path as any other plugin.

binpack and spread are built into the code and cannot be replaced by a plugin of the
same name (a plugin that tries is ignored, with a warning): what a deployment's
`strategy: binpack` means does not depend on what else is installed. Plugins are found
when the registry is made (the orchestrator's start); one installed later is seen after a
restart.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

from ozwald_orchestrator.placement.strategies import STRATEGIES, Strategy

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ozwald.placement_strategies"

StrategyFactory = Callable[[], Strategy]
"""What a plugin's entry point names: called when the orchestrator first needs the
strategy (once per ledger), it returns the strategy."""


class UnknownStrategyError(ValueError):
    """No built-in strategy and no installed plugin has that name."""


class StrategyLoadError(ValueError):
    """A plugin is installed under that name but does not load, or is not a Strategy."""


@dataclass(frozen=True)
class _Plugin:
    name: str
    value: str  # "module:object", as the entry point says
    distribution: str
    load: Callable[[], object]


class StrategyRegistry:
    """Strategy names and how to make each; `discover()` reads the installed plugins."""

    def __init__(
        self,
        plugins: Mapping[str, _Plugin] | None = None,
        builtins: Mapping[str, StrategyFactory] = STRATEGIES,
    ) -> None:
        self._builtins = dict(builtins)
        self._plugins = dict(plugins or {})

    @classmethod
    def discover(cls) -> StrategyRegistry:
        """The built-ins and every plugin installed now."""
        plugins: dict[str, _Plugin] = {}
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            distribution = entry.dist.name if entry.dist is not None else "an unknown package"
            if entry.name in STRATEGIES:
                logger.warning(
                    "ignoring the placement strategy plugin %r from %s (%s): %r is built in "
                    "and cannot be replaced",
                    entry.name,
                    distribution,
                    entry.value,
                    entry.name,
                )
                continue
            known = plugins.get(entry.name)
            if known is not None:
                if known.value != entry.value:
                    logger.warning(
                        "two plugins name the placement strategy %r: %s (%s) and %s (%s); "
                        "using the first",
                        entry.name,
                        known.distribution,
                        known.value,
                        distribution,
                        entry.value,
                    )
                continue
            plugins[entry.name] = _Plugin(entry.name, entry.value, distribution, entry.load)
        return cls(plugins)

    def names(self) -> list[str]:
        """Every strategy name that can be asked for, sorted."""
        return sorted(self._builtins.keys() | self._plugins.keys())

    def origin(self, name: str) -> str:
        """Where a strategy comes from, in words ("built in", or the plugin's package)."""
        plugin = self._plugins.get(name)
        if plugin is None:
            return "built in"
        return f"plugin {plugin.value} from {plugin.distribution}"

    def load(self, name: str) -> Strategy:
        """A new instance of the strategy called `name`.

        Raises UnknownStrategyError (naming the known ones, with a did-you-mean) or
        StrategyLoadError (the plugin is there but broken, saying how)."""
        builtin = self._builtins.get(name)
        if builtin is not None:
            return builtin()
        plugin = self._plugins.get(name)
        if plugin is None:
            raise UnknownStrategyError(unknown_strategy(name, self.names()))
        where = f"placement strategy {name!r} ({plugin.value} from {plugin.distribution})"
        try:
            factory = plugin.load()
        except Exception as e:
            raise StrategyLoadError(f"{where} cannot be imported: {type(e).__name__}: {e}") from e
        if not callable(factory):
            raise StrategyLoadError(f"{where} is not a class or function that makes a strategy")
        try:
            strategy = factory()
        except Exception as e:
            raise StrategyLoadError(
                f"{where} failed to make the strategy: {type(e).__name__}: {e}"
            ) from e
        missing = [a for a in ("key", "search") if not callable(getattr(strategy, a, None))]
        if missing:
            what = f"has no {' or '.join(missing)} method"
        elif getattr(strategy, "name", None) != name:
            what = f"calls itself {getattr(strategy, 'name', None)!r}, not {name!r}"
        else:
            return cast(Strategy, strategy)
        raise StrategyLoadError(
            f"{where} does not make a Strategy (ozwald_orchestrator.placement.strategies): "
            f"what it makes {what}"
        )


def unknown_strategy(name: str, known: list[str]) -> str:
    """ "unknown placement strategy 'x' (did you mean 'y'?); known strategies: ..."."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown placement strategy {name!r}{hint}; known strategies: {', '.join(known)}"

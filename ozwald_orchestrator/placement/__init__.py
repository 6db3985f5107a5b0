"""Placement: which host runs each instance, and why (filters that give reasons, then a
strategy that ranks the hosts that pass). See scheduler.py for the entry point."""

from ozwald_orchestrator.placement.ledger import FleetLedger, HostFree, UnknownHost
from ozwald_orchestrator.placement.model import (
    Constraints,
    Demand,
    Gpu,
    HostCapacity,
    Placement,
    PlacementRequest,
    Rejection,
    Unplaced,
    Verdict,
)
from ozwald_orchestrator.placement.scheduler import Scheduler
from ozwald_orchestrator.placement.strategies import (
    STRATEGIES,
    Binpack,
    Spread,
    Strategy,
    strategy_by_name,
)

__all__ = [
    "STRATEGIES",
    "Binpack",
    "Constraints",
    "Demand",
    "FleetLedger",
    "Gpu",
    "HostCapacity",
    "HostFree",
    "Placement",
    "PlacementRequest",
    "Rejection",
    "Scheduler",
    "Spread",
    "Strategy",
    "UnknownHost",
    "Unplaced",
    "Verdict",
    "strategy_by_name",
]

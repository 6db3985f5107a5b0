"""A throwaway distribution that provides a placement strategy through its entry point,
as a third party's package would: a module and a *.dist-info with entry_points.txt in a
directory that goes on sys.path (or PYTHONPATH, for an orchestrator process)."""

from __future__ import annotations

import textwrap
from pathlib import Path

# Ranks hosts by id, the greatest first: nothing built in does that, so where instances
# land shows which strategy placed them.
LAST_HOST_ID = """
from ozwald_orchestrator.placement.filters import Probe
from ozwald_orchestrator.placement.host_state import HostState
from ozwald_orchestrator.placement.ledger import FleetLedger
from ozwald_orchestrator.placement.registry import StrategyFactory
from ozwald_orchestrator.placement.strategies import Choice, SortKey, scan_all


class LastHostId:
    name = "last-host-id"

    def key(self, state: HostState, probe: Probe, positions: tuple[int, ...]) -> SortKey:
        return tuple(-ord(c) for c in state.host_id)

    def search(self, ledger: FleetLedger, probe: Probe) -> Choice | None:
        return scan_all(self, ledger, probe)


FACTORY: StrategyFactory = LastHostId
"""


def write_distribution(
    root: Path,
    *,
    entry_points: dict[str, str],
    module: str = "last_host_id_strategy",
    source: str = LAST_HOST_ID,
    distribution: str = "ozwald-test-strategies",
) -> Path:
    """Writes `module`.py and a dist-info naming `entry_points` (name -> "module:object")
    in the group ozwald.placement_strategies under `root`; returns `root`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{distribution.replace('-', '_')}-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    lines = [f"{name} = {target}" for name, target in entry_points.items()]
    (info / "entry_points.txt").write_text(
        "[ozwald.placement_strategies]\n" + "\n".join(lines) + "\n"
    )
    return root

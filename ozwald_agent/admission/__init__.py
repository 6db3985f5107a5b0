"""Admission: plan a complete desired set of dynamic services against one host.

`plan()` is a pure function of its inputs: the desired specs, what runs now, the host
profile, a few host facts that need I/O (behind the `HostFacts` protocol) and, optionally,
recorded footprints. It returns an `ozwald.agent.v1.Plan`: the diff (start, stop, restart,
keep), the GPUs each service gets, the orders to stop and start in, and, when anything
does not fit, every refusal with its reason, arithmetic and remedy. Admission is atomic:
a plan with a refusal must not be applied at all.
"""

from ozwald_agent.admission.facts import HostFacts
from ozwald_agent.admission.footprints import Footprint, FootprintBook, NoFootprints
from ozwald_agent.admission.planner import plan
from ozwald_agent.admission.running import RunningService
from ozwald_sdk.fingerprint import fingerprint

__all__ = [
    "Footprint",
    "FootprintBook",
    "HostFacts",
    "NoFootprints",
    "RunningService",
    "fingerprint",
    "plan",
]

"""What the link says in the log: each loss of the orchestrator once, not once per retry.

An outage is logged when it begins (at warning: the stream was lost, or the first attempt
failed); the retries that follow are logged at debug. Only news interrupts that: the
orchestrator refusing the agent (a certificate it does not accept, say) is logged at
warning whenever its message changes, since the retries will not mend it on their own.
The moment the link is back says how long it was gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger("ozwald_agent.fleet.link")


class LinkLog:
    def __init__(
        self, address: str, retry_cap_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._address = address
        self._retry_cap_s = retry_cap_s
        self._clock = clock
        self._down_since: float | None = None
        self._logged = ""

    def joined(self, host_id: str, session_id: str) -> None:
        extra = {"orchestrator": self._address, "host_id": host_id, "session_id": session_id}
        if self._down_since is None:
            logger.info(
                "joined the orchestrator at %s as host %s (session %s)",
                self._address,
                host_id,
                session_id,
                extra=extra,
            )
        else:
            logger.info(
                "joined the orchestrator at %s again after %.1f s (session %s)",
                self._address,
                self._clock() - self._down_since,
                session_id,
                extra=extra,
            )
        self._down_since = None
        self._logged = ""

    def failed(self, problem: str, *, was_joined: bool, refused: bool, retry_in_s: float) -> None:
        """`refused`: the orchestrator answered and said no (not merely unreachable)."""
        extra = {"orchestrator": self._address, "problem": problem}
        if was_joined:
            self._down_since = self._clock()
            self._logged = problem
            logger.warning(
                "lost the orchestrator at %s: %s; reconnecting (the services keep running)",
                self._address,
                problem,
                extra=extra,
            )
        elif self._down_since is None or (refused and problem != self._logged):
            if self._down_since is None:
                self._down_since = self._clock()
            self._logged = problem
            logger.warning(
                "cannot join the orchestrator at %s: %s; retrying (every %g s at most)",
                self._address,
                problem,
                self._retry_cap_s,
                extra=extra,
            )
        else:
            logger.debug(
                "orchestrator still not joined: %s; retrying in %.2f s", problem, retry_in_s
            )

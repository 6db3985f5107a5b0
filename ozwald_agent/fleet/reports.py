"""A session's reports: instance status changes, host profiles and new footprints.

Status changes are read from the agent's event log after the cursor the Register's
snapshot was taken at, so nothing between the two is lost or sent twice; changes that
arrive together are collapsed per instance into one InstanceReport.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ozwald.agent.v1 import service_scope_pb2
from ozwald.common.v1 import host_profile_pb2

from ozwald_agent.fleet import messages
from ozwald_agent.fleet.config import LinkTiming
from ozwald_agent.fleet.outbox import Outbox
from ozwald_agent.fleet.protocols import FleetProvisioner, FootprintSource

logger = logging.getLogger(__name__)

FLEET = service_scope_pb2.SERVICE_SCOPE_FLEET
STOP_CHECK_S = 0.2


class SessionReports:
    """`run()` on a thread until `stop` is set (or the agent's event feed closes)."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        provisioner: FleetProvisioner,
        footprints: FootprintSource,
        collect_profile: Callable[[], host_profile_pb2.HostProfile],
        timing: LinkTiming,
        stop: threading.Event,
        cursor: int,
        reported: set[messages.ServiceKey],
        footprints_sent: dict[messages.FootprintKey, tuple[str, int]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._outbox = outbox
        self._provisioner = provisioner
        self._footprints = footprints
        self._collect_profile = collect_profile
        self._timing = timing
        self._stop = stop
        self.cursor = cursor
        self._reported = reported
        self._footprints_sent = footprints_sent
        self._clock = clock

    def run(self) -> None:
        feed = self._provisioner.feed
        now = self._clock()
        profile_due = now + self._timing.profile_s
        footprints_due = now + self._timing.footprint_poll_s
        while not self._stop.is_set() and not feed.closed:
            # Capped so that a session that ends is noticed soon: nothing wakes the feed then.
            wait = min(max(0.0, min(profile_due, footprints_due) - self._clock()), STOP_CHECK_S)
            if feed.wait_beyond(self.cursor, wait):
                # Let a burst (an assignment starting many instances) arrive, then send
                # it as one report.
                if self._stop.wait(self._timing.batch_window_s):
                    return
                self.send_instance_changes()
            now = self._clock()
            if now >= profile_due:
                profile_due = now + self._timing.profile_s
                self.send_profile()
            if now >= footprints_due:
                footprints_due = now + self._timing.footprint_poll_s
                self.send_new_footprints()

    def send_instance_changes(self) -> bool:
        """Sends the fleet changes recorded after the cursor; False when there were none."""
        changes = messages.InstanceChanges()
        while True:
            events = self._provisioner.events_after(self.cursor)
            if not events:
                break
            self.cursor = events[-1].sequence
            # Read after the events: a service that joined the set is in it by now, and
            # one that left it has already left when its STOPPED is recorded.
            fleet = self._provisioner.scope_keys(FLEET)
            messages.fleet_changes(events, fleet, self._reported, into=changes)
        if not changes:
            return False
        self._outbox.put(changes.request())
        return True

    def send_profile(self) -> None:
        try:
            profile = self._collect_profile()
        except Exception:
            # The profile collector reports problems as facts; this is a bug, not a
            # reason to end the session.
            logger.exception("cannot collect the host profile for the orchestrator")
            return
        self._outbox.put(messages.profile_report(profile))

    def send_new_footprints(self) -> None:
        fresh = messages.new_footprints(self._footprints.list(), self._footprints_sent)
        if fresh:
            self._outbox.put(messages.footprint_report(fresh))

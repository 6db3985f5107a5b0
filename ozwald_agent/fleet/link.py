"""The agent's one stream to the orchestrator, kept open for the agent's life.

Each session: Register (profile, labels, the applied assignment version, the complete
statuses of the FLEET instances and the recorded footprints), then, once Registered comes
back, heartbeats and reports go up on threads of their own while this thread applies the
assignments that come down and answers each with an AssignmentResult.

Any end of the stream (error, orchestrator gone or restarted, no Registered in time) ends
the session; the next one starts after a jittered backoff (0.5 s doubling to 10 s), for
ever. Register carries the complete state and assignments are complete sets applied
idempotently, so a new session resumes without replaying anything. Stopping the link ends
the stream; the containers keep running (they are the agent's, not the stream's).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

import grpc
from ozwald.agent.v1 import service_scope_pb2
from ozwald.common.v1 import host_profile_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2 as link_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2_grpc as link_grpc

from ozwald_agent.fleet import messages
from ozwald_agent.fleet.assignment import AssignmentHandler
from ozwald_agent.fleet.backoff import ReconnectBackoff
from ozwald_agent.fleet.config import LinkTiming
from ozwald_agent.fleet.heartbeats import Heartbeats
from ozwald_agent.fleet.link_log import LinkLog
from ozwald_agent.fleet.outbox import Outbox
from ozwald_agent.fleet.protocols import AssignmentVersions, FleetProvisioner, FootprintSource
from ozwald_agent.fleet.reports import SessionReports

logger = logging.getLogger(__name__)

FLEET = service_scope_pb2.SERVICE_SCOPE_FLEET
# How long a stopping link waits for a session's helper threads (they hold no resources).
JOIN_S = 2.0


class _SessionEnded(Exception):
    """A session ended without a gRPC error; the message says how."""


class FleetLink:
    """`start()` once, `stop()` once; `joined` says whether a session is registered now."""

    def __init__(
        self,
        *,
        address: str,
        host_id: str,
        labels: dict[str, str],
        open_channel: Callable[[], grpc.Channel],
        provisioner: FleetProvisioner,
        footprints: FootprintSource,
        versions: AssignmentVersions,
        collect_profile: Callable[[], host_profile_pb2.HostProfile],
        timing: LinkTiming | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._address = address
        self.host_id = host_id
        self._labels = dict(labels)
        self._open_channel = open_channel
        self._provisioner = provisioner
        self._footprints = footprints
        self._collect_profile = collect_profile
        self._timing = timing or LinkTiming()
        self._assignments = AssignmentHandler(provisioner, versions)
        self._backoff = ReconnectBackoff(
            self._timing.reconnect_first_s, self._timing.reconnect_max_s, rand
        )
        self._log = LinkLog(address, self._timing.reconnect_max_s)
        self._stopping = threading.Event()
        self._joined = threading.Event()
        self._lock = threading.Lock()
        self._cancel_call: Callable[[], object] | None = None
        self._outbox: Outbox | None = None
        self._thread: threading.Thread | None = None
        self.session_id = ""
        self.sessions = 0
        # Fleet instances the orchestrator has heard of and not yet heard stop.
        self._reported: set[messages.ServiceKey] = set()

    @property
    def joined(self) -> bool:
        return self._joined.is_set()

    def wait_joined(self, timeout_s: float) -> bool:
        return self._joined.wait(timeout_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fleet-link", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ends the stream and the link's threads; the orchestrator sees the stream close."""
        was_joined = self.joined
        self._stopping.set()
        self._end_current()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("the orchestrator link did not stop within %g s", timeout_s)
        if was_joined:
            logger.info("left the orchestrator at %s", self._address)
        else:
            logger.info("stopped trying to join the orchestrator at %s", self._address)

    # The loop ---------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            refused = False
            try:
                self._session()
                problem = "the orchestrator ended the stream"
            except _SessionEnded as e:
                problem = str(e)
            except grpc.RpcError as e:
                problem = _describe(e)
                refused = _refused(e)
            except Exception as e:
                logger.exception("orchestrator link session failed")
                problem = f"the agent's side failed: {e}"
            was_joined = self._joined.is_set()
            self._joined.clear()
            if self._stopping.is_set():
                return
            if was_joined:
                self._backoff.reset()
            delay = self._backoff.next_delay()
            self._log.failed(problem, was_joined=was_joined, refused=refused, retry_in_s=delay)
            self._stopping.wait(delay)

    def _session(self) -> None:
        """One stream from Register to its end (`_joined` is set once it is registered)."""
        # Instances taken off this host while its last stream was open may still be
        # stopping: the orchestrator hears of them, and of their STOPPED, on this one.
        statuses, cursor = self._provisioner.scope_statuses(FLEET, leaving=self._reported)
        footprints = self._footprints.list()
        register = messages.register(
            host_id=self.host_id,
            profile=self._collect_profile(),
            labels=self._labels,
            applied_version=self._assignments.applied_version(),
            instances=statuses,
            footprints=footprints,
        )
        # The session's reports thread keeps this set current (the previous one has ended).
        self._reported = {(s.realm, s.name) for s in statuses}
        outbox = Outbox()
        outbox.put(register)
        stop = threading.Event()
        reports = SessionReports(
            outbox,
            provisioner=self._provisioner,
            footprints=self._footprints,
            collect_profile=self._collect_profile,
            timing=self._timing,
            stop=stop,
            cursor=cursor,
            reported=self._reported,
            footprints_sent=messages.footprint_stamps(footprints),
        )
        threads: list[threading.Thread] = []
        registered = False
        timed_out = threading.Event()
        channel = self._open_channel()
        try:
            call = link_grpc.AgentLinkServiceStub(channel).Connect(outbox.requests())
            with self._lock:
                self._cancel_call, self._outbox = call.cancel, outbox
            if self._stopping.is_set():
                return

            def give_up_waiting() -> None:
                timed_out.set()
                call.cancel()

            timer = threading.Timer(self._timing.register_timeout_s, give_up_waiting)
            timer.daemon = True
            timer.start()
            try:
                for response in call:
                    kind = response.WhichOneof("message")
                    if kind == "registered" and not registered:
                        timer.cancel()
                        registered = True
                        threads = self._begin(response.registered, outbox, reports, stop)
                    elif kind == "assignment":
                        result = self._assignments.handle(response.assignment)
                        outbox.put(messages.assignment_result(result))
            except grpc.RpcError:
                if timed_out.is_set() and not registered:
                    raise _SessionEnded(
                        f"no answer to Register within {self._timing.register_timeout_s:g} s"
                    ) from None
                raise
            finally:
                timer.cancel()
        finally:
            stop.set()
            self._end_current()
            for thread in threads:
                thread.join(JOIN_S)
            channel.close()

    def _begin(
        self,
        registered: link_pb2.Registered,
        outbox: Outbox,
        reports: SessionReports,
        stop: threading.Event,
    ) -> list[threading.Thread]:
        interval = registered.heartbeat_interval.ToTimedelta().total_seconds()
        heartbeats = Heartbeats(
            outbox, interval if interval > 0 else self._timing.heartbeat_s, stop
        )
        threads = [
            threading.Thread(target=heartbeats.run, name="fleet-heartbeats", daemon=True),
            threading.Thread(target=reports.run, name="fleet-reports", daemon=True),
        ]
        for thread in threads:
            thread.start()
        self.session_id = registered.session_id
        self.sessions += 1
        self._log.joined(self.host_id, registered.session_id)
        self._joined.set()
        return threads

    def _end_current(self) -> None:
        """Closes the sending side and cancels the call of the session now open, if any."""
        with self._lock:
            cancel, outbox = self._cancel_call, self._outbox
            self._cancel_call, self._outbox = None, None
        if outbox is not None:
            outbox.close()
        if cancel is not None:
            cancel()


# Codes that say the orchestrator (or the way to it) is not there, rather than that it
# answered and refused the agent.
_UNREACHABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED}
)


def _refused(error: grpc.RpcError) -> bool:
    return isinstance(error, grpc.Call) and error.code() not in _UNREACHABLE


def _describe(error: grpc.RpcError) -> str:
    """`UNAVAILABLE: failed to connect ...` from a gRPC error (a call is also its error)."""
    code = error.code() if isinstance(error, grpc.Call) else None
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    name = code.name if code is not None else "ERROR"
    return f"{name}: {details or 'no details'}"

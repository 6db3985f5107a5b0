"""The link's log: one warning per outage, news when the orchestrator refuses, and how
long it was gone once it is back."""

from __future__ import annotations

import logging

import pytest

from ozwald_agent.fleet.link_log import LinkLog

UNREACHABLE = "UNAVAILABLE: failed to connect to all addresses"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> LinkLog:
    caplog.set_level(logging.DEBUG, logger="ozwald_agent.fleet.link")
    now = iter(float(t) for t in range(100))
    return LinkLog("orch:7443", 10.0, clock=lambda: next(now))


def test_a_lost_stream_and_its_retries_are_one_warning(
    log: LinkLog, caplog: pytest.LogCaptureFixture
) -> None:
    log.joined("gpu-01", "s1")
    log.failed("the orchestrator ended the stream", was_joined=True, refused=False, retry_in_s=0.5)
    for _ in range(5):
        log.failed(UNREACHABLE, was_joined=False, refused=False, retry_in_s=1.0)
    log.joined("gpu-01", "s2")

    assert _warnings(caplog) == [
        "lost the orchestrator at orch:7443: the orchestrator ended the stream; reconnecting "
        "(the services keep running)"
    ]
    assert caplog.records[-1].getMessage() == (
        "joined the orchestrator at orch:7443 again after 1.0 s (session s2)"
    )


def test_an_orchestrator_unreachable_from_the_start_is_one_warning(
    log: LinkLog, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(4):
        log.failed(UNREACHABLE, was_joined=False, refused=False, retry_in_s=1.0)

    assert len(_warnings(caplog)) == 1
    assert _warnings(caplog)[0].startswith(
        f"cannot join the orchestrator at orch:7443: {UNREACHABLE}"
    )


def test_a_refusal_is_news_each_time_it_says_something_new(
    log: LinkLog, caplog: pytest.LogCaptureFixture
) -> None:
    log.failed(UNREACHABLE, was_joined=False, refused=False, retry_in_s=1.0)
    denied = "PERMISSION_DENIED: cannot register as host 'gpu-01'"
    for _ in range(3):
        log.failed(denied, was_joined=False, refused=True, retry_in_s=1.0)
    log.failed(UNREACHABLE, was_joined=False, refused=False, retry_in_s=1.0)

    assert [w.split(": ", 1)[1].split(";")[0] for w in _warnings(caplog)] == [
        UNREACHABLE,
        denied,
    ]

"""What people read about an instance no host can take: one sentence naming it once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.orchestrator.fakes import deployment
from tests.unit.orchestrator.test_fleet import Harness


@pytest.mark.asyncio
async def test_the_pending_event_names_the_instance_once(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    await harness.apply(deployment("embed", 1))
    [message] = harness.events("instance-pending")
    assert message == "embed-0 cannot be placed: no host has joined the fleet"
    assert harness.instance("embed-0").reason == message


@pytest.mark.asyncio
async def test_a_replica_asking_for_the_same_is_named_once_too(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.join("h1")
    await harness.apply(deployment("big", 2, memory_gib=64))
    messages = harness.events("instance-pending")
    assert len(messages) == 2
    for instance, message in zip(("big-0", "big-1"), messages, strict=True):
        assert message.count(instance) == 1, message
        assert message.startswith(f"{instance} cannot be placed")

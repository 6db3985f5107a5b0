"""An UpdateStrategy with its documented defaults filled in, in seconds."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from google.protobuf import duration_pb2
from ozwald.orchestrator.v1 import deployment_pb2

DEFAULT_MAX_PARALLEL = 1
DEFAULT_MIN_HEALTHY_S = 10.0
DEFAULT_HEALTHY_DEADLINE_S = 300.0
DEFAULT_PROGRESS_DEADLINE_S = 600.0


@dataclass(frozen=True)
class Strategy:
    """How a rollout proceeds (deployment.proto's UpdateStrategy, defaults applied)."""

    max_parallel: int = DEFAULT_MAX_PARALLEL
    min_healthy_s: float = DEFAULT_MIN_HEALTHY_S
    healthy_deadline_s: float = DEFAULT_HEALTHY_DEADLINE_S
    progress_deadline_s: float = DEFAULT_PROGRESS_DEADLINE_S
    auto_revert: bool = False
    canaries: int = 0
    auto_promote: bool = False

    @classmethod
    def of(cls, update: deployment_pb2.UpdateStrategy) -> Strategy:
        healthy_deadline = _seconds(update, "healthy_deadline", DEFAULT_HEALTHY_DEADLINE_S)
        progress = _seconds(update, "progress_deadline", DEFAULT_PROGRESS_DEADLINE_S)
        return cls(
            max_parallel=update.max_parallel or DEFAULT_MAX_PARALLEL,
            min_healthy_s=_seconds(update, "min_healthy_time", DEFAULT_MIN_HEALTHY_S),
            healthy_deadline_s=healthy_deadline,
            # A progress deadline shorter than the healthy deadline would fail a rollout
            # whose first instance is still within its own deadline; validation refuses
            # it in requests, and a stored one is read as the longer of the two.
            progress_deadline_s=max(progress, healthy_deadline),
            auto_revert=update.auto_revert,
            canaries=update.canaries,
            auto_promote=update.auto_promote,
        )

    def to_proto(self) -> deployment_pb2.UpdateStrategy:
        return deployment_pb2.UpdateStrategy(
            max_parallel=self.max_parallel,
            min_healthy_time=duration(self.min_healthy_s),
            healthy_deadline=duration(self.healthy_deadline_s),
            progress_deadline=duration(self.progress_deadline_s),
            auto_revert=self.auto_revert,
            canaries=self.canaries,
            auto_promote=self.auto_promote,
        )


def duration(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromTimedelta(datetime.timedelta(seconds=seconds))
    return value


def _seconds(update: deployment_pb2.UpdateStrategy, name: str, default: float) -> float:
    if not update.HasField(name):  # type: ignore[arg-type]
        return default
    value: duration_pb2.Duration = getattr(update, name)
    return value.ToTimedelta().total_seconds()


def update_problems(update: deployment_pb2.UpdateStrategy) -> list[str]:
    """What is wrong with a requested UpdateStrategy, in words; empty when it is valid."""
    problems: list[str] = []
    for name in ("min_healthy_time", "healthy_deadline", "progress_deadline"):
        if update.HasField(name) and _seconds(update, name, 0.0) < 0:
            problems.append(f"update.{name} must not be negative")
    strategy = Strategy.of(update)
    progress = _seconds(update, "progress_deadline", DEFAULT_PROGRESS_DEADLINE_S)
    if progress < strategy.healthy_deadline_s:
        problems.append(
            f"update.progress_deadline ({progress:g} s) is shorter than update.healthy_deadline "
            f"({strategy.healthy_deadline_s:g} s): the rollout would fail before its first "
            "instance's own deadline"
        )
    if strategy.min_healthy_s > strategy.healthy_deadline_s:
        problems.append(
            f"update.min_healthy_time ({strategy.min_healthy_s:g} s) is longer than "
            f"update.healthy_deadline ({strategy.healthy_deadline_s:g} s): no instance could "
            "become healthy in time"
        )
    return problems

"""The installed Ozwald release, for --version flags and the agent's host profile."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def ozwald_version() -> str:
    try:
        return version("ozwald")
    except PackageNotFoundError:
        # Run from a source tree that was never installed (e.g. scripts/gpu-check.sh).
        return "unknown"

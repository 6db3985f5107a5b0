"""Helpers for config tests: collect a config's diagnostics, find a text's place, fake hosts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from ozwald.common.v1 import gpu_pb2
from ozwald.common.v1.host_profile_pb2 import HostProfile

from ozwald_sdk.config import ConfigInvalidError, Diagnostic, load_config

ConfigWriter = Callable[[str], Path]
"""The `write` fixture: dedents YAML into tmp_path/ozwald.yml and returns the path."""


def diagnostics(path: Path) -> list[Diagnostic]:
    """The diagnostics loading `path` raises; fails the test if it loads."""
    with pytest.raises(ConfigInvalidError) as raised:
        load_config(path)
    return list(raised.value.diagnostics)


def rendered(path: Path) -> list[str]:
    return [d.render() for d in diagnostics(path)]


def position(path: Path, needle: str, occurrence: int = 1, *, skip: int = 0) -> str:
    """`FILE:LINE:COLUMN` of the `occurrence`-th `needle` in the file, found by text search,
    moved `skip` characters right (to point inside a needle made unique by context)."""
    text = path.read_text()
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    index += skip
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"{path}:{line}:{column}"


def host(*, nvidia: bool = False, amd: bool = False, name: str = "box") -> HostProfile:
    """A host profile with each vendor present or absent, as the agent reports them."""
    profile = HostProfile(hostname=name)
    profile.gpu_vendors.extend(
        [
            gpu_pb2.GpuVendorReport(
                vendor=gpu_pb2.GPU_VENDOR_NVIDIA,
                present=nvidia,
                absence_reason=gpu_pb2.GPU_ABSENCE_REASON_UNSPECIFIED
                if nvidia
                else gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER,
                devices=[gpu_pb2.GpuDevice(vendor=gpu_pb2.GPU_VENDOR_NVIDIA, index=0)]
                if nvidia
                else [],
            ),
            gpu_pb2.GpuVendorReport(
                vendor=gpu_pb2.GPU_VENDOR_AMD,
                present=amd,
                absence_reason=gpu_pb2.GPU_ABSENCE_REASON_UNSPECIFIED
                if amd
                else gpu_pb2.GPU_ABSENCE_REASON_NO_DEVICES,
            ),
        ]
    )
    return profile

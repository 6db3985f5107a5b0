"""Where the GPU part of a host profile comes from: this host, or a recorded snapshot."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ozwald_agent.hardware.amdsmi_library import AmdSmiLibrary
from ozwald_agent.hardware.amdsmi_real import AmdSmiPythonLibrary
from ozwald_agent.hardware.nvml_library import NvmlLibrary
from ozwald_agent.hardware.nvml_real import PynvmlLibrary


@dataclass(frozen=True)
class HardwareSources:
    """The GPU libraries and file trees the detectors read.

    `simulated_from` is empty for this host's own hardware and names the snapshot
    otherwise, so every GPU report can say it is simulated. `snapshot_dir` holds the
    directory a snapshot's files were written to, alive as long as these sources are.
    """

    nvml: NvmlLibrary
    amdsmi: AmdSmiLibrary
    sysfs_root: Path = Path("/sys")
    dev_root: Path = Path("/dev")
    simulated_from: str = ""
    snapshot_dir: tempfile.TemporaryDirectory[str] | None = field(
        default=None, repr=False, compare=False
    )

    @classmethod
    def real(cls) -> HardwareSources:
        """This host's NVML, amdsmi, /sys and /dev."""
        return cls(nvml=PynvmlLibrary(), amdsmi=AmdSmiPythonLibrary())

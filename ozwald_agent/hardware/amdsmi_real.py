"""AmdSmiLibrary backed by AMD's `amdsmi` Python package (ROCm's libamd_smi.so)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any, TypeVar

from ozwald_agent.hardware.library_answers import AmdAsicInfo, ProcessMemory
from ozwald_agent.hardware.library_error import (
    IMPORT_FAILED,
    IMPORT_MODULE_MISSING,
    LibraryCallError,
)

T = TypeVar("T")


class AmdSmiPythonLibrary:
    """Translates every amdsmi failure into `LibraryCallError` with amdsmi's status name.

    amdsmi is imported on `init()`: importing it loads libamd_smi.so, and on a host without
    ROCm that fails (with a KeyError, in amdsmi 7.0), which must only make AMD absent.
    """

    def __init__(self) -> None:
        self._amdsmi: Any = None
        self._handles: list[Any] = []

    def init(self) -> None:
        self._amdsmi = _import_amdsmi()
        self._call(lambda: self._amdsmi.amdsmi_init(self._amdsmi.AmdSmiInitFlags.INIT_AMD_GPUS))

    def shutdown(self) -> None:
        self._handles = []
        self._call(lambda: self._module().amdsmi_shut_down())

    def device_count(self) -> int:
        self._handles = list(self._call(lambda: self._module().amdsmi_get_processor_handles()))
        return len(self._handles)

    def asic_info(self, index: int) -> AmdAsicInfo:
        info = self._on_device(index, lambda smi, h: smi.amdsmi_get_gpu_asic_info(h))
        return AmdAsicInfo(
            market_name=str(info["market_name"]),
            device_id=str(info["device_id"]),
            asic_serial=str(info["asic_serial"]),
        )

    def pci_bus_id(self, index: int) -> str:
        return str(self._on_device(index, lambda smi, h: smi.amdsmi_get_gpu_device_bdf(h)))

    def vram_total_bytes(self, index: int) -> int:
        # amdsmi_get_gpu_memory_total answers in bytes; amdsmi_get_gpu_vram_usage only in MB.
        return int(
            self._on_device(
                index,
                lambda smi, h: smi.amdsmi_get_gpu_memory_total(h, smi.AmdSmiMemoryType.VRAM),
            )
        )

    def vram_used_bytes(self, index: int) -> int:
        return int(
            self._on_device(
                index,
                lambda smi, h: smi.amdsmi_get_gpu_memory_usage(h, smi.AmdSmiMemoryType.VRAM),
            )
        )

    def drm_render_minor(self, index: int) -> int:
        info = self._on_device(index, lambda smi, h: smi.amdsmi_get_gpu_enumeration_info(h))
        minor = info["drm_render"]
        if not isinstance(minor, int):
            raise LibraryCallError("AMDSMI_STATUS_NO_DATA", f"no render node: {minor!r}")
        return minor

    def driver_version(self, index: int) -> str:
        info = self._on_device(index, lambda smi, h: smi.amdsmi_get_gpu_driver_info(h))
        return str(info["driver_version"])

    def processes(self, index: int) -> list[ProcessMemory]:
        entries = self._on_device(index, lambda smi, h: smi.amdsmi_get_gpu_process_list(h))
        return [
            ProcessMemory(pid=int(e["pid"]), used_bytes=int(e["memory_usage"]["vram_mem"]))
            for e in entries
        ]

    def _module(self) -> Any:
        if self._amdsmi is None:
            raise LibraryCallError("AMDSMI_STATUS_NOT_INIT", "init() was not called")
        return self._amdsmi

    def _on_device(self, index: int, query: Callable[[Any, Any], T]) -> T:
        smi = self._module()
        if not 0 <= index < len(self._handles):
            raise LibraryCallError("AMDSMI_STATUS_INVAL", f"no GPU with index {index}")
        handle = self._handles[index]
        return self._call(lambda: query(smi, handle))

    def _call(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except Exception as e:
            # Older amdsmi releases lack some functions (AttributeError) and answers can be
            # malformed (KeyError, ValueError); none of them may escape a detector.
            raise LibraryCallError(_error_code(self._amdsmi, e), str(e)) from e


def _import_amdsmi() -> Any:
    # amdsmi prints its library search failures to stdout, which would corrupt the JSON
    # that `ozwald-agent record-hardware -` writes there; keep the text for the report.
    # redirect_stdout swaps sys.stdout process-wide for this instant: log handlers keep
    # their own stream, and profile collection runs detectors one at a time.
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            import amdsmi  # type: ignore[import-untyped]
    except ModuleNotFoundError as e:
        if e.name == "amdsmi":
            raise LibraryCallError(IMPORT_MODULE_MISSING, f"cannot import amdsmi: {e}") from e
        raise _import_failed(e, printed.getvalue()) from e
    except Exception as e:
        raise _import_failed(e, printed.getvalue()) from e
    return amdsmi


def _import_failed(error: Exception, printed: str) -> LibraryCallError:
    said = " ".join(line.strip() for line in printed.splitlines() if line.strip())
    message = f"cannot import amdsmi: {type(error).__name__}: {error}"
    return LibraryCallError(IMPORT_FAILED, f"{message} ({said})" if said else message)


def _error_code(amdsmi: Any, error: Exception) -> str:
    if amdsmi is not None and isinstance(error, amdsmi.AmdSmiLibraryException):
        wrapper = amdsmi.amdsmi_wrapper
        for name in dir(wrapper):
            if name.startswith("AMDSMI_STATUS_") and getattr(wrapper, name) == error.err_code:
                return name
        return f"AMDSMI_STATUS_{error.err_code}"
    return type(error).__name__

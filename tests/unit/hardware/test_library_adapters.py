"""The real-library adapters' translation of pynvml and amdsmi answers and failures.

This host has neither GPUs nor ROCm, so the bindings' functions are replaced: pynvml's one
by one inside the real module (its error classes stay real), amdsmi's by a stand-in module
that follows amdsmi 7.0's Python API.
"""

from __future__ import annotations

import enum
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml  # type: ignore[import-untyped]
import pytest

from ozwald_agent.hardware.amdsmi_real import AmdSmiPythonLibrary
from ozwald_agent.hardware.amdsmi_replay import record_amdsmi
from ozwald_agent.hardware.library_error import LibraryCallError
from ozwald_agent.hardware.nvml_real import PynvmlLibrary
from ozwald_agent.hardware.nvml_replay import record_nvml


def _raise(error: BaseException) -> Any:
    def fail(*_args: object) -> None:
        raise error

    return fail


@pytest.fixture
def healthy_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {
        "nvmlInit": None,
        "nvmlShutdown": None,
        "nvmlSystemGetDriverVersion": "550.54.15",
        "nvmlSystemGetCudaDriverVersion_v2": 12040,
        "nvmlDeviceGetCount": 1,
        "nvmlDeviceGetHandleByIndex": "handle-0",
        "nvmlDeviceGetUUID": "GPU-4f5b5c1e-8d2a-4b7e-9c3f-2a1d6e8b7c90",
        "nvmlDeviceGetName": "NVIDIA H100 80GB HBM3",
        "nvmlDeviceGetPciInfo": SimpleNamespace(busId="00000000:18:00.0"),
        "nvmlDeviceGetMemoryInfo": SimpleNamespace(total=100, free=60, used=40),
        "nvmlDeviceGetCudaComputeCapability": (9, 0),
        "nvmlDeviceGetMigMode": [0, 0],
        "nvmlDeviceGetComputeRunningProcesses": [
            SimpleNamespace(pid=42, usedGpuMemory=None),
            SimpleNamespace(pid=43, usedGpuMemory=1024),
        ],
    }
    for name, answer in answers.items():
        monkeypatch.setattr(pynvml, name, lambda *_args, answer=answer: answer)


def test_pynvml_answers_are_recorded_as_plain_values(healthy_nvml: None) -> None:
    recorded = record_nvml(PynvmlLibrary())

    assert recorded["driver_version"] == {"value": "550.54.15"}
    assert recorded["cuda_driver_version"] == {"value": 12040}
    assert recorded["devices"] == [
        {
            "uuid": {"value": "GPU-4f5b5c1e-8d2a-4b7e-9c3f-2a1d6e8b7c90"},
            "name": {"value": "NVIDIA H100 80GB HBM3"},
            "pci_bus_id": {"value": "00000000:18:00.0"},
            "memory": {"value": {"total": 100, "free": 60, "used": 40}},
            "compute_capability": {"value": [9, 0]},
            "mig_mode": {"value": [0, 0]},
            "compute_processes": {
                "value": [{"pid": 42, "used_bytes": None}, {"pid": 43, "used_bytes": 1024}]
            },
        }
    ]


@pytest.mark.parametrize(
    ("value", "code", "message"),
    [
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "NVML_ERROR_DRIVER_NOT_LOADED", "Driver Not Loaded"),
        (pynvml.NVML_ERROR_NO_PERMISSION, "NVML_ERROR_NO_PERMISSION", "Insufficient Permissions"),
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "NVML_ERROR_LIBRARY_NOT_FOUND", "NVML Shared"),
    ],
)
def test_nvml_errors_keep_nvmls_name_for_them(
    monkeypatch: pytest.MonkeyPatch, value: int, code: str, message: str
) -> None:
    monkeypatch.setattr(pynvml, "nvmlInit", _raise(pynvml.NVMLError(value)))

    with pytest.raises(LibraryCallError) as failed:
        PynvmlLibrary().init()

    assert failed.value.code == code
    assert failed.value.message.startswith(message)


def test_a_non_nvml_failure_inside_pynvml_is_contained(
    healthy_nvml: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pynvml, "nvmlDeviceGetUUID", _raise(OSError("libnvidia-ml.so: bad ELF")))
    nvml = PynvmlLibrary()
    nvml.init()

    with pytest.raises(LibraryCallError) as failed:
        nvml.device_uuid(0)

    assert (failed.value.code, failed.value.message) == ("OSError", "libnvidia-ml.so: bad ELF")


def test_a_missing_pynvml_is_reported_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)

    with pytest.raises(LibraryCallError) as failed:
        PynvmlLibrary().init()

    assert failed.value.code == "IMPORT_MODULE_MISSING"


class _AmdSmiLibraryException(Exception):
    def __init__(self, err_code: int) -> None:
        super().__init__(f"Error code:\n\t{err_code}")
        self.err_code = err_code


def _fake_amdsmi(**replaced: object) -> types.ModuleType:
    """A module shaped like amdsmi 7.0's public API, answering for one MI300X."""
    module = types.ModuleType("amdsmi")
    attributes: dict[str, object] = {
        "AmdSmiInitFlags": enum.IntFlag("AmdSmiInitFlags", {"INIT_AMD_GPUS": 2}),
        "AmdSmiMemoryType": enum.IntEnum("AmdSmiMemoryType", {"VRAM": 0, "GTT": 2}),
        "AmdSmiLibraryException": _AmdSmiLibraryException,
        "amdsmi_wrapper": SimpleNamespace(AMDSMI_STATUS_NOT_SUPPORTED=2, AMDSMI_STATUS_NO_PERM=10),
        "amdsmi_init": lambda flag: None,
        "amdsmi_shut_down": lambda: None,
        "amdsmi_get_processor_handles": lambda: ["handle-0"],
        "amdsmi_get_gpu_asic_info": lambda h: {
            "market_name": "AMD Instinct MI300X",
            "vendor_id": "0x1002",
            "device_id": "0x74a1",
            "asic_serial": "0x5E8B3C2A1F4D6E70",
            "num_compute_units": 304,
        },
        "amdsmi_get_gpu_device_bdf": lambda h: "0000:0c:00.0",
        "amdsmi_get_gpu_memory_total": lambda h, kind: 206158430208 if kind == 0 else 1,
        "amdsmi_get_gpu_memory_usage": lambda h, kind: 299016192 if kind == 0 else 1,
        "amdsmi_get_gpu_enumeration_info": lambda h: {"drm_render": 128, "drm_card": 1},
        "amdsmi_get_gpu_driver_info": lambda h: {
            "driver_name": "amdgpu",
            "driver_version": "6.8.5",
            "driver_date": "2015/01/01 00:00",
        },
        "amdsmi_get_gpu_process_list": _raise(_AmdSmiLibraryException(2)),
    }
    attributes.update(replaced)
    for name, attribute in attributes.items():
        setattr(module, name, attribute)
    return module


def test_amdsmi_answers_are_recorded_as_plain_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "amdsmi", _fake_amdsmi())

    recorded = record_amdsmi(AmdSmiPythonLibrary())

    assert recorded == {
        "init": {"value": None},
        "device_count": {"value": 1},
        "devices": [
            {
                "asic_info": {
                    "value": {
                        "market_name": "AMD Instinct MI300X",
                        "device_id": "0x74a1",
                        "asic_serial": "0x5E8B3C2A1F4D6E70",
                    }
                },
                "pci_bus_id": {"value": "0000:0c:00.0"},
                "vram_total_bytes": {"value": 206158430208},
                "vram_used_bytes": {"value": 299016192},
                "drm_render_minor": {"value": 128},
                "driver_version": {"value": "6.8.5"},
                "processes": {
                    "error": {"code": "AMDSMI_STATUS_NOT_SUPPORTED", "message": "Error code:\n\t2"}
                },
            }
        ],
    }


def test_amdsmi_status_codes_keep_amdsmis_name(monkeypatch: pytest.MonkeyPatch) -> None:
    failing = _fake_amdsmi(amdsmi_init=_raise(_AmdSmiLibraryException(10)))
    monkeypatch.setitem(sys.modules, "amdsmi", failing)

    with pytest.raises(LibraryCallError) as failed:
        AmdSmiPythonLibrary().init()

    assert failed.value.code == "AMDSMI_STATUS_NO_PERM"


def test_an_older_amdsmi_without_a_function_fails_only_that_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = _fake_amdsmi()
    del old.amdsmi_get_gpu_enumeration_info
    monkeypatch.setitem(sys.modules, "amdsmi", old)
    smi = AmdSmiPythonLibrary()
    smi.init()
    smi.device_count()

    with pytest.raises(LibraryCallError) as failed:
        smi.drm_render_minor(0)

    assert failed.value.code == "AttributeError"
    assert smi.vram_total_bytes(0) == 206158430208


def test_amdsmi_without_its_native_library_fails_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # What amdsmi 7.0 does where ROCm is absent: print where it looked, then KeyError.
    package = tmp_path / "amdsmi"
    package.mkdir()
    (package / "__init__.py").write_text(
        "print('Unable to find libamd_smi.so library try installing amd-smi-lib')\n"
        "raise KeyError('libamd_smi.so')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)

    with pytest.raises(LibraryCallError) as failed:
        AmdSmiPythonLibrary().init()

    assert failed.value.code == "IMPORT_FAILED"
    assert "KeyError: 'libamd_smi.so'" in failed.value.message
    assert "Unable to find libamd_smi.so" in failed.value.message
    assert capsys.readouterr().out == ""


def test_a_missing_amdsmi_is_reported_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "amdsmi", None)

    with pytest.raises(LibraryCallError) as failed:
        AmdSmiPythonLibrary().init()

    assert failed.value.code == "IMPORT_MODULE_MISSING"

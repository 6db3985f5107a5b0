"""AMD GPUs through amdsmi, falling back to the amdgpu driver's sysfs files."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ozwald.common.v1 import gpu_pb2

from ozwald_agent.hardware.amd_sysfs import RENDER_NODE_DIR, AmdSysfs, SysfsAmdGpu
from ozwald_agent.hardware.amdsmi_library import AmdSmiLibrary
from ozwald_agent.hardware.attempt import attempt
from ozwald_agent.hardware.library_error import (
    IMPORT_FAILED,
    IMPORT_MODULE_MISSING,
    LibraryCallError,
)
from ozwald_agent.hardware.pci import normalize_pci_bus_id

logger = logging.getLogger(__name__)

_REASONS: dict[str, gpu_pb2.GpuAbsenceReason.ValueType] = {
    IMPORT_MODULE_MISSING: gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_MISSING,
    # The amdsmi package is there but libamd_smi.so (ROCm) is not: amdsmi 7 fails its import.
    IMPORT_FAILED: gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER,
    "AMDSMI_STATUS_DRIVER_NOT_LOADED": gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER,
    "AMDSMI_STATUS_FAIL_LOAD_MODULE": gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER,
    "AMDSMI_STATUS_NO_PERM": gpu_pb2.GPU_ABSENCE_REASON_PERMISSION_DENIED,
}


def amdsmi_absence_reason(code: str) -> gpu_pb2.GpuAbsenceReason.ValueType:
    """The absence reason an amdsmi failure (or the binding's import failure) stands for."""
    return _REASONS.get(code, gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_ERROR)


def serial_uuid(serial: str) -> str:
    """The ASIC serial as amdsmi prints it ("0x" and 16 upper-case hex digits).

    sysfs's unique_id holds the same number without the prefix; one spelling keeps a GPU's
    id stable whichever way it was found.
    """
    text = serial.strip()
    if not text or text == "N/A":
        return ""
    try:
        return f"0x{int(text, 16):016X}"
    except ValueError:
        return text


class AmdDetector:
    """Reports AMD GPUs, or the most specific reason why there are none.

    amdsmi is asked first; when it is unusable or sees nothing, sysfs decides: AMD DRM cards
    are devices, AMD GPUs on the PCI bus without a DRM card mean no driver, neither means
    no devices.
    """

    def __init__(self, amdsmi: AmdSmiLibrary, sysfs: AmdSysfs) -> None:
        self._amdsmi = amdsmi
        self._sysfs = sysfs

    def available(self) -> bool:
        try:
            self._amdsmi.init()
        except LibraryCallError:
            return bool(self._sysfs.drm_cards())
        self._shutdown()
        return True

    def detect(self) -> gpu_pb2.GpuVendorReport:
        report = gpu_pb2.GpuVendorReport(vendor=gpu_pb2.GPU_VENDOR_AMD, detection_method="amdsmi")
        amdsmi_error = self._detect_with_amdsmi(report)
        if report.devices:
            report.detail = f"amdsmi sees {len(report.devices)} AMD GPU(s)"
        else:
            report.detection_method = "sysfs"
            self._detect_with_sysfs(report, amdsmi_error)
        if report.devices:
            report.present = True
            self._require_kfd(report)
        return report

    def _detect_with_amdsmi(self, report: gpu_pb2.GpuVendorReport) -> LibraryCallError | None:
        """Fills devices through amdsmi; returns why amdsmi could not be used, if it could not."""
        try:
            self._amdsmi.init()
        except LibraryCallError as e:
            return e
        try:
            count = self._amdsmi.device_count()
        except LibraryCallError as e:
            return e
        else:
            for index in range(count):
                report.devices.append(self._amdsmi_device(index, report))
            if count:
                version = attempt(
                    lambda: self._amdsmi.driver_version(0), report.warnings.append, "driver version"
                )
                report.driver_version = "" if version in (None, "N/A") else str(version)
            return None
        finally:
            self._shutdown()

    def _amdsmi_device(self, index: int, report: gpu_pb2.GpuVendorReport) -> gpu_pb2.GpuDevice:
        smi = self._amdsmi

        def warn(text: str) -> None:
            report.warnings.append(f"GPU {index}: {text}")

        asic = attempt(lambda: smi.asic_info(index), warn, "ASIC info")
        bus_id = normalize_pci_bus_id(
            attempt(lambda: smi.pci_bus_id(index), warn, "PCI bus id") or ""
        )
        device_id = "" if asic is None or asic.device_id == "N/A" else asic.device_id.lower()
        name = "" if asic is None or asic.market_name == "N/A" else asic.market_name
        device = gpu_pb2.GpuDevice(
            vendor=gpu_pb2.GPU_VENDOR_AMD,
            index=index,
            uuid=_uuid(serial_uuid(asic.asic_serial) if asic else "", bus_id),
            name=name or _fallback_name(device_id),
            pci_bus_id=bus_id,
            pci_device_id=device_id,
            render_node=self._render_node(index, bus_id, warn),
        )
        total = attempt(lambda: smi.vram_total_bytes(index), warn, "VRAM total")
        used = attempt(lambda: smi.vram_used_bytes(index), warn, "VRAM used")
        _fill_memory(device, total, used)
        for process in attempt(lambda: smi.processes(index), warn, "processes") or []:
            device.processes.add(pid=process.pid, used_memory_bytes=process.used_bytes or 0)
        return device

    def _render_node(self, index: int, bus_id: str, warn: Callable[[str], None]) -> str:
        try:
            return f"{RENDER_NODE_DIR}/renderD{self._amdsmi.drm_render_minor(index)}"
        except LibraryCallError as e:
            # Older amdsmi releases have no enumeration info; the driver's sysfs knows too.
            for card in self._sysfs.drm_cards():
                if card.pci_bus_id == bus_id and card.render_node:
                    return card.render_node
            warn(f"render node unknown: {e}")
            return ""

    def _detect_with_sysfs(
        self, report: gpu_pb2.GpuVendorReport, amdsmi_error: LibraryCallError | None
    ) -> None:
        amdsmi_said = (
            f"amdsmi is unusable: {amdsmi_error}"
            if amdsmi_error
            else "amdsmi answers but sees no GPU"
        )
        cards = self._sysfs.drm_cards()
        if cards:
            for index, card in enumerate(cards):
                report.devices.append(_sysfs_device(index, card, report))
            report.driver_version = self._sysfs.driver_version()
            report.warnings.append("process lists are unknown without amdsmi")
            report.detail = f"found {len(cards)} AMD GPU(s) in sysfs; {amdsmi_said}"
            return
        on_bus = self._sysfs.pci_gpu_functions()
        if on_bus:
            report.absence_reason = gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER
            report.detail = (
                f"AMD GPU(s) at {', '.join(on_bus)} on the PCI bus, but no amdgpu DRM device: "
                f"the amdgpu kernel driver is not loaded or not bound to them; {amdsmi_said}"
            )
        elif on_bus is not None or amdsmi_error is None:
            report.absence_reason = gpu_pb2.GPU_ABSENCE_REASON_NO_DEVICES
            report.detail = f"no AMD GPU on this host's PCI bus; {amdsmi_said}"
        else:
            report.absence_reason = amdsmi_absence_reason(amdsmi_error.code)
            report.detail = f"{amdsmi_said}; sysfs shows no AMD GPU and /sys/bus/pci is unreadable"

    def _require_kfd(self, report: gpu_pb2.GpuVendorReport) -> None:
        if self._sysfs.kfd_present():
            return
        # Without /dev/kfd no ROCm program can run, so the GPUs are listed but not usable.
        report.present = False
        report.absence_reason = gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER
        report.detail += (
            "; but /dev/kfd is missing: the amdgpu driver offers no compute (ROCm) interface"
        )

    def _shutdown(self) -> None:
        try:
            self._amdsmi.shutdown()
        except LibraryCallError as e:
            logger.warning("amdsmi_shut_down failed: %s", e)


def _sysfs_device(
    index: int, card: SysfsAmdGpu, report: gpu_pb2.GpuVendorReport
) -> gpu_pb2.GpuDevice:
    device = gpu_pb2.GpuDevice(
        vendor=gpu_pb2.GPU_VENDOR_AMD,
        index=index,
        uuid=_uuid(serial_uuid(card.serial), card.pci_bus_id),
        name=card.product_name or _fallback_name(card.pci_device_id),
        pci_bus_id=card.pci_bus_id,
        pci_device_id=card.pci_device_id,
        render_node=card.render_node,
    )
    _fill_memory(device, card.vram_total_bytes, card.vram_used_bytes)
    missing = [
        what
        for what, known in (
            ("PCI bus id", card.pci_bus_id),
            ("VRAM size", card.vram_total_bytes is not None),
            ("render node", card.render_node),
        )
        if not known
    ]
    if missing:
        report.warnings.append(f"GPU {index}: sysfs does not say its {', '.join(missing)}")
    return device


def _uuid(serial: str, bus_id: str) -> str:
    if serial:
        return serial
    return f"pci-{bus_id}" if bus_id else ""


def _fallback_name(device_id: str) -> str:
    return f"AMD GPU {device_id}" if device_id else "AMD GPU"


def _fill_memory(device: gpu_pb2.GpuDevice, total: int | None, used: int | None) -> None:
    if total is None:
        return
    device.memory_total_bytes = total
    if used is not None:
        device.memory_used_bytes = used
        device.memory_free_bytes = max(total - used, 0)

"""PCI bus ids in one spelling, whichever library reported them."""

from __future__ import annotations


def normalize_pci_bus_id(bus_id: str) -> str:
    """Lower-case domain:bus:device.function with a 4-digit domain, as sysfs and lspci write it.

    NVML writes an 8-digit domain ("00000000:17:00.0"); amdsmi and sysfs write 4 digits.
    One spelling lets people and tools match a GPU across vendors and /sys/bus/pci.
    """
    text = bus_id.strip().lower()
    domain, sep, rest = text.partition(":")
    if not sep or not rest:
        return text
    try:
        return f"{int(domain, 16):04x}:{rest}"
    except ValueError:
        return text

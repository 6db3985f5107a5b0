"""What the volume layer raises; each is a ContainerRuntimeError, so a service whose
volume cannot be opened fails with the message and remedy, like any create failure."""

from __future__ import annotations

from ozwald_agent.runtime.errors import ContainerRuntimeError


class VolumeError(ContainerRuntimeError):
    """A volume could not be prepared, mounted or unmounted."""

    reason = "VOLUME_ERROR"


class BackendUnavailableError(VolumeError):
    """The backend cannot run on this host (the message says why)."""

    reason = "VOLUME_BACKEND_UNAVAILABLE"


class VolumeKeyError(VolumeError):
    """The key is unavailable (vault locked, secret missing) or does not open the volume."""

    reason = "VOLUME_KEY"


class VolumeNotFoundError(VolumeError):
    reason = "VOLUME_NOT_FOUND"

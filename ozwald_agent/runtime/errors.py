"""What the container runtime raises: one small hierarchy with stable reason codes.

Callers (the reconciler, the RPC layer) branch on the class or on `reason`, show `message`
and `remedy` to people, and never see a docker SDK exception or a traceback: every SDK or
transport error is translated at the boundary (see `docker_errors.py`) and chained with
`raise ... from`, so the original stays available to logs and debuggers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ozwald_agent.runtime.container_info import ContainerInfo


class ContainerRuntimeError(Exception):
    """Base class: `message` says what failed and why, `remedy` what to do next.

    `reason` is a stable UPPER_SNAKE code, the same one an RPC would put in its ErrorInfo.
    `str(error)` is the message followed by the remedy, ready for a log line or a CLI.
    """

    reason: ClassVar[str] = "CONTAINER_RUNTIME_ERROR"

    def __init__(self, message: str, *, remedy: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy

    def __str__(self) -> str:
        return f"{self.message}; {self.remedy}" if self.remedy else self.message


class EngineUnavailableError(ContainerRuntimeError):
    """The Docker Engine did not answer (socket missing, refused, timed out)."""

    reason = "ENGINE_UNAVAILABLE"


class EngineError(ContainerRuntimeError):
    """The engine answered but refused or failed the request, for a reason not mapped below."""

    reason = "ENGINE_ERROR"


class ImageNotPresentError(ContainerRuntimeError):
    """The image is not on this host; the agent never pulls."""

    reason = "IMAGE_NOT_PRESENT"

    def __init__(self, image: str, *, message: str = "", remedy: str = "") -> None:
        super().__init__(
            message or f"image {image} is not present on this host",
            remedy=remedy
            or (
                f"build or load it on this host first (e.g. `docker load -i FILE`, "
                f"`docker build -t {image} .`, or `docker pull {image}` where a registry "
                "is reachable); the agent never pulls images"
            ),
        )
        self.image = image


class InvalidSpecError(ContainerRuntimeError):
    """The spec (or its GPU assignment) cannot be turned into a container as given."""

    reason = "SPEC_INVALID"


class EnvFileError(InvalidSpecError):
    """An env file is missing, unreadable or malformed; `path` and `line` (1-based) say where."""

    reason = "ENV_FILE_INVALID"

    def __init__(self, path: str, problem: str, *, line: int = 0, remedy: str = "") -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"env file {where}: {problem}", remedy=remedy)
        self.path = path
        self.line = line


class MountSourceMissingError(InvalidSpecError):
    """A bind mount's host path does not exist."""

    reason = "MOUNT_SOURCE_MISSING"


class GpuUnavailableError(ContainerRuntimeError):
    """The engine cannot give the container its GPUs (driver, toolkit or device missing)."""

    reason = "GPU_UNAVAILABLE"


class PortInUseError(ContainerRuntimeError):
    """A portal's host port is already bound on this host."""

    reason = "PORT_IN_USE"


class ContainerNotFoundError(ContainerRuntimeError):
    """No container by that id or name (it was removed, or never created)."""

    reason = "CONTAINER_NOT_FOUND"


class ContainerNotRunningError(ContainerRuntimeError):
    """The operation (exec, IP lookup) needs a running container."""

    reason = "CONTAINER_NOT_RUNNING"


class ContainerExistsError(ContainerRuntimeError):
    """A container with the deterministic name already exists; nothing was created.

    `existing` is that container as inspected (None when it vanished in between). Whether
    to adopt it, replace it or refuse is the caller's decision: see `ContainerInfo.owner`
    and `ContainerInfo.service`.
    """

    reason = "CONTAINER_EXISTS"

    def __init__(self, message: str, *, existing: ContainerInfo | None, remedy: str = "") -> None:
        super().__init__(message, remedy=remedy)
        self.existing = existing


class NameConflictError(ContainerRuntimeError):
    """A network or volume with Ozwald's name exists but belongs to something else."""

    reason = "NAME_CONFLICT"

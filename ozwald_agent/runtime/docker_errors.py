"""docker SDK and transport errors -> the runtime's own errors, with a clear message each.

Every engine call in the runtime runs inside `engine_call(...)`, which names what was being
done so the message reads "creating container ozwald-main-web: ..." rather than an HTTP
status line. The engine's own words (its "explanation") are kept: they are usually the
most precise description of the problem there is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import docker.errors
import requests.exceptions

from ozwald_agent.runtime.errors import (
    ContainerNotFoundError,
    ContainerNotRunningError,
    ContainerRuntimeError,
    EngineError,
    EngineUnavailableError,
    GpuUnavailableError,
    ImageNotPresentError,
    MountSourceMissingError,
    PortInUseError,
)

logger = logging.getLogger(__name__)

ENGINE_REMEDY = (
    "start the Docker Engine (`sudo systemctl start docker`; on a development machine "
    "`make docker`) and check that DOCKER_HOST, if set, points at it"
)
_HTTP_NOT_FOUND = 404
_HTTP_CONFLICT = 409


@contextmanager
def engine_call(
    action: str, *, image: str | None = None, container: str | None = None
) -> Iterator[None]:
    """Runs the body, turning any SDK or transport error into a ContainerRuntimeError."""
    try:
        yield
    except ContainerRuntimeError:
        raise
    except Exception as e:
        translated = translate(e, action, image=image, container=container)
        if translated is None:
            raise
        logger.debug("%s failed: %r", action, e)
        raise translated from e


def translate(
    error: BaseException,
    action: str,
    *,
    image: str | None = None,
    container: str | None = None,
) -> ContainerRuntimeError | None:
    """The runtime error for `error`, or None when it is not an engine or transport error."""
    if isinstance(error, docker.errors.ImageNotFound) and image:
        return ImageNotPresentError(image, message=f"{action}: image {image} is not present")
    if isinstance(error, docker.errors.APIError):
        return _api_error(error, action, image=image, container=container)
    if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return EngineUnavailableError(
            f"{action}: the Docker Engine did not answer ({_cause(error)})", remedy=ENGINE_REMEDY
        )
    if isinstance(error, docker.errors.DockerException):
        # What the SDK raises itself, e.g. "Error while fetching server API version" when
        # no engine answers as the client is built.
        text = str(error)
        if "Connection" in text or "fetching server API version" in text:
            return EngineUnavailableError(
                f"{action}: the Docker Engine did not answer ({text})", remedy=ENGINE_REMEDY
            )
        return EngineError(f"{action}: {text}")
    if isinstance(error, requests.exceptions.RequestException):
        return EngineError(f"{action}: {error}")
    return None


def _api_error(
    error: docker.errors.APIError,
    action: str,
    *,
    image: str | None,
    container: str | None,
) -> ContainerRuntimeError:
    explanation = str(error.explanation or error)
    status = error.status_code
    lowered = explanation.lower()
    if status == _HTTP_NOT_FOUND and "no such image" in lowered and image:
        return ImageNotPresentError(image, message=f"{action}: image {image} is not present")
    if status == _HTTP_NOT_FOUND and "no such container" in lowered:
        subject = f"no container {container}" if container else "no such container"
        return ContainerNotFoundError(
            f"{action}: {subject} on this engine ({explanation})",
            remedy="it was removed (by hand or by another process); list the agent's "
            "containers again",
        )
    if status == _HTTP_CONFLICT and "is not running" in lowered:
        return ContainerNotRunningError(f"{action}: {explanation}")
    if "bind source path does not exist" in lowered:
        return MountSourceMissingError(
            f"{action}: {explanation}",
            remedy="create the host path, or fix the volume's source in ozwald.yml",
        )
    if "address already in use" in lowered or "port is already allocated" in lowered:
        return PortInUseError(
            f"{action}: a portal's host port is already in use ({explanation})",
            remedy="free the port (`ss -ltnp` shows who holds it) or choose another host_port",
        )
    if "could not select device driver" in lowered:
        return GpuUnavailableError(
            f"{action}: the engine cannot hand out NVIDIA GPUs ({explanation})",
            remedy="install the NVIDIA Container Toolkit and run `nvidia-ctk runtime "
            "configure --runtime=docker`, then restart the Docker Engine",
        )
    if "error gathering device information" in lowered or (
        "/dev/" in explanation and "no such file or directory" in lowered
    ):
        return GpuUnavailableError(
            f"{action}: a GPU device node is missing ({explanation})",
            remedy="check that the GPU driver is loaded and the device nodes exist "
            "(ls -l /dev/kfd /dev/dri), then detect the hardware again",
        )
    return EngineError(f"{action}: the Docker Engine refused: {explanation}")


def _cause(error: BaseException) -> str:
    """The innermost OS error's words: 'No such file or directory', 'Connection refused'."""
    seen: set[int] = set()
    current: BaseException | None = error
    innermost: BaseException = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        innermost = current
        nested = [a for a in current.args if isinstance(a, BaseException)]
        current = current.__cause__ or current.__context__ or (nested[-1] if nested else None)
    if isinstance(innermost, OSError) and innermost.strerror:
        return innermost.strerror
    return str(innermost) or type(innermost).__name__

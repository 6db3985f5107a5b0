"""The agent's container layer: admitted ServiceSpecs become containers on the Docker Engine.

Entry points: `DockerRuntime` (the `ContainerRuntime` protocol on Docker), `run_probe` for
health probes, `DockerHostFacts` for admission's checks, and the pure pieces beneath them
(`build_container_plan`, `read_env_files`, `ServiceLabels`, names) that tests and other
layers can use without an engine. See docs in each module for the decisions taken.
"""

from ozwald_agent.runtime.container_info import (
    ContainerInfo,
    ContainerState,
    PublishedPort,
    StopResult,
)
from ozwald_agent.runtime.container_spec import (
    DEFAULT_NOFILE_LIMIT,
    DEFAULT_PIDS_LIMIT,
    ContainerPlan,
    RuntimeSettings,
    build_container_plan,
)
from ozwald_agent.runtime.docker_runtime import DEFAULT_STOP_TIMEOUT_S, DockerRuntime
from ozwald_agent.runtime.env_files import parse_env_text, read_env_files
from ozwald_agent.runtime.errors import (
    ContainerExistsError,
    ContainerNotFoundError,
    ContainerNotRunningError,
    ContainerRuntimeError,
    EngineError,
    EngineUnavailableError,
    EnvFileError,
    GpuUnavailableError,
    ImageNotPresentError,
    InvalidSpecError,
    MountSourceMissingError,
    NameConflictError,
    PortInUseError,
)
from ozwald_agent.runtime.events import ContainerExited, EventsResumed, RuntimeEvent
from ozwald_agent.runtime.exec import ExecResult
from ozwald_agent.runtime.gpus import GpuAssignment
from ozwald_agent.runtime.host_facts import DockerHostFacts, HostFacts, PortCheck
from ozwald_agent.runtime.labels import ServiceLabels
from ozwald_agent.runtime.naming import container_name, declared_network_name, realm_network_name
from ozwald_agent.runtime.probes import ProbeResult, probe_command, probe_http, run_probe
from ozwald_agent.runtime.protocol import ContainerRuntime
from ozwald_agent.runtime.streams import StoppableIterator

__all__ = [
    "DEFAULT_NOFILE_LIMIT",
    "DEFAULT_PIDS_LIMIT",
    "DEFAULT_STOP_TIMEOUT_S",
    "ContainerExistsError",
    "ContainerExited",
    "ContainerInfo",
    "ContainerNotFoundError",
    "ContainerNotRunningError",
    "ContainerPlan",
    "ContainerRuntime",
    "ContainerRuntimeError",
    "ContainerState",
    "DockerHostFacts",
    "DockerRuntime",
    "EngineError",
    "EngineUnavailableError",
    "EnvFileError",
    "EventsResumed",
    "ExecResult",
    "GpuAssignment",
    "GpuUnavailableError",
    "HostFacts",
    "ImageNotPresentError",
    "InvalidSpecError",
    "MountSourceMissingError",
    "NameConflictError",
    "PortCheck",
    "PortInUseError",
    "ProbeResult",
    "PublishedPort",
    "RuntimeEvent",
    "RuntimeSettings",
    "ServiceLabels",
    "StopResult",
    "StoppableIterator",
    "build_container_plan",
    "container_name",
    "declared_network_name",
    "parse_env_text",
    "probe_command",
    "probe_http",
    "read_env_files",
    "realm_network_name",
    "run_probe",
]

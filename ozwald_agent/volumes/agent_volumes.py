"""The encrypted volumes' parts as the agent daemon wires them: mounts, runtime wrapper,
admission gate, RPCs, and the sweeps at start and stop."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import grpc
from ozwald.agent.v1 import volume_service_pb2, volume_service_pb2_grpc

from ozwald_agent.runtime.docker_runtime import DockerRuntime
from ozwald_agent.runtime.errors import ContainerRuntimeError
from ozwald_agent.runtime.protocol import ContainerRuntime
from ozwald_agent.secrets.vault import Vault
from ozwald_agent.volumes.gate import VolumesGate
from ozwald_agent.volumes.mounts import Layout, VolumeMounts
from ozwald_agent.volumes.rpcs import VolumeRpcs
from ozwald_agent.volumes.runtime import VaultKeys, VolumeMountingRuntime

logger = logging.getLogger(__name__)

VOLUME_SERVICE_NAME = volume_service_pb2.DESCRIPTOR.services_by_name["VolumeService"].full_name
DEFAULT_RUN_DIR = Path("/run/ozwald/volumes")
STATE_SUBDIR = "volumes"


class AgentVolumes:
    def __init__(
        self,
        state_dir: Path,
        run_dir: Path,
        vault: Vault,
        inner: ContainerRuntime,
        docker: DockerRuntime,
    ) -> None:
        layout = Layout(state=state_dir / STATE_SUBDIR, run=run_dir / docker.agent_id)
        self.mounts = VolumeMounts(layout)
        self.runtime = VolumeMountingRuntime(inner, docker, self.mounts, VaultKeys(vault))
        self.gate = VolumesGate(vault, self.mounts)
        self._swept = threading.Event()

    def start(self) -> None:
        """Sweeps leftovers of an agent that died; on a thread so that an engine that
        hangs cannot delay the start (mounts wait for it: they share its lock)."""
        threading.Thread(target=self.sweep, name="volumes-sweep", daemon=True).start()

    def sweep(self) -> None:
        try:
            self.mounts.sweep(self.runtime.binds())
        except (ContainerRuntimeError, OSError) as e:
            logger.warning("could not sweep leftover encrypted volume mounts: %s", e)
        finally:
            self.mounts.skip_sweep()
            self._swept.set()

    def add_to_server(self, server: grpc.Server) -> None:
        volume_service_pb2_grpc.add_VolumeServiceServicer_to_server(VolumeRpcs(self.mounts), server)

    def close(self) -> None:
        """At agent stop: unmounts what no container of this agent binds (containers keep
        running, and keep their volumes, for the next agent to adopt)."""
        self._swept.wait(timeout=10)
        self.sweep()

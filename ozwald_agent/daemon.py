"""The agent process's gRPC server: listeners, locks, health, reflection, shutdown."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from ozwald.agent.v1 import agent_service_pb2, agent_service_pb2_grpc, plan_pb2, service_scope_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.fleet.channels import FleetChannels
from ozwald_agent.fleet.config import FleetLinkConfig
from ozwald_agent.fleet.link import FleetLink
from ozwald_agent.hardware.nvml_real import PynvmlLibrary
from ozwald_agent.profiling.profiler import Profiler
from ozwald_agent.provisioning.admission_facts import AdmissionFacts
from ozwald_agent.provisioning.provisioner import Provisioner
from ozwald_agent.runtime.container_spec import RuntimeSettings
from ozwald_agent.runtime.docker_runtime import DockerRuntime
from ozwald_agent.runtime.naming import DEFAULT_PREFIX
from ozwald_agent.runtime.profiling_copies import ProfilingCopies
from ozwald_agent.runtime.secret_files import DEFAULT_BASE as DEFAULT_SECRETS_DIR
from ozwald_agent.secrets.agent_vault import VAULT_SERVICE_NAME, AgentVault
from ozwald_agent.secrets.backends import VaultBackendConfig
from ozwald_agent.secrets.endpoint import DEFAULT_TOKEN_TTL_S
from ozwald_agent.servicer import AgentServicer, ProfileCollector
from ozwald_agent.state.footprints import FootprintStore
from ozwald_agent.state.store import AgentStore
from ozwald_agent.state.webhook_deliveries import WebhookDeliveryStore
from ozwald_agent.volumes.agent_volumes import DEFAULT_RUN_DIR as DEFAULT_VOLUMES_DIR
from ozwald_agent.volumes.agent_volumes import VOLUME_SERVICE_NAME, AgentVolumes
from ozwald_agent.webhooks.dispatcher import WebhookDispatcher
from ozwald_sdk.process.exclusive_lock import ExclusiveLock, LockHeldError
from ozwald_sdk.process.listeners import TlsListener, bind_tls, bind_unix
from ozwald_sdk.process.request_logging import RequestLoggingInterceptor
from ozwald_sdk.process.unix_socket import prepare_socket_path

logger = logging.getLogger(__name__)

AGENT_SERVICE_NAME = agent_service_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name
MAX_WORKERS = 32


class AgentInUseError(Exception):
    """Another agent already owns the socket or the state directory."""


@dataclass(frozen=True)
class DaemonConfig:
    socket_path: Path
    state_dir: Path
    socket_gid: int | None = None
    tcp: TlsListener | None = None
    # Vault (docs/secrets.md): a file holding the passphrase that unlocks it at start,
    # and the tmpfs directory where containers' secret files are placed.
    vault_passphrase_file: Path | None = None
    secrets_dir: Path = DEFAULT_SECRETS_DIR
    # Encrypted volumes (docs/volumes.md): where their plaintext mount points are made.
    volumes_dir: Path = DEFAULT_VOLUMES_DIR
    # What wraps the vault's data keys (passphrase, keyring, aws-kms), and how long a
    # container's secrets-endpoint token lives.
    vault_backend: VaultBackendConfig = field(default_factory=VaultBackendConfig)
    secrets_token_ttl_s: float = DEFAULT_TOKEN_TTL_S
    # Starts every container and network name: agents sharing one Docker Engine (the
    # testbed's hosts) each take their own, so their names never meet.
    container_prefix: str = DEFAULT_PREFIX
    # The orchestrator to join (`--orchestrator`); None runs the agent on its own.
    fleet: FleetLinkConfig | None = None


class AgentDaemon:
    """Owns the server's lifetime: `start()`, then `stop()` exactly once."""

    def __init__(self, config: DaemonConfig, collect_profile: ProfileCollector) -> None:
        self._config = config
        self._collect_profile = collect_profile
        self._store: AgentStore | None = None
        self._footprints: FootprintStore | None = None
        self._vault: AgentVault | None = None
        self._volumes: AgentVolumes | None = None
        self._webhook_deliveries: WebhookDeliveryStore | None = None
        self._webhooks: WebhookDispatcher | None = None
        self._provisioner: Provisioner | None = None
        self._servicer: AgentServicer | None = None
        self._fleet_link: FleetLink | None = None
        self._health = health.HealthServicer(experimental_non_blocking=True)
        self._locks: list[ExclusiveLock] = []
        self._server: grpc.Server | None = None
        self.tcp_port: int | None = None

    def start(self) -> None:
        cfg = self._config
        created = _make_dirs(
            [
                (cfg.state_dir, 0o700),
                (cfg.socket_path.parent, 0o755 if os.geteuid() == 0 else 0o700),
            ]
        )
        socket_claimed = False
        try:
            self._lock(cfg.state_dir / "agent.lock", "state directory", cfg.state_dir)
            self._lock(Path(f"{cfg.socket_path}.lock"), "socket", cfg.socket_path)
            prepare_socket_path(cfg.socket_path)
            socket_claimed = True
            # Only the holder of the state directory's lock may open its database.
            self._store = AgentStore(cfg.state_dir / "agent.db")
            self._footprints = FootprintStore(cfg.state_dir / "agent.db")
            self._webhook_deliveries = WebhookDeliveryStore(cfg.state_dir / "agent.db")
            self._webhooks = WebhookDispatcher(self._webhook_deliveries)
            runtime = DockerRuntime(
                RuntimeSettings(agent_id=self._store.agent_id(), name_prefix=cfg.container_prefix)
            )
            self._vault = AgentVault.open(cfg, runtime)
            self._volumes = AgentVolumes(
                cfg.state_dir, cfg.volumes_dir, self._vault.vault, self._vault.runtime, runtime
            )
            self._volumes.start()
            self._provisioner = Provisioner(
                self._store,
                self._volumes.runtime,
                AdmissionFacts(runtime.host_facts),
                self._collect_profile,
                footprints=self._footprints,
                webhooks=self._webhooks,
                secrets=self._vault.gate,
                volumes=self._volumes.gate,
            )
            profiler = Profiler(
                self._provisioner,
                ProfilingCopies(runtime, secrets=self._vault.runtime),
                self._footprints,
                self._collect_profile,
                PynvmlLibrary,
            )
            # Copies a killed agent left behind go at once, on a thread so that an engine
            # that hangs cannot delay the agent's start (a profiling run waits for it).
            threading.Thread(
                target=profiler.clean_up_leftovers, name="profiling-cleanup", daemon=True
            ).start()
            self._servicer = AgentServicer(
                self._collect_profile,
                self._provisioner,
                profiler=profiler,
                footprints=self._footprints,
                webhook_deliveries=self._webhook_deliveries,
            )
            self._server = self._build_server(self._servicer)
            self._server.start()
            self._provisioner.start()
        except BaseException:
            # Under our lock, whatever sits at the socket path now is ours to remove.
            if socket_claimed:
                cfg.socket_path.unlink(missing_ok=True)
            if self._store is not None:
                self._store.close()
            if self._footprints is not None:
                self._footprints.close()
            if self._volumes is not None:
                self._volumes.close()
            if self._vault is not None:
                self._vault.close()
            self._close_webhooks()
            self._release_locks()
            _remove_if_empty(created)
            raise
        logger.info(
            "agent serving on unix://%s%s",
            cfg.socket_path,
            f" and {cfg.tcp.address} (mutual TLS)" if cfg.tcp else "",
            extra={"socket": str(cfg.socket_path), "state_dir": str(cfg.state_dir)},
        )

    def join_fleet(self) -> None:
        """Opens the link to the orchestrator when configured (`--orchestrator`).

        Called after the persistent services are admitted: they come with the host, and
        the fleet's assignments are admitted beside them, never ahead of them.
        """
        fleet = self._config.fleet
        if fleet is None or self._fleet_link is not None:
            return
        assert self._provisioner is not None, "start() first"
        assert self._store is not None and self._footprints is not None
        channels = FleetChannels(fleet)
        link = FleetLink(
            address=fleet.address,
            host_id=channels.host_id,
            labels=fleet.labels,
            open_channel=channels.open,
            provisioner=self._provisioner,
            footprints=self._footprints,
            versions=self._store,
            collect_profile=self._collect_profile,
            timing=fleet.timing,
        )
        link.start()
        self._fleet_link = link

    def apply_persistent(self, specs: list[service_spec_pb2.ServiceSpec]) -> plan_pb2.Plan:
        """Make `specs` the persistent set; raises AdmissionRefusedError, changing nothing."""
        assert self._provisioner is not None, "start() first"
        admitted, _, _ = self._provisioner.apply(specs, service_scope_pb2.SERVICE_SCOPE_PERSISTENT)
        return admitted

    def stop(self, grace_s: float = 5.0) -> None:
        """Refuse new calls, end open streams, wait for calls in flight, clean up."""
        self._health.enter_graceful_shutdown()
        if self._fleet_link is not None:
            # First, so no assignment is applied while the rest shuts down.
            self._fleet_link.stop()
        if self._servicer is not None:
            self._servicer.shut_down()
        if self._provisioner is not None:
            # Containers keep running: the next agent adopts them.
            self._provisioner.stop()
        if self._server is not None:
            self._server.stop(grace_s).wait()
        if self._store is not None:
            self._store.close()
        if self._footprints is not None:
            self._footprints.close()
        if self._volumes is not None:
            self._volumes.close()
        if self._vault is not None:
            self._vault.close()
        self._close_webhooks()
        self._config.socket_path.unlink(missing_ok=True)
        self._release_locks()
        logger.info("agent stopped")

    def _close_webhooks(self) -> None:
        # Pending retries are dropped (docs/webhooks.md); the log closes after them.
        if self._webhooks is not None:
            self._webhooks.stop()
        if self._webhook_deliveries is not None:
            self._webhook_deliveries.close()

    def _lock(self, path: Path, what: str, owned: Path) -> None:
        lock = ExclusiveLock(path)
        try:
            lock.acquire()
        except LockHeldError as e:
            holder = f"another agent (pid {e.holder_pid})" if e.holder_pid else "another agent"
            raise AgentInUseError(f"{holder} already uses the {what} {owned}") from e
        self._locks.append(lock)

    def _release_locks(self) -> None:
        while self._locks:
            self._locks.pop().release()

    def _build_server(self, servicer: AgentServicer) -> grpc.Server:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="rpc"),
            interceptors=[RequestLoggingInterceptor()],
            # Without this, Linux lets a second agent bind the same TCP port and
            # silently share its traffic.
            options=[("grpc.so_reuseport", 0)],
        )
        agent_service_pb2_grpc.add_AgentServiceServicer_to_server(servicer, server)
        if self._vault is not None:
            self._vault.add_to_server(server)
        if self._volumes is not None:
            self._volumes.add_to_server(server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        for name in ("", AGENT_SERVICE_NAME):
            self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        reflection.enable_server_reflection(
            (
                AGENT_SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                VAULT_SERVICE_NAME,
                VOLUME_SERVICE_NAME,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        bind_unix(server, self._config.socket_path, self._config.socket_gid)
        if self._config.tcp is not None:
            self.tcp_port = bind_tls(server, self._config.tcp)
        return server


def _make_dirs(wanted: list[tuple[Path, int]]) -> list[Path]:
    """Create missing directories; returns those this call created, deepest last."""
    created: list[Path] = []
    for path, mode in wanted:
        missing = [p for p in (path, *path.parents) if not p.exists()]
        path.mkdir(parents=True, exist_ok=True, mode=mode)
        created.extend(reversed(missing))
    return created


def _remove_if_empty(directories: list[Path]) -> None:
    """Undo `_make_dirs` for a start that failed, leaving anything that gained content."""
    for path in reversed(directories):
        with contextlib.suppress(OSError):
            path.rmdir()

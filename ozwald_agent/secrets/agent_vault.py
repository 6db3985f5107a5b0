"""The vault's parts as the agent daemon wires them: store, admission gate, delivering
runtime, RPCs. Kept here so the daemon gains a few lines, not the vault's logic."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import grpc
from ozwald.agent.v1 import vault_service_pb2, vault_service_pb2_grpc

from ozwald_agent.runtime.docker_runtime import DockerRuntime
from ozwald_agent.runtime.errors import ContainerRuntimeError
from ozwald_agent.secrets.backends import open_wrapper
from ozwald_agent.secrets.delivery import SecretDeliveringRuntime
from ozwald_agent.secrets.errors import VaultError
from ozwald_agent.secrets.gate import SecretsGate
from ozwald_agent.secrets.rpcs import VaultRpcs
from ozwald_agent.secrets.vault import Vault

if TYPE_CHECKING:
    from ozwald_agent.daemon import DaemonConfig

logger = logging.getLogger(__name__)

VAULT_SERVICE_NAME = vault_service_pb2.DESCRIPTOR.services_by_name["VaultService"].full_name
VAULT_FILE = "vault.db"


class VaultUnlockError(Exception):
    """--vault-passphrase-file could not be read or does not open the vault."""

    def __init__(self, message: str, remedy: str) -> None:
        super().__init__(message)
        self.message, self.remedy = message, remedy


class AgentVault:
    def __init__(self, vault: Vault, runtime: SecretDeliveringRuntime) -> None:
        self.vault = vault
        self.runtime = runtime
        self.gate = SecretsGate(vault)

    @classmethod
    def open(cls, config: DaemonConfig, docker_runtime: DockerRuntime) -> AgentVault:
        vault = Vault(config.state_dir / VAULT_FILE)
        try:
            if config.vault_backend.name != "passphrase":
                _open_backend(vault, config, docker_runtime.agent_id)
            elif config.vault_passphrase_file is not None:
                _unlock_from_file(vault, config)
        except BaseException:
            vault.close()
            raise
        runtime = SecretDeliveringRuntime(
            docker_runtime, vault, config.secrets_dir, token_ttl_s=config.secrets_token_ttl_s
        )
        # Files of containers that went while the agent was away, and new endpoint tokens
        # for the ones it adopts; on a thread, so an engine that hangs cannot delay the start.
        threading.Thread(target=_sweep, args=(runtime,), name="secrets-sweep", daemon=True).start()
        threading.Thread(
            target=runtime.run_token_refresher,
            args=(min(5.0, config.secrets_token_ttl_s / 4),),
            name="secrets-tokens",
            daemon=True,
        ).start()
        return cls(vault, runtime)

    def add_to_server(self, server: grpc.Server) -> None:
        vault_service_pb2_grpc.add_VaultServiceServicer_to_server(VaultRpcs(self.vault), server)

    def close(self) -> None:
        self.runtime.close()
        self.vault.close()


def _unlock_from_file(vault: Vault, config: DaemonConfig) -> None:
    path = config.vault_passphrase_file
    assert path is not None
    try:
        passphrase = path.read_bytes().rstrip(b"\r\n")
    except OSError as e:
        raise VaultUnlockError(
            f"cannot read --vault-passphrase-file {path}: {e.strerror}",
            "check the path and that the agent's user may read it (mode 0400)",
        ) from e
    try:
        created = vault.unlock(passphrase, create=False)
    except VaultError as e:
        raise VaultUnlockError(f"--vault-passphrase-file {path}: {e.message}", e.remedy) from e
    vault.audit("agent", "unlock", outcome="ok", correlation_id="passphrase-file")
    logger.info("vault unlocked from the passphrase file%s", " (created)" if created else "")


def _open_backend(vault: Vault, config: DaemonConfig, agent_id: str) -> None:
    backend = config.vault_backend
    if config.vault_passphrase_file is not None:
        raise VaultUnlockError(
            f"--vault-passphrase-file is for the passphrase backend, not {backend.name}",
            "drop it, or choose --vault-backend passphrase",
        )
    try:
        wrapper = open_wrapper(backend, agent_id, vault_exists=vault.exists)
        created = vault.open_with(wrapper)
    except VaultError as e:
        raise VaultUnlockError(f"--vault-backend {backend.name}: {e.message}", e.remedy) from e
    vault.audit("agent", "unlock", outcome="ok", correlation_id=f"backend:{backend.name}")
    logger.info("vault unlocked by the %s backend%s", backend.name, " (created)" if created else "")


def _sweep(runtime: SecretDeliveringRuntime) -> None:
    try:
        for directory in runtime.sweep():
            logger.info("removed the secret files of a container that is gone: %s", directory)
        for container in runtime.reissue():
            logger.info("new secrets endpoint token for adopted container %s", container)
    except (ContainerRuntimeError, OSError, ValueError) as e:
        logger.warning("could not sweep stale secret files: %s", e)

"""The runtime's host facts in the shape admission asks for them."""

from __future__ import annotations

from ozwald_agent.runtime.host_facts import DockerHostFacts


class AdmissionFacts:
    """Adapts `DockerHostFacts` to `ozwald_agent.admission.facts.HostFacts`.

    Admission never asks about ports its own kept services hold, so a bound port here is
    always someone else's.
    """

    def __init__(self, facts: DockerHostFacts) -> None:
        self._facts = facts

    def image_present(self, reference: str) -> bool:
        return self._facts.image_present(reference)

    def host_port_free(self, host_ip: str, host_port: int) -> bool:
        return self._facts.port_free(host_ip, host_port).free

    def path_exists(self, path: str) -> bool:
        return self._facts.path_exists(path)

"""The copy of a service that profiling runs, as admission sees it.

A profiled copy runs beside the service it measures (which may be running), so admission
must count it as one more service: it gets a name of its own that no config can produce
(`<name> (profiled copy)`: config names have no spaces), and it is planned together with
everything that runs now. The copy runs in isolation, so what would tie it to the rest of
the host is left out: no portals (no host port is claimed or published), no depends_on
(it starts alone), no declared networks (it joins a network of its own).

Admission counts the service's own footprint for the copy, when one is recorded for the
spec being profiled: re-profiling a service whose declaration is missing or too small
must not be admitted on a figure of 0.
"""

from __future__ import annotations

from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.admission.footprints import Footprint, FootprintBook
from ozwald_sdk.fingerprint import fingerprint as spec_fingerprint

COPY_SUFFIX = " (profiled copy)"


def profiled_copy(spec: service_spec_pb2.ServiceSpec) -> service_spec_pb2.ServiceSpec:
    copy = service_spec_pb2.ServiceSpec()
    copy.CopyFrom(spec)
    copy.name = f"{spec.name}{COPY_SUFFIX}"
    copy.persistent = False
    del copy.portals[:]
    del copy.depends_on[:]
    del copy.networks[:]
    return copy


class CopyFootprints:
    """A FootprintBook that answers for the copy with the original service's footprint."""

    def __init__(
        self,
        book: FootprintBook,
        original: service_spec_pb2.ServiceSpec,
        copy: service_spec_pb2.ServiceSpec,
    ) -> None:
        self._book = book
        self._original = original
        self._copy_key = (copy.realm, copy.name)
        self._original_fingerprint = spec_fingerprint(original)

    def footprint(
        self, realm: str, service: str, variety: str, profile: str, fingerprint: str
    ) -> Footprint | None:
        if (realm, service) == self._copy_key:
            return self._book.footprint(
                realm, self._original.name, variety, profile, self._original_fingerprint
            )
        return self._book.footprint(realm, service, variety, profile, fingerprint)

"""The fingerprint of an effective spec: equal fingerprints mean "nothing to change".

The fingerprint is the SHA-256 of a canonical JSON form of the ServiceSpec, not of its
binary serialisation. Fingerprints are stored in the agent's state and compared after the
agent (and with it the protobuf runtime) is upgraded; protobuf documents its
"deterministic" binary serialisation as stable only within one build of one library, not
as canonical across versions or languages. A changed fingerprint restarts a service, so a
drifting encoding would restart every service after an upgrade.

The canonical form is protobuf's JSON mapping with the .proto field names, keys sorted,
no insignificant whitespace, and fields at their default value left out (proto3 has no
presence for them). Leaving defaults out is also what keeps fingerprints stable when a
new field is added to ServiceSpec: a spec that does not use it hashes as before. The
version prefix names the form, so that changing it is a visible, deliberate step.

Fields that say how the agent *talks about* a service rather than what it runs are left
out of the form (today: `webhooks`), so changing them never restarts a service.
"""

from __future__ import annotations

import hashlib
import json

from google.protobuf import json_format
from ozwald.common.v1 import service_spec_pb2

_FORM = b"ozwald.fingerprint.v1\n"


def canonical_form(spec: service_spec_pb2.ServiceSpec) -> bytes:
    """The bytes the fingerprint hashes (without the version prefix)."""
    if spec.webhooks:
        # Not what runs: changing them keeps the running container (module docstring).
        trimmed = service_spec_pb2.ServiceSpec()
        trimmed.CopyFrom(spec)
        trimmed.ClearField("webhooks")
        spec = trimmed
    document = json_format.MessageToDict(spec, preserving_proto_field_name=True)
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(spec: service_spec_pb2.ServiceSpec) -> str:
    """Lowercase hex SHA-256 of the spec's canonical form."""
    return hashlib.sha256(_FORM + canonical_form(spec)).hexdigest()

"""Encrypted volumes in ozwald.yml: located errors, and what reaches the ServiceSpec."""

from __future__ import annotations

from ozwald.common.v1 import service_spec_pb2

from ozwald_sdk.config import load_config, resolve
from tests.unit.config.support import ConfigWriter, position, rendered

HEAD = """\
version: 1
realms:
  shop:
    vault: {lockers: [disk]}
    volumes:
      data: {type: encrypted, key: {locker: disk, name: key}}
      models: {type: versioned, key: {locker: disk, name: key}}
      scratch: {type: encrypted-tmp}
"""


def test_keys_need_declared_lockers_and_versions_are_read_only(write: ConfigWriter) -> None:
    path = write(
        HEAD
        + """\
      bad: {type: encrypted, key: {locker: disc, name: key}}
      big: {type: encrypted, backend: luks2, key: {locker: disk, name: key}}
    services:
      app:
        image: x
        volumes:
          - models:/m
          - {volume: data, target: /d, version: 1}
"""
    )
    assert rendered(path) == [
        f"{position(path, 'disc')}: realms.shop.volumes.bad.key.locker: volume 'bad' "
        "takes its key from locker 'disc', which is not declared in the vault of realm 'shop' "
        "(vault: {lockers: [...]}); did you mean 'disk'?",
        f"{position(path, 'luks2')}: realms.shop.volumes.big.backend: volume 'big' uses backend "
        "luks2, which needs a size (e.g. size: 10GiB)",
        f"{position(path, 'models:/m')}: realms.shop.services.app.volumes[0]: versions of "
        "volume 'models' are immutable: mount them read-only ('models:/m:ro' or read_only: "
        "true), or mount the working copy with version: working",
        f"{position(path, '1}')}: realms.shop.services.app.volumes[1].version: only versioned "
        "volumes have versions; 'data' is of type encrypted",
    ]


def test_the_spec_names_the_key_never_a_value(write: ConfigWriter) -> None:
    path = write(
        HEAD
        + """\
    services:
      app:
        image: x
        volumes:
          - data:/d
          - scratch:/s
          - {volume: models, target: /w, version: working}
          - {volume: models, target: /v, version: 3, read_only: true}
"""
    )
    spec = resolve(load_config(path), "shop:app").to_service_spec()
    data, scratch, working, pinned = spec.volumes
    assert data.kind == service_spec_pb2.VOLUME_KIND_ENCRYPTED
    assert (data.encrypted.key_locker, data.encrypted.key_name) == ("disk", "key")
    assert data.encrypted.backend == service_spec_pb2.ENCRYPTION_BACKEND_GOCRYPTFS
    assert scratch.kind == service_spec_pb2.VOLUME_KIND_ENCRYPTED_TMP
    assert scratch.encrypted.key_locker == ""
    assert working.encrypted.working_copy and not working.read_only
    assert (pinned.encrypted.version, pinned.read_only) == (3, True)
    assert all(v.source == "" for v in spec.volumes)

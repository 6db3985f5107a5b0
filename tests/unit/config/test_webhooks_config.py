"""Webhooks in ozwald.yml: declared per realm, subscribed per service (mergeable), checked
with located diagnostics; in the ServiceSpec without the key's value; not in the fingerprint."""

from __future__ import annotations

from ozwald.common.v1 import webhook_pb2

from ozwald_sdk.config import load_config, resolve
from tests.unit.config.support import ConfigWriter, position, rendered

HOOKS = """\
        version: 1
        realms:
          default:
            webhooks:
              audit: {url: "https://hooks.example/a", events: [pre-provision, failed],
                      signing_key_file: ./hook.key, timeout: 2s, failure_policy: fail-open}
              pager: {url: "http://127.0.0.1:9000/p", events: [failed],
                      signing_key_file: ./hook.key}
            services:
"""


def test_services_subscribe_and_varieties_or_profiles_replace_the_list(
    write: ConfigWriter,
) -> None:
    path = write(
        HOOKS
        + """\
              echo:
                image: x
                webhooks: [audit]
                varieties: {cpu: {}}
                profiles:
                  paged: {webhooks: [audit, pager]}
        """
    )
    (path.parent / "hook.key").write_text("s3cret\n")
    config = load_config(path)
    assert [h.name for h in resolve(config, "echo").webhooks] == ["audit"]
    spec = resolve(config, "echo[][paged]").to_service_spec()
    audit, pager = spec.webhooks
    assert audit.url == "https://hooks.example/a"
    assert list(audit.events) == [
        webhook_pb2.WEBHOOK_EVENT_PRE_PROVISION,
        webhook_pb2.WEBHOOK_EVENT_FAILED,
    ]
    assert audit.timeout.seconds == 2
    assert audit.failure_policy == webhook_pb2.WEBHOOK_FAILURE_POLICY_FAIL_OPEN
    assert pager.failure_policy == webhook_pb2.WEBHOOK_FAILURE_POLICY_FAIL_CLOSED
    assert pager.retries == 3 and pager.timeout.seconds == 5
    assert audit.signing_key_file == str(path.parent / "hook.key")
    assert b"s3cret" not in spec.SerializeToString()


def test_hooks_do_not_change_the_fingerprint(write: ConfigWriter) -> None:
    path = write(
        HOOKS
        + """\
              echo:
                image: x
                profiles:
                  hooked: {webhooks: [audit]}
        """
    )
    (path.parent / "hook.key").write_text("k")
    config = load_config(path)
    plain = resolve(config, "echo")
    hooked = resolve(config, "echo[][hooked]")
    assert hooked.webhooks and not plain.webhooks
    # Only the profile's name differs in what runs; compare against a spec without hooks.
    spec = hooked.to_service_spec()
    from ozwald_sdk.fingerprint import fingerprint

    bare = type(spec)()
    bare.CopyFrom(spec)
    bare.ClearField("webhooks")
    assert fingerprint(spec) == fingerprint(bare) == hooked.fingerprint()


QUOTED_FTP = '"ftp://'


def test_unknown_hooks_bad_events_and_missing_key_files_are_located(
    write: ConfigWriter,
) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            webhooks:
              audit: {url: "https://hooks.example/a", events: [pre-provison], signing_key_file: k}
              pager: {url: "ftp://x/p", events: [failed], signing_key_file: ./missing.key}
              other: {url: "https://x/p", events: [failed], signing_key_file: ./missing.key}
            services:
              echo: {image: x, webhooks: [audti]}
        """
    )
    (path.parent / "k").write_text("k")
    assert rendered(path) == [
        f"{position(path, 'pre-provison')}: realms.default.webhooks.audit.events[0]: expected "
        "'pre-provision', 'post-provision', 'pre-deprovision', 'post-deprovision', "
        "'health-changed' or 'failed', found 'pre-provison'; did you mean 'pre-provision'?",
        f"{position(path, QUOTED_FTP)}: realms.default.webhooks.pager.url: expected an http:// or "
        "https:// URL with a host, like https://hooks.example/ozwald, found 'ftp://x/p'",
        f"{position(path, './missing.key', 2)}: realms.default.webhooks.other.signing_key_file: "
        f"signing key file {path.parent / 'missing.key'} does not exist or is not a file",
        f"{position(path, 'audti')}: realms.default.services.echo.webhooks[0]: no webhook "
        "'audti' is declared in realm 'default' (declare it under realms.default.webhooks); "
        "did you mean 'audit'?",
    ]

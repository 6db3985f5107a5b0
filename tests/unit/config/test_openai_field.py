"""`openai: {api, model}`: what a service says about the OpenAI API it answers, merged
like any nested field, checked on the effective spec, and sent to the agent."""

from __future__ import annotations

import pytest
from ozwald.common.v1 import service_spec_pb2

from ozwald_sdk.config import ConfigInvalidError, load_config, resolve
from ozwald_sdk.fingerprint import canonical_form
from tests.unit.config.support import ConfigWriter


def test_the_api_and_model_merge_over_layers_and_reach_the_spec(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              embed:
                image: vllm:x
                connector_port: 8000
                openai: {api: embeddings}
                profiles:
                  named: {openai: {model: minilm}}
                  none: {openai: null}
        """
    )
    config = load_config(path)

    base = resolve(config, "embed").to_service_spec()
    named = resolve(config, "embed[][named]").to_service_spec()
    none = resolve(config, "embed[][none]").to_service_spec()

    assert base.openai == service_spec_pb2.OpenAiEndpoint(
        api=service_spec_pb2.OPEN_AI_API_EMBEDDINGS
    )
    assert named.openai == service_spec_pb2.OpenAiEndpoint(
        api=service_spec_pb2.OPEN_AI_API_EMBEDDINGS, model="minilm"
    )
    assert not none.HasField("openai")


def test_a_service_without_openai_keeps_its_fingerprint(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              web: {image: tiny}
        """
    )
    spec = resolve(load_config(path), "web").to_service_spec()

    assert not spec.HasField("openai")
    # The field is not in the canonical form the fingerprint hashes: specs written before
    # it existed keep their fingerprints, so no running service restarts on upgrade.
    assert b"openai" not in canonical_form(spec)


def test_openai_without_an_api_is_an_error_on_the_effective_spec(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              chat:
                image: vllm:x
                openai: {model: tiny}
        """
    )
    with pytest.raises(ConfigInvalidError) as raised:
        resolve(load_config(path), "chat")

    (diagnostic,) = raised.value.diagnostics
    assert "openai without an api: say embeddings, completions or chat" in diagnostic.render()


def test_an_unknown_api_is_refused_with_the_choices(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              chat: {image: vllm:x, openai: {api: images}}
        """
    )
    with pytest.raises(ConfigInvalidError) as raised:
        load_config(path)

    rendered = raised.value.diagnostics[0].render()
    assert "openai.api" in rendered and "embeddings" in rendered

"""The JSON Schema editors use: committed, fresh, and describing what may be written."""

from __future__ import annotations

import json

from ozwald_sdk.config import SCHEMA_PATH, json_schema, json_schema_text


def test_the_committed_schema_is_fresh() -> None:
    # When this fails: ozwald config schema > ozwald_sdk/config/ozwald.schema.json
    assert SCHEMA_PATH.read_text() == json_schema_text()


def test_the_schema_forbids_unknown_keys_and_allows_x_keys_at_the_top() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert schema["patternProperties"] == {"^x-": {}}
    assert schema["required"] == ["version", "realms"]
    for name, definition in schema["$defs"].items():
        if definition.get("type") == "object" and "properties" in definition:
            assert definition["additionalProperties"] is False, name


def test_sizes_durations_and_short_forms_are_described_as_written() -> None:
    definitions = json.loads(json_schema_text())["$defs"]
    memory = definitions["Resources"]["properties"]["memory"]["anyOf"]
    assert {"type": "integer", "minimum": 1} in memory
    assert any(option.get("type") == "string" and "pattern" in option for option in memory)
    interval = definitions["HealthCheck"]["properties"]["interval"]["anyOf"]
    assert any(option.get("type") == "string" and "pattern" in option for option in interval)
    mount = definitions["ServiceDefinition"]["properties"]["volumes"]["anyOf"][0]["items"]["anyOf"]
    assert {"$ref": "#/$defs/VolumeMount"} in mount
    assert {"type": "string"} in mount
    command = definitions["ServiceDefinition"]["properties"]["command"]["anyOf"]
    assert {"type": "string"} in command
    varieties = definitions["ServiceDefinition"]["properties"]["varieties"]
    assert varieties["propertyNames"] == {"enum": ["nvidia", "amdgpu", "cpu"]}


def test_fields_carry_their_descriptions_for_editors() -> None:
    definitions = json_schema()["$defs"]
    image = definitions["ServiceOverride"]["properties"]["image"]
    assert image["description"].startswith("The container image")

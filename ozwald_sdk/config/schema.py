"""The JSON Schema of ozwald.yml, for editors (yaml-language-server) and other tools.

A copy is committed as ozwald.schema.json beside this module; a unit test fails when
it no longer matches the model (regenerate with `ozwald config schema`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from ozwald_sdk.config.model import OzwaldConfig

SCHEMA_PATH: Final = Path(__file__).with_name("ozwald.schema.json")
SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict[str, Any]:
    """The schema of what may be written in the file (input forms, e.g. "6GiB" for sizes)."""
    schema = OzwaldConfig.model_json_schema(mode="validation")
    schema["title"] = "ozwald.yml"
    return {"$schema": SCHEMA_DIALECT, **schema}


def json_schema_text() -> str:
    """The schema as the committed file holds it: indented, sorted keys, final newline."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"

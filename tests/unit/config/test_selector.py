"""Parsing `[realm:]service[variety][profile]`."""

from __future__ import annotations

import pytest

from ozwald_sdk.config import ConfigInvalidError, Selector


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("embed", Selector("embed")),
        ("default:embed", Selector("embed", realm="default")),
        ("default:embed[cpu]", Selector("embed", realm="default", variety="cpu")),
        ("embed[nvidia][fast]", Selector("embed", variety="nvidia", profile="fast")),
        ("embed[][fast]", Selector("embed", profile="fast")),
        ("embed[cpu][]", Selector("embed", variety="cpu")),
        ("embed[]", Selector("embed")),
        ("embed[][long-context.v2]", Selector("embed", profile="long-context.v2")),
        ("  embed  ", Selector("embed")),
    ],
)
def test_parse(text: str, expected: Selector) -> None:
    assert Selector.parse(text) == expected


@pytest.mark.parametrize(
    ("selector", "text"),
    [
        (Selector("embed"), "embed"),
        (Selector("embed", realm="lab", variety="cpu"), "lab:embed[cpu]"),
        (Selector("embed", profile="fast"), "embed[][fast]"),
        (Selector("embed", variety="nvidia", profile="fast"), "embed[nvidia][fast]"),
    ],
)
def test_text_round_trips(selector: Selector, text: str) -> None:
    assert str(selector) == text
    assert Selector.parse(text) == selector


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("embed[", "not a service selector: expected [realm:]service[variety][profile]"),
        ("embed[a][b][c]", "not a service selector"),
        ("a:b:c", "not a service selector"),
        ("embed]", "not a service selector"),
        ("", "the service must be a name of lowercase letters"),
        (
            ":embed",
            "the realm must be a name of lowercase letters, digits and '-', starting "
            "with a letter, not ending with '-', at most 63 characters, found nothing",
        ),
        ("Embed", "the service must be a name of lowercase letters"),
        ("embed[][fa st]", "the profile must be a profile name"),
    ],
)
def test_malformed_selectors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigInvalidError) as raised:
        Selector.parse(text)
    assert raised.value.exit_code == 10
    [diagnostic] = raised.value.diagnostics
    assert diagnostic.file is None
    assert diagnostic.path == text
    assert message in diagnostic.message
    assert raised.value.message.startswith("invalid service selector:\n")

"""Reading the user_tools option: what is kept, what is left out and why."""

from __future__ import annotations

import pytest

from custom_components.realtime_voice.user_tools import UserTool, parse_user_tools


def test_valid_entries_are_kept_and_described() -> None:
    """A well-formed entry becomes a Realtime function spec; defaults fill the gaps."""
    [tool] = parse_user_tools([{"name": "feed_cat", "action": "script.feed_cat"}])
    assert tool == UserTool("feed_cat", "feed_cat", "script.feed_cat")
    assert tool.spec().to_wire() == {
        "type": "function",
        "name": "feed_cat",
        "description": "feed_cat",
        "parameters": {"type": "object", "properties": {}},
    }


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"name": "has spaces", "action": "script.x"}, "the name may only hold"),
        ({"name": "ok", "action": "not an action"}, "domain.action"),
        ({"name": "ok", "action": "script.x", "data": "text"}, "must be mappings"),
        ({"action": "script.x"}, "name"),
        ("just a string", "indices"),
    ],
)
def test_invalid_entries_are_left_out_with_a_warning(
    entry: object, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Bad entries never reach the model; the log says which and why."""
    assert parse_user_tools([entry]) == ()
    assert "Ignoring the user tool" in caplog.text
    assert reason in caplog.text

"""What the reliability tests share: the box's secret, actions, translated errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
import json
from pathlib import Path
from typing import Any, Final
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest

from custom_components.realtime_voice.const import DOMAIN
from custom_components.realtime_voice.realtime.connection import Timeouts

API_KEY: Final = "sk-proj-RELIABILITY-5ec7e7-do-not-leak-0123456789abcdef"
"""A key no log, attribute, event or diagnostics download may ever show."""
SHORT_TIMEOUTS: Final = Timeouts(http=1.0, connect=2.0, channel=2.0, close=5.0, dead_peer=3.0)
"""Bounds short enough for a test to wait them out, long enough for a loaded machine."""
EXCEPTIONS: Final[dict[str, Any]] = json.loads(
    (Path(__file__).parents[2] / "custom_components" / DOMAIN / "strings.json").read_text()
)["exceptions"]


async def act(hass: HomeAssistant, action: str, **data: Any) -> None:
    """Call one of the box's actions and wait for it."""
    await hass.services.async_call(DOMAIN, action, data, blocking=True)


async def start_fails(hass: HomeAssistant, key: str) -> HomeAssistantError:
    """Start a conversation that must fail with the translated error `key`."""
    with pytest.raises(HomeAssistantError) as raised:
        await act(hass, "start_conversation")
    assert raised.value.translation_domain == DOMAIN
    assert raised.value.translation_key == key, repr(raised.value.__cause__)
    assert key in EXCEPTIONS
    return raised.value


@contextmanager
def short_timeouts() -> Iterator[None]:
    """Give the box's connections SHORT_TIMEOUTS."""
    with patch(
        "custom_components.realtime_voice.conversation.Timeouts", lambda: replace(SHORT_TIMEOUTS)
    ):
        yield


def transitions(states: list[str]) -> list[str]:
    """Return the states without repeats (attribute changes record the same state again)."""
    return [state for index, state in enumerate(states) if index == 0 or states[index - 1] != state]

"""Helpers for tests of the integration in a real Home Assistant, against the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from homeassistant.core import Event, HomeAssistant, State, callback
from homeassistant.helpers.event import async_track_state_change_event

from .virtual_audio import MIC_FEED

STATE = "sensor.realtime_voice_state"
USER_TRANSCRIPT = "sensor.realtime_voice_last_user_transcript"
ASSISTANT_TRANSCRIPT = "sensor.realtime_voice_last_assistant_transcript"
USER_SPEAKING = "binary_sensor.realtime_voice_user_speaking"
ASSISTANT_SPEAKING = "binary_sensor.realtime_voice_assistant_speaking"
SESSION_ACTIVE = "binary_sensor.realtime_voice_conversation_active"
TOKENS = "sensor.realtime_voice_conversation_tokens"
COST = "sensor.realtime_voice_estimated_cost"
START_BUTTON = "button.realtime_voice_start_conversation"
END_BUTTON = "button.realtime_voice_end_conversation"


class StateHistory:
    """Every state an entity takes, in order, with bounded waits."""

    def __init__(self, hass: HomeAssistant, entity_id: str) -> None:
        self.hass = hass
        self.entity_id = entity_id
        self.states: list[str] = []
        self._changed = asyncio.Event()
        if (current := hass.states.get(entity_id)) is not None:
            self.states.append(current.state)
        self.unsubscribe = async_track_state_change_event(hass, entity_id, self._on_change)

    @callback
    def _on_change(self, event: Event[Any]) -> None:
        new: State | None = event.data["new_state"]
        if new is not None:
            self.states.append(new.state)
            self._changed.set()

    async def wait_for(self, value: str, timeout: float = 10.0) -> None:
        """Wait until the entity has taken the value (now or before)."""
        await self.until(lambda: value in self.states, timeout)

    async def until(self, probe: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until probe() is true, re-checking at every change."""
        async with asyncio.timeout(timeout):
            while not probe():
                self._changed.clear()
                await self._changed.wait()


class EventLog:
    """Every bus event of one type, with bounded waits."""

    def __init__(self, hass: HomeAssistant, event_type: str) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self.unsubscribe = hass.bus.async_listen(event_type, self._on_event)

    @callback
    def _on_event(self, event: Event[Any]) -> None:
        self.events.append(dict(event.data))
        self._changed.set()

    async def wait_for(
        self, match: Callable[[dict[str, Any]], bool] = lambda _data: True, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Return the first event that matches, waiting for it if needed."""
        async with asyncio.timeout(timeout):
            while True:
                if found := next((data for data in self.events if match(data)), None):
                    return found
                self._changed.clear()
                await self._changed.wait()


async def speak_into_mic(wav: Path) -> None:
    """Play a WAV into the virtual microphone without blocking the loop."""
    process = await asyncio.create_subprocess_exec("paplay", f"--device={MIC_FEED}", str(wav))
    assert await process.wait() == 0

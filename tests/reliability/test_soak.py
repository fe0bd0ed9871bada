"""Soak: many conversations in a row, and one long conversation, with resources flat."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
import logging
from typing import Any

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.const import (
    CONF_IDLE_TIMEOUT,
    CONF_MAX_DURATION,
    EVENT_SESSION_ENDED,
    EVENT_TRANSCRIPT,
)
from custom_components.realtime_voice.state import ACTIVE
from tests.helpers.integration import STATE, EventLog, assert_recovered, box_session
from tests.simulator import Reply, SimulatedCall, Simulator

from .common import act
from .resources import Usage

SESSIONS = 200
WARM_UP = 20
"""Sessions run before the first measurement: caches, pools and lazy imports fill up."""
SOAK_TIMEOUT = 900
"""Seconds each soak may run (pytest-timeout; the suite's default is 120). The 200 conversations
took 100 s on an idle 2-core machine and over 120 s on a loaded one: room for several times that."""


@pytest.fixture
def quiet_logs() -> Iterator[None]:
    """Create no INFO and DEBUG records while the soak runs.

    pytest keeps every record (and the aioice objects its arguments hold) until the test ends,
    which would be the soak's largest "leak".
    """
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


async def _forget_calls(simulator: Simulator) -> None:
    """Drop the simulator's records of closed calls: they are the simulator's memory, not ours."""
    await asyncio.gather(*(call.close() for call in simulator.calls))
    simulator.calls.clear()
    simulator._calls_returned = 0


@pytest.mark.timeout(SOAK_TIMEOUT)
@pytest.mark.usefixtures("quiet_logs", "without_asyncio_debug")
async def test_two_hundred_short_conversations(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Start and end 200 times: every one ends clean, and nothing accumulates."""
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    before: Usage | None = None
    for index in range(SESSIONS):
        if index == WARM_UP:
            before = await Usage.settled()
        await act(hass, "start_conversation")
        await act(hass, "end_conversation")
        await assert_recovered(hass, simulator)
        await _forget_calls(simulator)
    assert before is not None
    before.assert_flat(await Usage.settled())
    assert [event["reason"] for event in ended.events] == ["user"] * SESSIONS


class SimulatedClock:
    """Moves the event loop's clock forward, so timers and sleeps see the time go by.

    Use with no_ice_consent_checks: a jump while a check waits expires it at once, and six in
    a row (likely on a loaded machine) end the call.
    """

    def __init__(self, hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0.0
        real: Callable[[], float] = hass.loop.time
        monkeypatch.setattr(hass.loop, "time", lambda: real() + self.offset)

    async def advance(self, seconds: float) -> None:
        """Jump ahead, then let the loop run what became due."""
        self.offset += seconds
        await asyncio.sleep(0.05)


async def _user_says(call: SimulatedCall, minute: int) -> None:
    """Send a user turn as the server reports it: speech, then its transcript."""
    item = f"item_minute_{minute}"
    events: list[dict[str, Any]] = [
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": item},
        {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900, "item_id": item},
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item,
            "content_index": 0,
            "transcript": f"Minute {minute}.",
            "usage": {"type": "duration", "seconds": 0.9},
        },
    ]
    for event in events:
        await call.send(event)


@pytest.fixture
def options(options: dict[str, Any]) -> dict[str, Any]:
    """Allow a long conversation: idle after 2 minutes, cut at 55."""
    return {**options, CONF_IDLE_TIMEOUT: 120, CONF_MAX_DURATION: 55}


@pytest.mark.timeout(SOAK_TIMEOUT)
@pytest.mark.usefixtures("quiet_logs", "no_ice_consent_checks", "without_asyncio_debug")
async def test_a_thirty_minute_conversation(
    hass: HomeAssistant,
    box: MockConfigEntry,
    simulator: Simulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Talk for 30 simulated minutes: still up, nothing grows; then the cap ends it.

    A reply is spoken every 5 minutes; the user talks on until the 55-minute cap ends the
    conversation as `max_duration`.
    """
    clock = SimulatedClock(hass, monkeypatch)
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    await act(hass, "start_conversation")
    call = await simulator.wait_for_call()
    before: Usage | None = None
    for minute in range(1, 31):
        if minute == 6:
            before = await Usage.settled()
        await clock.advance(60)
        await _user_says(call, minute)
        # The turn must reach the box before the clock moves on, or its idle timer wins.
        await transcripts.wait_for(lambda data, m=minute: data["text"] == f"Minute {m}.")
        if minute % 5 == 0:
            simulator.script(Reply(f"It is minute {minute}."))
            await act(hass, "send_text", text="What minute is it?")
            await transcripts.wait_for(lambda data, m=minute: data["text"] == f"It is minute {m}.")
        assert not ended.events, f"ended after {minute} minutes: {ended.events}"
    assert before is not None
    before.assert_flat(await Usage.settled())
    assert box_session(box).state.active
    user_turns = [event["text"] for event in transcripts.events if event["role"] == "user"]
    assert user_turns == [f"Minute {minute}." for minute in range(1, 31)]

    # The user keeps talking: the 55-minute cap ends it, not the idle timeout.
    minute = 30
    while not ended.events and minute < 60:
        minute += 1
        await clock.advance(60)
        if box_session(box).state.activity not in ACTIVE:
            break  # the cap fired: the conversation is ending
        await _user_says(call, minute)
        await transcripts.wait_for(lambda data, m=minute: data["text"] == f"Minute {m}.")
    end = await ended.wait_for()
    assert end["reason"] == "max_duration", hass.states.get(STATE).attributes.get("last_error")
    assert minute == 55
    await assert_recovered(hass, simulator)

"""A conversation's ways out, each of which once left the box stuck, silent or wrong.

A real Home Assistant, the simulator over loopback, PulseAudio devices; the user's view: entity
states, bus events, what the simulator heard, and whether the devices are free again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import time

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.const import (
    CONF_IDLE_TIMEOUT,
    CONF_MAX_DURATION,
    DOMAIN,
    EVENT_SESSION_ENDED,
    EVENT_TRANSCRIPT,
)
from custom_components.realtime_voice.settings import SessionSettings
from tests.helpers.integration import (
    ASSISTANT_SPEAKING,
    SESSION_ACTIVE,
    STATE,
    EventLog,
    StateHistory,
    box_entry,
    box_of,
    running_box,
)
from tests.helpers.virtual_audio import open_streams

from .simulator import Reply, Simulator

pytestmark = pytest.mark.usefixtures("loopback_ice", "virtual_audio")

LONG_REPLY = "Here is a very long story that goes on and on and on. " * 8


@pytest.fixture
async def box(hass: HomeAssistant, simulator: Simulator) -> AsyncIterator[MockConfigEntry]:
    """Set up a box on the PulseAudio virtual devices, pointed at the simulator."""
    entry = box_entry(simulator, options={CONF_IDLE_TIMEOUT: 60, CONF_MAX_DURATION: 10})
    async with running_box(hass, entry):
        yield entry


async def _call(hass: HomeAssistant, action: str, **data: object) -> None:
    await hass.services.async_call(DOMAIN, action, data, blocking=True)


async def _idle_and_free(hass: HomeAssistant, ended: EventLog, count: int = 1) -> None:
    """Wait for the count-th end; the box must be idle with its devices released."""
    await ended.wait_for(lambda _data: len(ended.events) >= count, timeout=20)
    assert hass.states.get(STATE).state == "idle"
    assert hass.states.get(SESSION_ACTIVE).state == "off"
    assert open_streams() == []


async def test_the_call_dropping_during_the_last_words_frees_the_box(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """The call drops while a goodbye is awaited: idle again at once, and the next start works."""
    simulator.script(Reply(LONG_REPLY))
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    assistant = StateHistory(hass, ASSISTANT_SPEAKING)
    await _call(hass, "start_conversation")
    await _call(hass, "send_text", text="Tell me a story")
    await assistant.wait_for("on")
    call = simulator.calls[0]
    ending = hass.async_create_task(_call(hass, "end_conversation", goodbye="bye"))
    await call.wait_for_client_event("response.create", index=1)  # the goodbye is asked for
    dropped = time.monotonic()
    await call.drop()
    await asyncio.wait_for(ending, 20)
    # Nothing is left to wait for once the call is gone; 6 s is well under the 8 s bound on
    # last words that a wait for a dead call's "quiet" used to run into, even on a busy machine.
    assert time.monotonic() - dropped < 6
    await _idle_and_free(hass, ended)
    await _call(hass, "start_conversation")  # not "already running"
    await _call(hass, "end_conversation")
    await _idle_and_free(hass, ended, count=2)


async def test_a_goodbye_during_a_reply_cuts_the_reply_and_is_heard(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Ending with a goodbye mid-answer: the rest of the answer stops, then the goodbye plays."""
    simulator.script(Reply(LONG_REPLY), Reply("Goodbye!"))
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    assistant = StateHistory(hass, ASSISTANT_SPEAKING)
    await _call(hass, "start_conversation")
    await _call(hass, "send_text", text="Tell me a story")
    await assistant.wait_for("on")
    started = time.monotonic()
    await _call(hass, "end_conversation", goodbye="bye")
    took = time.monotonic() - started
    await _idle_and_free(hass, ended)
    call = simulator.calls[0]
    sent = [event["type"] for _, event in call.client_events]
    clear = sent.index("output_audio_buffer.clear")
    goodbye_create = max(i for i, kind in enumerate(sent) if kind == "response.create")
    assert clear < goodbye_create, sent
    said = [e["text"] for e in transcripts.events if e["role"] == "assistant"]
    assert said[-1] == "Goodbye!"
    stopped = [at for at, e in call.server_events if e["type"] == "output_audio_buffer.stopped"]
    assert stopped, "the goodbye's audio played out"
    assert stopped[-1] <= call.closed_at
    # The story alone runs over 25 s; it was cut, not waited for (the last-words bound is 8 s).
    assert took < 8, took


async def test_announce_while_connecting_is_said(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """An announcement that arrives while the box connects waits for the call, then is said."""
    simulator.script(Reply("The laundry is done."))
    state = StateHistory(hass, STATE)
    starting = hass.async_create_task(_call(hass, "start_conversation"))
    await state.wait_for("connecting")
    await _call(hass, "announce", message="the laundry is done", listen=True)
    await starting
    call = simulator.calls[0]
    create = await call.wait_for_client_event("response.create")
    assert "the laundry is done" in create["response"]["instructions"]
    assert len(simulator.calls) == 1
    await _call(hass, "end_conversation")


async def test_announce_while_ending_is_said_after(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """An announcement during a goodbye is said in a conversation of its own, not dropped."""
    simulator.script(Reply("Goodbye!"), Reply("The laundry is done."))
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    await _call(hass, "start_conversation")
    ending = hass.async_create_task(_call(hass, "end_conversation", goodbye="bye"))
    await simulator.calls[0].wait_for_client_event("response.create")
    await _call(hass, "announce", message="the laundry is done", listen=False)
    await ending
    await _idle_and_free(hass, ended, count=2)
    said = [e["text"] for e in transcripts.events if e["role"] == "assistant"]
    assert said == ["Goodbye!", "The laundry is done."]
    second = simulator.calls[1]
    create = await second.wait_for_client_event("response.create")
    assert "the laundry is done" in create["response"]["instructions"]


async def test_text_sent_while_ending_gets_a_translated_error(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """send_text during the goodbye: "not running", translated, never a raw library error."""
    simulator.script(Reply("Goodbye, and thanks for all the fish."))
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    await _call(hass, "start_conversation")
    ending = hass.async_create_task(_call(hass, "end_conversation", goodbye="bye"))
    await simulator.calls[0].wait_for_client_event("response.create")
    with pytest.raises(HomeAssistantError) as raised:
        await _call(hass, "send_text", text="wait")
    assert raised.value.translation_key == "not_running"
    await ending
    await _idle_and_free(hass, ended)


async def test_an_announcement_shows_the_box_speaking(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Announce without listen: while the box speaks, the state says so; then it ends."""
    simulator.script(Reply("The laundry is done."))
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    state = StateHistory(hass, STATE)
    assistant = StateHistory(hass, ASSISTANT_SPEAKING)
    await _call(hass, "announce", message="the laundry is done", listen=False)
    await _idle_and_free(hass, ended)
    assert "on" in assistant.states
    speaking = state.states.index("assistant_speaking")
    assert "ending" in state.states[speaking:], state.states
    assert "ending" not in state.states[:speaking], state.states


async def test_a_silent_peer_keeps_the_conversation(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """A peer that sends no audio while silent (pion-based ones) is not a lost network.

    A 40 s pause, longer than the 15 s dead-peer bound and shorter than the 60 s idle
    timeout: the conversation is still there, with no error, and answers afterwards.
    """
    simulator.faults.silent_between_replies = True
    simulator.script(Reply("Still here."))
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    await _call(hass, "start_conversation")
    await asyncio.sleep(40)
    assert hass.states.get(STATE).state == "listening"
    assert not hass.states.get(STATE).attributes.get("last_error")
    assert not ended.events
    await _call(hass, "send_text", text="Are you there?")
    said = await transcripts.wait_for(lambda data: data["role"] == "assistant")
    assert said["text"] == "Still here."
    await _call(hass, "end_conversation")
    await _idle_and_free(hass, ended)


def test_settings_never_show_the_key(box: MockConfigEntry) -> None:
    """repr() of a box's settings (a log line, a traceback) leaves the API key out."""
    settings = SessionSettings.from_box(box.data, box_of(box).data)
    assert settings.api_key
    assert settings.api_key not in repr(settings)
    assert settings.base_url in repr(settings)

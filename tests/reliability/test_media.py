"""Media faults: ICE, the event channel, and the peer lost at each point of a conversation.

A call that never comes up is a clear error at start. A call lost once running ends the
conversation as `error` (or `expired`), keeps what was said, releases everything, and the next
conversation starts clean.
"""

from __future__ import annotations

from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.const import (
    EVENT_SESSION_ENDED,
    EVENT_TOOL_CALL,
    EVENT_TRANSCRIPT,
)
from tests.helpers.integration import (
    ASSISTANT_SPEAKING,
    ASSISTANT_TRANSCRIPT,
    STATE,
    EventLog,
    StateHistory,
    assert_recovered,
)
from tests.simulator import CallFunction, Reply, Simulator

from .common import act, short_timeouts, start_fails

LONG_REPLY = "Here is a long answer about the weather that goes on for a while. " * 3


@pytest.mark.parametrize(
    "fault",
    ["unreachable_answer", "unopened_data_channel", "silent_data_channel"],
    ids=["ICE never connects", "channel never opens", "channel opens but stays silent"],
)
async def test_the_call_never_comes_up(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, fault: str
) -> None:
    """The answer is accepted but the media never work: cannot_connect within the bounds."""
    setattr(simulator.faults, fault, True)
    with short_timeouts():
        await start_fails(hass, "cannot_connect")
    assert hass.states.get(STATE).attributes["last_error"]
    await assert_recovered(hass, simulator)

    setattr(simulator.faults, fault, False)
    await act(hass, "start_conversation")
    await act(hass, "end_conversation")
    await assert_recovered(hass, simulator)


async def _lost(hass: HomeAssistant, simulator: Simulator, ended: EventLog, reason: str) -> None:
    """Check that the conversation ended for `reason`, an error noted, nothing left open."""
    end = await ended.wait_for(timeout=20)
    assert end["reason"] == reason
    assert hass.states.get(STATE).attributes["last_error"]
    await assert_recovered(hass, simulator)


async def test_peer_lost_while_listening(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """The peer closes without a word while the box listens."""
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    await act(hass, "start_conversation")
    await (await simulator.wait_for_call()).drop()
    await _lost(hass, simulator, ended, "error")


async def test_peer_frozen_while_listening(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """The peer goes silent (no RTP, no events, no close): the watchdog notices."""
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    with short_timeouts():
        await act(hass, "start_conversation")
    (await simulator.wait_for_call()).freeze()
    await _lost(hass, simulator, ended, "error")


async def test_peer_lost_while_the_assistant_speaks(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """The peer drops mid-reply: the user's words are kept; the next reply starts afresh."""
    simulator.faults.drop_during_response = True
    simulator.script(Reply(LONG_REPLY))
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    live = StateHistory(hass, ASSISTANT_TRANSCRIPT)
    await act(hass, "start_conversation")
    call = await simulator.wait_for_call()
    await act(hass, "send_text", text="What is the weather like?")
    await call.wait_for_server_event("response.output_audio_transcript.delta")
    await _lost(hass, simulator, ended, "error")
    assert hass.states.get(ASSISTANT_SPEAKING).state == "off"
    assert not [event for event in transcripts.events if event["role"] == "assistant"]

    simulator.faults.drop_during_response = False
    simulator.script(Reply("Fresh answer."))
    seen = len(live.states)
    await act(hass, "start_conversation")
    await act(hass, "send_text", text="Again, please")
    said = await transcripts.wait_for(lambda data: data["role"] == "assistant")
    assert said["text"] == "Fresh answer."
    # No word of the lost reply leaks into the next one's live text.
    assert all(text.startswith("Fresh") for text in live.states[seen:]), live.states[seen:]
    await act(hass, "end_conversation")
    await assert_recovered(hass, simulator)


async def test_peer_lost_during_a_tool_call(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """The peer drops while a slow tool runs: the tool is cancelled with its conversation."""
    assert await async_setup_component(
        hass, "script", {"script": {"slowpoke": {"sequence": [{"delay": 30}]}}}
    )
    async_expose_entity(hass, "conversation", "script.slowpoke", should_expose=True)
    simulator.script(CallFunction("script__slowpoke", {}), Reply("Done."))
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    audits = EventLog(hass, EVENT_TOOL_CALL)
    await act(hass, "start_conversation")
    call = await simulator.wait_for_call()
    await act(hass, "send_text", text="Run the slow script")
    await call.wait_for_server_event("response.function_call_arguments.done")
    await call.drop()
    await _lost(hass, simulator, ended, "error")
    audit = await audits.wait_for()
    assert (audit["tool"], audit["outcome"]) == ("script__slowpoke", "cancelled")
    outputs = [e for _, e in call.client_events if e["type"] == "conversation.item.create"]
    assert not [e for e in outputs if e["item"]["type"] == "function_call_output"]
    await hass.services.async_call("script", "turn_off", {"entity_id": "script.slowpoke"})


async def test_session_expired(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """OpenAI's session cap mid-conversation: ended as `expired`, the user's words kept."""
    simulator.faults.max_session_seconds = 1.0
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    await act(hass, "start_conversation")
    call = await simulator.wait_for_call()
    await call.send(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_kept",
            "content_index": 0,
            "transcript": "Remember the milk.",
            "usage": {"type": "duration", "seconds": 1.0},
        }
    )
    end = await ended.wait_for(timeout=20)
    assert end["reason"] == "expired"
    assert (await transcripts.wait_for(timeout=0))["text"] == "Remember the milk."
    await assert_recovered(hass, simulator)

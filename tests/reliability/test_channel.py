"""What arrives on the event channel: junk, errors, floods, huge texts, repeats, odd orders.

Nothing that arrives may crash the session, hang it, flood the state machine or lose a finished
transcript; the conversation goes on and ends clean.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.const import EVENT_TRANSCRIPT
from custom_components.realtime_voice.realtime.connection import RealtimeConnection
from custom_components.realtime_voice.sensor import MAX_STATE_LENGTH
from tests.helpers.integration import (
    ASSISTANT_TRANSCRIPT,
    COST,
    STATE,
    TOKENS,
    USER_TRANSCRIPT,
    EventLog,
    StateHistory,
    assert_recovered,
)
from tests.simulator import Reply, SimulatedCall, Simulator

from .common import act, start_fails

FLOOD_DELTAS = 10_000
FLOOD_SECONDS = 300
"""How long the flood may take to arrive: both peers' SCTP and DTLS run in Python in one loop
(30 s on a 2-core machine at load 9, asyncio's debug mode off; with it, over 300 s)."""
LOOP_LAG_SHARE = 0.75
"""Longest stall of the loop while the deltas arrive, as a share of the whole flood: it keeps
running (measured 2.8 s stalls: the simulator shares the loop, and aiortc moves 10 000 small
messages in long bursts). Relative, so a slower machine stretches both alike."""
CLIENT_WORK_BOUND = 5.0
"""CPU seconds the client may spend handling the 10 000 messages (measured 0.27 s)."""


async def _started(hass: HomeAssistant, simulator: Simulator) -> SimulatedCall:
    await act(hass, "start_conversation")
    return await simulator.wait_for_call()


async def _still_answers(
    hass: HomeAssistant, transcripts: EventLog, text: str = "Still here."
) -> None:
    """Check that a typed question still gets its spoken answer: alive and not stuck."""
    hass.data["_simulator"].script(Reply(text))
    count = len([event for event in transcripts.events if event["role"] == "assistant"])
    await act(hass, "send_text", text="Are you there?")
    await transcripts.wait_for(
        lambda _data: len([e for e in transcripts.events if e["role"] == "assistant"]) > count
    )
    assert transcripts.events[-1]["text"] == text


@pytest.fixture(autouse=True)
def _remember_simulator(hass: HomeAssistant, simulator: Simulator) -> None:
    hass.data["_simulator"] = simulator


async def test_junk_on_the_channel(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Malformed JSON, JSON that is no object, bytes and unknown event types are dropped."""
    simulator.faults.junk_events = True
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    call = await _started(hass, simulator)
    for junk in ("not json", "[1, 2, 3]", "42", "null", '{"type": 7}', '{"no_type": true}'):
        await call.send_raw(junk)
    if call._channel is not None:
        call._channel.send(b"\x00\xff binary")
    await call.send_raw(json.dumps({"type": "response.telepathy.done", "event_id": "evt_odd"}))
    await _still_answers(hass, transcripts)
    await act(hass, "end_conversation")
    await assert_recovered(hass, simulator)


@pytest.mark.parametrize(
    "event_type", ["response.create", "conversation.item.create", "response.cancel"]
)
async def test_an_error_for_a_client_event(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, event_type: str
) -> None:
    """The server refuses one kind of client event: the conversation goes on, then ends clean."""
    simulator.faults.refused_client_events = frozenset({event_type})
    if event_type == "response.cancel":
        simulator.script(Reply(" ".join(["A long reply that is still being spoken."] * 4)))
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    call = await _started(hass, simulator)
    await act(hass, "send_text", text="Hello")
    if event_type == "response.cancel":
        await call.wait_for_server_event("output_audio_buffer.started", timeout=10)
        await act(hass, "end_conversation")  # cancels the reply being spoken: refused
        error = await call.wait_for_server_event("error")
    else:
        error = await call.wait_for_server_event("error", timeout=10)
        call.faults.refused_client_events = frozenset()
        await _still_answers(hass, transcripts)
        await act(hass, "end_conversation")
    assert error["error"]["code"] == "server_error"
    await assert_recovered(hass, simulator)


async def test_an_error_for_session_update(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """The server refuses the session's configuration: the start fails, translated."""
    simulator.faults.refused_client_events = frozenset({"session.update"})
    await start_fails(hass, "protocol_error")
    await assert_recovered(hass, simulator)


async def _max_loop_lag(stop: asyncio.Event) -> float:
    """Measure how late the loop runs a 10 ms sleep, until stop is set."""
    worst = 0.0
    while not stop.is_set():
        before = time.monotonic()
        await asyncio.sleep(0.01)
        worst = max(worst, time.monotonic() - before - 0.01)
    return worst


@pytest.mark.timeout(2 * FLOOD_SECONDS)
@pytest.mark.usefixtures("no_ice_consent_checks", "without_asyncio_debug")
async def test_ten_thousand_transcript_deltas(
    hass: HomeAssistant,
    box: MockConfigEntry,
    simulator: Simulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """10 000 deltas back to back: live text is throttled, the loop keeps running, text kept."""
    handling: list[float] = []
    on_message = RealtimeConnection._on_message

    def timed(connection: RealtimeConnection, message: str | bytes) -> None:
        # CPU time of the loop's thread: what the client's handling costs, without the time a
        # loaded machine lets other processes run in between.
        before = time.thread_time()
        on_message(connection, message)
        handling.append(time.thread_time() - before)

    monkeypatch.setattr(RealtimeConnection, "_on_message", timed)
    simulator.faults.transcript_delta_flood = FLOOD_DELTAS
    text = "word " * 2_000
    simulator.script(Reply(text.strip()))
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    live = StateHistory(hass, ASSISTANT_TRANSCRIPT)
    call = await _started(hass, simulator)
    stop = asyncio.Event()
    lag = asyncio.create_task(_max_loop_lag(stop))
    started = time.monotonic()
    try:
        await act(hass, "send_text", text="Say a lot")
        said = await transcripts.wait_for(
            lambda data: data["role"] == "assistant", timeout=FLOOD_SECONDS
        )
        seconds = time.monotonic() - started
    finally:
        stop.set()
        worst = await lag
    deltas = [e for _, e in call.server_events if e["type"].endswith("transcript.delta")]
    assert len(deltas) == FLOOD_DELTAS
    assert said["text"] == text.strip()
    # At most 4 live updates a second, plus the final text (and the state before).
    assert len(live.states) <= 4 * seconds + 3, (len(live.states), seconds)
    # The client's own work stays small; the loop lag is mostly aiortc's SCTP on both peers.
    assert sum(handling) < CLIENT_WORK_BOUND, sum(handling)
    assert max(handling) < 0.25, max(handling)
    assert worst < LOOP_LAG_SHARE * seconds, (worst, seconds)
    await act(hass, "end_conversation")
    await assert_recovered(hass, simulator)


async def test_a_100_kb_transcript(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """A 100 kB utterance each way: events carry all of it, states are cut, attributes whole."""
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    call = await _started(hass, simulator)
    huge = "".join(f"{index:05d} " for index in range(100_000 // 6))
    await call.send(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_huge",
            "content_index": 0,
            "transcript": huge,
            "usage": {"type": "duration", "seconds": 600.0},
        }
    )
    await call.send(
        {
            "type": "response.output_audio_transcript.done",
            "response_id": "resp_huge",
            "item_id": "item_huge_reply",
            "output_index": 0,
            "content_index": 0,
            "transcript": huge,
        }
    )
    await transcripts.wait_for(lambda _data: len(transcripts.events) == 2)
    assert [event["text"] for event in transcripts.events] == [huge, huge]
    for entity_id in (USER_TRANSCRIPT, ASSISTANT_TRANSCRIPT):
        state = hass.states.get(entity_id)
        assert state.state == huge[:MAX_STATE_LENGTH]
        assert state.attributes["text"] == huge
    await act(hass, "end_conversation")
    await assert_recovered(hass, simulator)


async def test_every_event_twice(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """A relay repeats every event: one transcript per utterance, usage counted once."""
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    call = await _started(hass, simulator)
    await act(hass, "send_text", text="Hello")
    await transcripts.wait_for(lambda data: data["role"] == "assistant")
    await call.wait_for_server_event("response.done")
    await act(hass, "end_conversation")
    await assert_recovered(hass, simulator)
    single_tokens = int(hass.states.get(TOKENS).state)
    single_cost = float(hass.states.get(COST).state)
    assert single_tokens > 0

    simulator.faults.duplicate_events = True
    transcripts.events.clear()
    call = await _started(hass, simulator)
    await act(hass, "send_text", text="Hello")
    await transcripts.wait_for(lambda data: data["role"] == "assistant")
    await call.wait_for_server_event("output_audio_buffer.stopped", timeout=10)
    await act(hass, "end_conversation")
    await assert_recovered(hass, simulator)
    assert [event["role"] for event in transcripts.events] == ["assistant"]
    assert int(hass.states.get(TOKENS).state) == single_tokens
    assert float(hass.states.get(COST).state) == pytest.approx(2 * single_cost)


def _out_of_order(call: SimulatedCall) -> list[dict[str, Any]]:
    """Return a turn whose events come in an odd but possible order."""
    ids = {"response_id": "resp_odd", "item_id": "item_odd", "output_index": 0}
    part = {**ids, "content_index": 0}
    return [
        {"type": "output_audio_buffer.started", "response_id": "resp_odd"},
        {"type": "response.output_audio_transcript.done", **part, "transcript": "In the end."},
        {"type": "response.output_audio_transcript.delta", **part, "delta": "Late "},
        {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900, "item_id": "item_u"},
        {"type": "output_audio_buffer.stopped", "response_id": "resp_odd"},
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_u",
            "content_index": 0,
            "transcript": "Said before the answer.",
            "usage": {"type": "duration", "seconds": 1.0},
        },
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 100, "item_id": "item_u"},
        {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900, "item_id": "item_u"},
        *(
            []
            if call.session is None
            else [{"type": "output_audio_buffer.stopped", "response_id": "resp_odd"}]
        ),
    ]


async def test_events_out_of_order(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Transcripts before deltas, stops before starts: texts kept, back to listening."""
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    state = StateHistory(hass, STATE)
    call = await _started(hass, simulator)
    for event in _out_of_order(call):
        await call.send(event)
    await transcripts.wait_for(lambda _data: len(transcripts.events) == 2)
    assert [(e["role"], e["text"]) for e in transcripts.events] == [
        ("assistant", "In the end."),
        ("user", "Said before the answer."),
    ]
    await asyncio.sleep(0.5)  # longer than the live-text interval: a late delta would show now
    assert hass.states.get(ASSISTANT_TRANSCRIPT).state == "In the end."
    await act(hass, "send_text", text="And now?")
    await state.until(
        lambda: state.states[-1] == "listening" and "assistant_speaking" in state.states
    )
    await _still_answers(hass, transcripts)
    await act(hass, "end_conversation")
    await assert_recovered(hass, simulator)

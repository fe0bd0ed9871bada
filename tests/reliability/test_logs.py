"""A whole conversation, start to hang-up, leaves no ERROR record in Home Assistant's log.

asyncio's "Task exception was never retrieved" included (ErrorLog collects garbage before it
looks): what a user would find in the log after talking to the box. Against the simulator as it
is, and against a peer that closes DTLS before the client closes its side, as one built on pion
does on hang-up.
"""

from __future__ import annotations

from pathlib import Path

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.const import EVENT_SESSION_ENDED, EVENT_TRANSCRIPT
from tests.helpers.error_log import ErrorLog
from tests.helpers.integration import (
    ASSISTANT_SPEAKING,
    EventLog,
    StateHistory,
    assert_recovered,
    speak_into_mic,
)
from tests.helpers.virtual_audio import speech_wav
from tests.simulator import Reply, Simulator

from .common import act


@pytest.mark.parametrize("dtls_closed_first", [False, True], ids=["simulator", "pion_hangup"])
async def test_a_whole_conversation_logs_no_error(
    hass: HomeAssistant,
    box: MockConfigEntry,
    simulator: Simulator,
    error_log: ErrorLog,
    tmp_path: Path,
    *,
    dtls_closed_first: bool,
) -> None:
    """Start, a spoken turn and its spoken answer, hang up: idle again, nothing logged at ERROR."""
    simulator.faults.dtls_closed_on_hangup = dtls_closed_first
    simulator.script(Reply("The kitchen light is on now."))
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    assistant = StateHistory(hass, ASSISTANT_SPEAKING)

    await act(hass, "start_conversation")
    await speak_into_mic(speech_wav(tmp_path / "speech.wav", "turn on the kitchen light"))
    said = await transcripts.wait_for(lambda data: data["role"] == "assistant")
    await assistant.until(lambda: assistant.states[-1] == "off")
    await act(hass, "end_conversation")

    assert said["text"] == "The kitchen light is on now."
    assert (await ended.wait_for())["reason"] == "user"
    await assert_recovered(hass, simulator)
    assert simulator.calls[0].hung_up
    assert error_log.unexpected() == []


HANG_UPS = 5
"""Hang-ups in a row. Whether a wrong order shows depends on how many loop iterations lie between
the client reading close_notify and the answer: it did in 7 of 12 hang-ups on a test machine,
so five miss it about once in 70 runs."""


async def test_hang_ups_against_a_peer_that_closes_dtls_first(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, error_log: ErrorLog
) -> None:
    """Every hang-up, the peer closes DTLS before it answers: no ERROR record, every time."""
    simulator.faults.dtls_closed_on_hangup = True
    for _ in range(HANG_UPS):
        await act(hass, "start_conversation")
        await act(hass, "end_conversation")
        await assert_recovered(hass, simulator)
        assert error_log.unexpected() == []

"""What the recorder keeps of a conversation: not the transcripts' full text, nor its live churn.

A real recorder (SQLite in memory, from the harness) records a real conversation.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from homeassistant.components.recorder import Recorder, history
from homeassistant.components.recorder.util import get_instance
from homeassistant.core import HomeAssistant, State
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import RecorderInstanceContextManager

from custom_components.realtime_voice.const import DOMAIN, EVENT_TRANSCRIPT
from tests.helpers.integration import (
    ASSISTANT_TRANSCRIPT,
    STATE,
    TOKENS,
    USER_TRANSCRIPT,
    EventLog,
    StateHistory,
    box_entry,
    running_box,
    speak_into_mic,
)
from tests.helpers.virtual_audio import speech_wav

from .simulator import Reply, Simulator

pytestmark = pytest.mark.usefixtures("loopback_ice", "virtual_audio")

# Long enough to be spoken over a few seconds: the live text changes several times meanwhile.
LONG_REPLY = (
    "The kitchen light is on, the garage door is closed, the heating is at twenty degrees, "
    "and the washing machine will be done in about fifteen minutes."
)


@pytest.fixture
async def mock_recorder_before_hass(async_test_recorder: RecorderInstanceContextManager) -> None:
    """Prepare the recorder's database before Home Assistant starts (the harness's rule)."""


async def _recorded(hass: HomeAssistant, since: datetime, entity_id: str) -> list[State]:
    """Return the states the recorder kept while the box was loaded."""
    await async_wait_recording_done(hass)
    states = await get_instance(hass).async_add_executor_job(
        history.state_changes_during_period, hass, since, None, entity_id
    )
    return [state for state in states.get(entity_id, []) if state.state != "unavailable"]


async def test_transcript_text_stays_out_of_the_recorder(
    hass: HomeAssistant, recorder_mock: Recorder, simulator: Simulator, tmp_path: Path
) -> None:
    """The transcript sensors' states are recorded; their text, time and final are not."""
    since = dt_util.utcnow()
    simulator.script(Reply(LONG_REPLY))
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    assistant = StateHistory(hass, ASSISTANT_TRANSCRIPT)
    async with running_box(hass, box_entry(simulator)):
        await hass.services.async_call(DOMAIN, "start_conversation", blocking=True)
        await speak_into_mic(speech_wav(tmp_path / "ask.wav", "how is the house"))
        await transcripts.wait_for(lambda data: data["role"] == "user", timeout=20)
        await transcripts.wait_for(lambda data: data["role"] == "assistant", timeout=20)
        live = hass.states.get(ASSISTANT_TRANSCRIPT)
        await hass.services.async_call(DOMAIN, "end_conversation", blocking=True)

    # What a user sees live: the whole text and whether it is final.
    assert live.attributes["text"] == LONG_REPLY
    assert live.attributes["final"] is True
    spoken_while_live = [text for text in assistant.states if text not in ("unknown", LONG_REPLY)]
    assert spoken_while_live  # the live text did change while the reply was spoken

    recorded_assistant = await _recorded(hass, since, ASSISTANT_TRANSCRIPT)
    recorded_user = await _recorded(hass, since, USER_TRANSCRIPT)
    assert recorded_assistant[-1].state == LONG_REPLY
    assert recorded_user[-1].state == simulator.user_transcript
    for state in (*recorded_assistant, *recorded_user):
        assert not {"text", "time", "final"} & set(state.attributes), state
        assert state.attributes["friendly_name"]  # the rest is recorded as usual
    # Other sensors keep their attributes in the history.
    assert "total_tokens" in (await _recorded(hass, since, TOKENS))[-1].attributes
    assert "last_error" in (await _recorded(hass, since, STATE))[-1].attributes

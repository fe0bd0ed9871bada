"""A conversation in a real Home Assistant: simulator peer over loopback, PulseAudio devices."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.audio import DuplexMode
from custom_components.realtime_voice.const import (
    CONF_IDLE_TIMEOUT,
    CONF_MAX_DURATION,
    DOMAIN,
    EVENT_SESSION_ENDED,
    EVENT_SESSION_STARTED,
    EVENT_TRANSCRIPT,
)
from custom_components.realtime_voice.translated_errors import ISSUE_AUDIO_DEVICE, box_issue_id
from tests.helpers.integration import (
    ASSISTANT_SPEAKING,
    ASSISTANT_TRANSCRIPT,
    END_BUTTON,
    SESSION_ACTIVE,
    START_BUTTON,
    STATE,
    USER_SPEAKING,
    USER_TRANSCRIPT,
    EventLog,
    StateHistory,
    box_entry,
    box_of,
    box_session,
    running_box,
    speak_into_mic,
)
from tests.helpers.virtual_audio import MIC, SPEAKER, open_streams, speech_wav

from .simulator import Reply, Simulator

pytestmark = pytest.mark.usefixtures("loopback_ice", "virtual_audio")


@pytest.fixture(params=["pulse", "sounddevice"])
def backend(request: pytest.FixtureRequest) -> str:
    """Run each scenario on both audio backends."""
    return str(request.param)


@pytest.fixture
async def box(
    hass: HomeAssistant, simulator: Simulator, backend: str
) -> AsyncIterator[MockConfigEntry]:
    """Set up a box pointed at the simulator, on the virtual devices."""
    microphone, speaker = {"pulse": (MIC, SPEAKER), "sounddevice": ("default", "default")}[backend]
    entry = box_entry(
        simulator,
        backend=backend,
        microphone=microphone,
        speaker=speaker,
        options={CONF_IDLE_TIMEOUT: 30, CONF_MAX_DURATION: 10},
    )
    async with running_box(hass, entry):
        yield entry


async def _press(hass: HomeAssistant, button: str) -> None:
    await hass.services.async_call("button", "press", {"entity_id": button}, blocking=True)


async def test_a_whole_conversation(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, tmp_path: Path
) -> None:
    """Button → connecting → listening; speech → user speaking and transcript; reply spoken."""
    simulator.script(Reply("The kitchen light is on now."))
    state = StateHistory(hass, STATE)
    user = StateHistory(hass, USER_SPEAKING)
    assistant = StateHistory(hass, ASSISTANT_SPEAKING)
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    started = EventLog(hass, EVENT_SESSION_STARTED)
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    wav = speech_wav(tmp_path / "speech.wav", "turn on the kitchen light")

    await _press(hass, START_BUTTON)

    assert state.states[-1] == "listening"
    assert "connecting" in state.states
    assert hass.states.get(SESSION_ACTIVE).state == "on"
    await started.wait_for()

    await speak_into_mic(wav)
    await user.wait_for("on")
    heard = await transcripts.wait_for(lambda data: data["role"] == "user")
    await assistant.wait_for("on")
    said = await transcripts.wait_for(lambda data: data["role"] == "assistant")
    await assistant.until(lambda: assistant.states[-1] == "off")

    assert heard["text"] == simulator.user_transcript
    assert said["text"] == "The kitchen light is on now."
    assert hass.states.get(USER_TRANSCRIPT).state == simulator.user_transcript
    assistant_text = hass.states.get(ASSISTANT_TRANSCRIPT)
    assert assistant_text.state == "The kitchen light is on now."
    assert assistant_text.attributes["final"] is True
    assert {"user_speaking", "thinking", "assistant_speaking"} <= set(state.states)

    await _press(hass, END_BUTTON)
    end = await ended.wait_for()
    assert end["reason"] == "user"
    assert hass.states.get(STATE).state == "idle"
    call = simulator.calls[0]
    await call.wait_closed()


async def test_concurrent_starts_make_one_session(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Two starts at once: one conversation; the other is told one is already running."""
    results = await asyncio.gather(
        _press(hass, START_BUTTON), _press(hass, START_BUTTON), return_exceptions=True
    )
    errors = [result for result in results if isinstance(result, Exception)]
    assert len(errors) == 1
    assert isinstance(errors[0], HomeAssistantError)
    assert errors[0].translation_key == "already_running"
    assert len(simulator.calls) == 1
    await _press(hass, END_BUTTON)


async def test_ending_when_idle_says_so(hass: HomeAssistant, box: MockConfigEntry) -> None:
    """End with nothing running: a translated error, nothing changes."""
    with pytest.raises(HomeAssistantError) as raised:
        await _press(hass, END_BUTTON)
    assert raised.value.translation_key == "not_running"
    assert hass.states.get(STATE).state == "idle"


async def _start(hass: HomeAssistant, **data: str) -> None:
    await hass.services.async_call(DOMAIN, "start_conversation", data, blocking=True)


async def _ended(hass: HomeAssistant, ended: EventLog) -> dict:
    """Wait for the end of the conversation; check that the devices are released."""
    end = await ended.wait_for()
    assert hass.states.get(STATE).state == "idle"
    assert hass.states.get(SESSION_ACTIVE).state == "off"
    assert open_streams() == []
    return end


@pytest.mark.parametrize("backend", ["pulse"])
async def test_idle_timeout_ends_the_conversation(
    hass: HomeAssistant, box: MockConfigEntry
) -> None:
    """Nobody speaks for the idle timeout: the conversation ends as idle."""
    box_session(box).apply_settings(replace(box_session(box).settings, idle_timeout=0.5))
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    await _start(hass)
    assert open_streams() != []
    assert (await _ended(hass, ended))["reason"] == "idle"


IDLE_SECONDS = 5.0
"""Longer than a new recording takes to deliver its first audio on a busy machine (PulseAudio
wakes a source in up to 2 s), shorter than what is left of the sentence below by then."""


@pytest.mark.parametrize("backend", ["pulse"])
async def test_someone_speaking_is_never_idle(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, tmp_path: Path
) -> None:
    """A user who talks for longer than the idle timeout is heard out, then answered.

    The idle timer runs out while the user still speaks: it starts again instead of ending
    the conversation; silence after the answer ends it as idle.
    """
    box_session(box).apply_settings(replace(box_session(box).settings, idle_timeout=IDLE_SECONDS))
    simulator.script(Reply("Noted."))
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    state = StateHistory(hass, STATE)
    long_sentence = (
        "please remember that the plants on the balcony need water every morning, "
        "that the tomatoes in the kitchen window need water every evening before dinner, "
        "and that the lemon tree in the hall needs water only on sundays"
    )
    wav = speech_wav(tmp_path / "long.wav", long_sentence)  # 11 s
    # The user is already talking when the conversation starts (the button pressed mid-
    # sentence), so a slow start on a busy machine cannot run the first timeout out first.
    speaking = asyncio.create_task(speak_into_mic(wav))
    await _start(hass)
    await speaking
    said = await transcripts.wait_for(lambda data: data["role"] == "assistant", timeout=20)
    assert said["text"] == "Noted."
    assert ended.events == []  # not ended while the user spoke, nor while the model thought
    assert "user_speaking" in state.states
    assert (await _ended(hass, ended))["reason"] == "idle"


@pytest.mark.parametrize("backend", ["pulse"])
async def test_max_duration_ends_the_conversation(
    hass: HomeAssistant, box: MockConfigEntry
) -> None:
    """The conversation ends after the maximum duration, even while people talk."""
    box_session(box).apply_settings(replace(box_session(box).settings, max_duration=0.5 / 60))
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    await _start(hass)
    assert (await _ended(hass, ended))["reason"] == "max_duration"


@pytest.mark.parametrize("backend", ["pulse"])
async def test_session_expired_ends_the_conversation(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """OpenAI's own cap (session_expired) ends the conversation as expired."""
    simulator.faults.max_session_seconds = 0.5
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    await _start(hass)
    assert (await _ended(hass, ended))["reason"] == "expired"


@pytest.mark.parametrize("backend", ["pulse"])
async def test_peer_loss_ends_the_conversation_and_keeps_what_was_said(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """The peer vanishes mid-reply: error, last_error set, the user's transcript kept."""
    simulator.faults.drop_during_response = True
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    await _start(hass)
    await hass.services.async_call(DOMAIN, "send_text", {"text": "What time is it?"}, blocking=True)
    end = await _ended(hass, ended)
    assert end["reason"] == "error"
    assert hass.states.get(STATE).attributes["last_error"]


@pytest.mark.parametrize("backend", ["pulse"])
async def test_goodbye_is_spoken_before_hanging_up(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """end_conversation with a goodbye: the audio plays out, then the call closes."""
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    simulator.script(Reply("Goodbye, see you soon."))
    await _start(hass)
    await hass.services.async_call(
        DOMAIN, "end_conversation", {"goodbye": "see you soon"}, blocking=True
    )
    end = await _ended(hass, ended)
    said = await transcripts.wait_for(lambda data: data["role"] == "assistant", timeout=0)
    assert said["text"] == "Goodbye, see you soon."
    call = simulator.calls[0]
    await call.wait_closed()  # the simulator's side closes on the hang-up, in its own time
    stopped = next(at for at, e in call.server_events if e["type"] == "output_audio_buffer.stopped")
    assert call.closed_at is not None
    assert stopped < call.closed_at
    assert end["reason"] == "user"


@pytest.mark.parametrize("backend", ["pulse"])
async def test_unload_and_stop_end_the_conversation(
    hass: HomeAssistant, box: MockConfigEntry
) -> None:
    """Unloading the entry ends a running conversation as shutdown and releases the devices."""
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    await _start(hass)
    assert await hass.config_entries.async_unload(box.entry_id)
    end = await ended.wait_for()
    assert end["reason"] == "shutdown"
    assert open_streams() == []

    assert await hass.config_entries.async_setup(box.entry_id)
    await _start(hass)
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await ended.wait_for(lambda _data: len(ended.events) == 2)
    assert [event["reason"] for event in ended.events] == ["shutdown", "shutdown"]
    assert open_streams() == []


@pytest.mark.parametrize("backend", ["pulse"])
async def test_a_greeting_is_said_first(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """start_conversation with a greeting: the assistant speaks first."""
    simulator.script(Reply("Good morning! What can I do for you?"))
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    await _start(hass, greeting="Good morning")
    said = await transcripts.wait_for(lambda data: data["role"] == "assistant")
    assert said["text"] == "Good morning! What can I do for you?"
    request = await simulator.calls[0].wait_for_client_event("response.create")
    assert "Good morning" in request["response"]["instructions"]
    await _press(hass, END_BUTTON)


@pytest.mark.parametrize("backend", ["pulse"])
async def test_full_duplex_barge_in_silences_the_speaker(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, tmp_path: Path
) -> None:
    """In full duplex the user can talk over the assistant: its reply stops at once."""
    session = box_session(box)
    session.apply_settings(replace(session.settings, duplex=DuplexMode.FULL))
    simulator.script(Reply("Here is a very long story that goes on and on " * 6))
    assistant = StateHistory(hass, ASSISTANT_SPEAKING)
    state = StateHistory(hass, STATE)
    wav = speech_wav(tmp_path / "stop.wav", "stop, please stop")
    await _start(hass)
    await hass.services.async_call(DOMAIN, "send_text", {"text": "Tell me a story"}, blocking=True)
    await assistant.wait_for("on")
    await speak_into_mic(wav)
    await state.until(
        lambda: "user_speaking" in state.states[state.states.index("assistant_speaking") :]
    )
    await assistant.until(lambda: assistant.states[-1] == "off")
    call = simulator.calls[0]
    cleared = await call.wait_for_server_event("output_audio_buffer.cleared")
    assert cleared["response_id"]
    assert session.audio_diagnostics()["speaker"]["flushes"] >= 1
    await _press(hass, END_BUTTON)


@pytest.mark.parametrize("backend", ["pulse"])
async def test_a_speaker_unplugged_mid_conversation(
    hass: HomeAssistant,
    box: MockConfigEntry,
    unplug: Callable[[str], None],
) -> None:
    """The speaker disappears: the conversation ends as error, with a repair issue."""
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    await _start(hass)
    unplug(SPEAKER)
    end = await ended.wait_for(timeout=15)
    assert end["reason"] == "error"
    assert (
        ir.async_get(hass).async_get_issue(
            DOMAIN, box_issue_id(ISSUE_AUDIO_DEVICE, box_of(box).subentry_id)
        )
        is not None
    )
    assert hass.states.get(STATE).state == "idle"
    assert open_streams() == []

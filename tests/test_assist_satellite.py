"""The box as an Assist satellite: Home Assistant's own actions on a real Home Assistant.

The simulator plays OpenAI; the speaker is a PulseAudio virtual sink whose monitor is recorded;
announcement media is served over HTTP on loopback, as Home Assistant's media would be.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
import shutil
from typing import Any
from unittest.mock import patch

from aiohttp import web
from homeassistant.components.assist_satellite import AssistSatelliteEntityFeature
from homeassistant.const import ATTR_SUPPORTED_FEATURES
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.realtime_voice.const import (
    CONF_TRANSCRIPTION_MODEL,
    DOMAIN,
    EVENT_SESSION_ENDED,
    EVENT_TRANSCRIPT,
)
from custom_components.realtime_voice.translated_errors import ISSUE_AUDIO_DEVICE, box_issue_id
from tests.helpers.audio_helpers import MonitorClock
from tests.helpers.integration import (
    EventLog,
    StateHistory,
    box_entry,
    box_of,
    box_session,
    running_box,
    speak_into_mic,
)
from tests.helpers.loopback_http import serve_on_loopback
from tests.helpers.virtual_audio import (
    MIC,
    RATE,
    SPEAKER,
    SPEAKER_MONITOR,
    dominant_hz,
    open_streams,
    speech_wav,
    tone,
    write_wav,
)

from .simulator import Reply, Simulator

pytestmark = pytest.mark.usefixtures("loopback_ice", "virtual_audio")

SATELLITE = "assist_satellite.realtime_voice"
BRAND_ICON = Path(__file__).parents[1] / "custom_components/realtime_voice/brand/icon.png"
TONE_HZ = 440.0
TONE_SECONDS = 1.0
LOUD_RMS = 1000.0
"""A block above this RMS is sound, not the virtual sink's silence."""


@pytest.fixture
def backend() -> str:
    """Return the audio library of the box: PulseAudio unless a test asks for both."""
    return "pulse"


@pytest.fixture
async def box(
    hass: HomeAssistant, simulator: Simulator, backend: str
) -> AsyncIterator[MockConfigEntry]:
    """Set up one box on the virtual devices, pointed at the simulator."""
    microphone, speaker = {"pulse": (MIC, SPEAKER), "sounddevice": ("default", "default")}[backend]
    entry = box_entry(simulator, backend=backend, microphone=microphone, speaker=speaker)
    async with running_box(hass, entry) as entry:
        yield entry


@pytest.fixture
async def media_server(tmp_path: Path, simulator: Simulator) -> AsyncIterator[str]:
    """Serve a 440 Hz WAV on loopback (the simulator fixture lets the test open sockets)."""
    write_wav(tmp_path / "tone.wav", tone(TONE_HZ, TONE_SECONDS))
    app = web.Application()
    app.router.add_static("/media", tmp_path)
    async with serve_on_loopback(app) as url:
        yield f"{url}/media"


async def _satellite(hass: HomeAssistant, action: str, **data: Any) -> Any:
    return await hass.services.async_call(
        "assist_satellite",
        action,
        {"entity_id": SATELLITE, **data},
        blocking=True,
        return_response=action == "ask_question",
    )


def _loud_seconds(speaker: MonitorClock) -> float:
    """Return how long the speaker played sound, not the virtual sink's silence."""
    return len(speaker.loud_times(LOUD_RMS)) * speaker.BLOCK / RATE


async def test_the_box_is_a_satellite(hass: HomeAssistant, box: MockConfigEntry) -> None:
    """One satellite on the box's device, named after the box, idle, announce and converse."""
    state = hass.states.get(SATELLITE)
    assert state is not None
    assert state.state == "idle"
    features = AssistSatelliteEntityFeature(state.attributes[ATTR_SUPPORTED_FEATURES])
    assert features == (
        AssistSatelliteEntityFeature.ANNOUNCE | AssistSatelliteEntityFeature.START_CONVERSATION
    )
    entry = er.async_get(hass).async_get(SATELLITE)
    assert entry is not None
    assert entry.config_entry_id == box.entry_id
    assert entry.device_id is not None
    sensor = er.async_get(hass).async_get("sensor.realtime_voice_state")
    assert sensor is not None
    assert entry.device_id == sensor.device_id


async def test_announce_is_said_in_the_box_voice_and_ends(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Announce with a message: the Realtime voice says it on the speaker, then hangs up."""
    simulator.script(Reply("The laundry is done."))
    satellite = StateHistory(hass, SATELLITE)
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    with MonitorClock(SPEAKER_MONITOR) as speaker:
        await _satellite(hass, "announce", message="the laundry is done", preannounce=False)
    said = await transcripts.wait_for(lambda data: data["role"] == "assistant", timeout=0)
    assert said["text"] == "The laundry is done."
    assert (await ended.wait_for(timeout=0))["reason"] == "user"
    request = await simulator.calls[0].wait_for_client_event("response.create")
    assert "the laundry is done" in request["response"]["instructions"]
    assert _loud_seconds(speaker) > 0.1  # espeak-ng's speech reached the speaker
    assert "responding" in satellite.states
    assert satellite.states[-1] == "idle"
    assert open_streams() == []


@pytest.mark.parametrize("backend", ["pulse", "sounddevice"])
async def test_announce_media_plays_on_the_speaker(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, media_server: str
) -> None:
    """Announce with media only: the media plays on the speaker, whole; no call is made."""
    satellite = StateHistory(hass, SATELLITE)
    with MonitorClock(SPEAKER_MONITOR) as speaker:
        await _satellite(hass, "announce", media_id=f"{media_server}/tone.wav", preannounce=False)
    assert abs(dominant_hz(np.concatenate(speaker.samples)) - TONE_HZ) < 5
    assert abs(_loud_seconds(speaker) - TONE_SECONDS) < 0.1
    assert simulator.calls == []
    assert satellite.states == ["idle", "responding", "idle"]
    assert open_streams() == []


async def test_preannounce_plays_the_chime_first(
    hass: HomeAssistant, box: MockConfigEntry, media_server: str
) -> None:
    """Preannounce (the default): Home Assistant's chime (an MP3) plays before the media."""
    with MonitorClock(SPEAKER_MONITOR) as speaker:
        await _satellite(hass, "announce", media_id=f"{media_server}/tone.wav")
    first_loud = speaker.loud_times(LOUD_RMS)[0]
    chime = np.concatenate([samples for at, samples in _timed(speaker) if at < first_loud + 0.3])
    assert abs(dominant_hz(chime) - TONE_HZ) > 20  # what starts is not the tone
    assert _loud_seconds(speaker) > TONE_SECONDS + 0.2  # the chime's loud part, then the tone


def _timed(speaker: MonitorClock) -> list[tuple[float, np.ndarray]]:
    """Return each recorded block with the time it was read."""
    blocks = zip(speaker.blocks, speaker.samples, strict=True)
    return [(at, samples) for (at, _level), samples in blocks]


async def test_media_that_cannot_be_fetched_is_a_translated_error(
    hass: HomeAssistant, box: MockConfigEntry, media_server: str
) -> None:
    """A missing file: a translated error that names it, and the box stays idle."""
    with pytest.raises(HomeAssistantError) as raised:
        await _satellite(hass, "announce", media_id=f"{media_server}/missing.mp3")
    assert raised.value.translation_key == "media_unavailable"
    assert raised.value.translation_placeholders == {
        "media": f"{media_server}/missing.mp3",
        "message": "HTTP 404 Not Found",
    }
    assert hass.states.get(SATELLITE).state == "idle"
    assert open_streams() == []


@pytest.fixture
def local_media(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Make tmp_path Home Assistant's local media folder, before media_source is set up."""
    hass.config.media_dirs = {"local": str(tmp_path)}
    return tmp_path


async def test_media_source_is_fetched_from_home_assistant(
    hass: HomeAssistant,
    local_media: Path,
    box: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """A media-source id: resolved, signed and fetched from Home Assistant's own web server.

    The harness serves Home Assistant's web application on a loopback port of its own.
    """
    write_wav(local_media / "tone.wav", tone(TONE_HZ, TONE_SECONDS))
    client = await hass_client_no_auth()
    hass.config.internal_url = f"http://{client.host}:{client.port}"
    with MonitorClock(SPEAKER_MONITOR) as speaker:
        await _satellite(
            hass,
            "announce",
            media_id="media-source://media_source/local/tone.wav",
            preannounce=False,
        )
    assert abs(_loud_seconds(speaker) - TONE_SECONDS) < 0.1


async def test_a_long_clip_is_cut(
    hass: HomeAssistant, box: MockConfigEntry, media_server: str
) -> None:
    """Media longer than the limit plays up to the limit (announcements, not albums)."""
    with (
        patch("custom_components.realtime_voice.audio.clip.MAX_CLIP_SECONDS", 0.5),
        MonitorClock(SPEAKER_MONITOR) as speaker,
    ):
        await _satellite(hass, "announce", media_id=f"{media_server}/tone.wav", preannounce=False)
    assert abs(_loud_seconds(speaker) - 0.5) < 0.1


async def test_media_too_large_is_refused(
    hass: HomeAssistant, box: MockConfigEntry, media_server: str
) -> None:
    """A file beyond the size limit is not downloaded whole nor played."""
    with (
        patch("custom_components.realtime_voice.announcement_media.MAX_MEDIA_BYTES", 1000),
        pytest.raises(HomeAssistantError) as raised,
    ):
        await _satellite(hass, "announce", media_id=f"{media_server}/tone.wav", preannounce=False)
    assert raised.value.translation_key == "media_unavailable"
    assert "larger than" in raised.value.translation_placeholders["message"]


async def test_an_image_is_not_audio(
    hass: HomeAssistant, box: MockConfigEntry, media_server: str, tmp_path: Path
) -> None:
    """Media FFmpeg reads but without sound: the translated error says it has no audio."""
    shutil.copy(BRAND_ICON, tmp_path / "icon.png")
    with pytest.raises(HomeAssistantError) as raised:
        await _satellite(hass, "announce", media_id=f"{media_server}/icon.png", preannounce=False)
    assert raised.value.translation_placeholders["message"] == "the media has no audio"


async def test_start_conversation_with_media_plays_it_then_listens(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, media_server: str
) -> None:
    """start_media_id without a message: the media plays, then the box listens, saying nothing."""
    with MonitorClock(SPEAKER_MONITOR) as speaker:
        await _satellite(
            hass,
            "start_conversation",
            start_media_id=f"{media_server}/tone.wav",
            preannounce=False,
        )
    assert abs(_loud_seconds(speaker) - TONE_SECONDS) < 0.1
    assert hass.states.get(SATELLITE).state == "listening"
    call = simulator.calls[0]
    await hass.services.async_call(DOMAIN, "end_conversation", blocking=True)
    assert not [event for _, event in call.client_events if event["type"] == "response.create"]


async def test_media_from_nowhere_is_a_translated_error(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Nobody listens at the media's address: the error says it could not connect.

    Not even the chime (preannounce, the default) plays: the media is fetched first.
    """
    satellite = StateHistory(hass, SATELLITE)
    with pytest.raises(HomeAssistantError) as raised:
        await _satellite(hass, "announce", media_id="http://127.0.0.1:1/chime.mp3")
    assert raised.value.translation_key == "media_unavailable"
    assert "Cannot connect" in raised.value.translation_placeholders["message"]
    assert satellite.states == ["idle"]


async def test_media_that_is_not_audio_is_a_translated_error(
    hass: HomeAssistant, box: MockConfigEntry, media_server: str, tmp_path: Path
) -> None:
    """A file that is not audio: the same translated error, nothing opened."""
    (tmp_path / "notes.mp3").write_text("not a sound at all", encoding="utf-8")
    with pytest.raises(HomeAssistantError) as raised:
        await _satellite(hass, "announce", media_id=f"{media_server}/notes.mp3")
    assert raised.value.translation_key == "media_unavailable"
    assert open_streams() == []


async def test_media_waits_for_no_conversation(
    hass: HomeAssistant, box: MockConfigEntry, media_server: str
) -> None:
    """Media during a conversation is refused (the speaker is the conversation's); it goes on."""
    await hass.services.async_call(DOMAIN, "start_conversation", blocking=True)
    with pytest.raises(HomeAssistantError) as raised:
        await _satellite(hass, "announce", media_id=f"{media_server}/tone.wav")
    assert raised.value.translation_key == "already_running"
    assert box_session(box).state.active
    assert hass.states.get(SATELLITE).state == "listening"
    await hass.services.async_call(DOMAIN, "end_conversation", blocking=True)


async def test_start_conversation_opens_with_the_greeting(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """start_conversation: the assistant says the message first; the extra prompt is known."""
    simulator.script(Reply("Good morning! The coffee is ready."))
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    await _satellite(
        hass,
        "start_conversation",
        start_message="Good morning, the coffee is ready",
        extra_system_prompt="The user asked to be woken at seven.",
        preannounce=False,
    )
    said = await transcripts.wait_for(lambda data: data["role"] == "assistant")
    assert said["text"] == "Good morning! The coffee is ready."
    call = simulator.calls[0]
    request = await call.wait_for_client_event("response.create")
    assert "Good morning, the coffee is ready" in request["response"]["instructions"]
    update = await call.wait_for_client_event("session.update")
    instructions = update["session"]["instructions"]
    assert "The user asked to be woken at seven." in instructions
    assert box_session(box).settings.instructions in instructions  # the persona stays
    assert box_session(box).state.active
    await hass.services.async_call(DOMAIN, "end_conversation", blocking=True)
    assert hass.states.get(SATELLITE).state == "idle"


async def test_the_state_follows_the_conversation(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, tmp_path: Path
) -> None:
    """Connecting → listening → (speech) processing → responding → listening → idle."""
    simulator.script(Reply("The kitchen light is on now."))
    satellite = StateHistory(hass, SATELLITE)
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    wav = speech_wav(tmp_path / "speech.wav", "turn on the kitchen light")
    await hass.services.async_call(DOMAIN, "start_conversation", blocking=True)
    assert satellite.states == ["idle", "processing", "listening"]
    await speak_into_mic(wav)
    await transcripts.wait_for(lambda data: data["role"] == "assistant")
    await satellite.until(lambda: satellite.states[-2:] == ["responding", "listening"])
    await hass.services.async_call(DOMAIN, "end_conversation", blocking=True)
    await satellite.wait_for("idle")
    # Ending says no goodbye here, so `responding` is brief; the box is idle at the end.
    assert _in_order(satellite.states, ["processing", "listening", "processing", "responding"])
    assert satellite.states[-2:] == ["responding", "idle"]


def _in_order(states: list[str], expected: list[str]) -> bool:
    """Return whether expected occurs in states in this order (others may come between)."""
    rest = iter(states)
    return all(state in rest for state in expected)


async def test_ask_question_matches_the_transcribed_reply(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, tmp_path: Path
) -> None:
    """ask_question: the question is said, the reply transcribed, matched, the call ended."""
    simulator.user_transcript = "yes please"
    simulator.script(Reply("Shall I turn on the kitchen light?"))
    satellite = StateHistory(hass, SATELLITE)
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    wav = speech_wav(tmp_path / "yes.wav", "yes please")
    asked = hass.async_create_task(
        _satellite(
            hass,
            "ask_question",
            question="Shall I turn on the kitchen light?",
            preannounce=False,
            answers=[
                {"id": "yes", "sentences": ["yes [please]", "sure"]},
                {"id": "no", "sentences": ["no [thanks]"]},
            ],
        )
    )
    await satellite.until(lambda: satellite.states[-2:] == ["responding", "listening"])
    # After the question: the microphone is muted while the speaker plays it, and on a busy
    # machine the speaker can still be playing held audio when the state says listening, so
    # the user says it again if it was not heard, as a user would (up to three times).
    for _attempt in range(3):
        await speak_into_mic(wav)
        done, _ = await asyncio.wait({asked}, timeout=8)
        if done:
            break
    answer = await asyncio.wait_for(asked, timeout=5)
    assert answer == {"id": "yes", "sentence": "yes please", "slots": {}}
    assert (await ended.wait_for())["reason"] == "user"
    request = await simulator.calls[0].wait_for_client_event("response.create")
    assert "Shall I turn on the kitchen light?" in request["response"]["instructions"]


async def test_ask_question_needs_transcription(hass: HomeAssistant, simulator: Simulator) -> None:
    """With transcription switched off the box cannot hear a reply: it says so, asks nothing."""
    entry = box_entry(simulator, options={CONF_TRANSCRIPTION_MODEL: ""})
    async with running_box(hass, entry):
        with pytest.raises(HomeAssistantError) as raised:
            await _satellite(hass, "ask_question", question="Coffee?", preannounce=False)
    assert raised.value.translation_key == "question_needs_transcription"
    assert simulator.calls == []


async def test_configuration_is_not_supported(
    hass: HomeAssistant, box: MockConfigEntry, hass_ws_client: Any
) -> None:
    """No wake words: the frontend gets Home Assistant's stub, as for VoIP phones."""
    assert await async_setup_component(hass, "assist_satellite", {})
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {"type": "assist_satellite/get_configuration", "entity_id": SATELLITE}
    )
    response = await client.receive_json()
    assert response["success"]
    assert response["result"]["available_wake_words"] == []
    assert response["result"]["active_wake_words"] == []


async def test_ask_question_without_answers_returns_the_sentence(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, tmp_path: Path
) -> None:
    """No answers to match: the reply comes back as said, without an id."""
    simulator.user_transcript = "at seven thirty"
    simulator.script(Reply("When shall I wake you?"))
    satellite = StateHistory(hass, SATELLITE)
    wav = speech_wav(tmp_path / "time.wav", "at seven thirty")
    asked = hass.async_create_task(
        _satellite(hass, "ask_question", question="When shall I wake you?", preannounce=False)
    )
    await satellite.until(lambda: satellite.states[-2:] == ["responding", "listening"])
    await speak_into_mic(wav)
    answer = await asyncio.wait_for(asked, timeout=15)
    assert answer == {"id": None, "sentence": "at seven thirty", "slots": {}}


async def test_ask_question_without_a_reply_is_an_error(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """The conversation ends before anyone answers: a translated error, the box idle."""
    simulator.script(Reply("Is anybody there?"))
    satellite = StateHistory(hass, SATELLITE)
    asked = hass.async_create_task(
        _satellite(hass, "ask_question", question="Is anybody there?", preannounce=False)
    )
    await satellite.until(lambda: satellite.states[-2:] == ["responding", "listening"])
    await hass.services.async_call(DOMAIN, "end_conversation", blocking=True)
    with pytest.raises(HomeAssistantError) as raised:
        await asyncio.wait_for(asked, timeout=15)
    assert raised.value.translation_key == "no_reply"
    assert hass.states.get(SATELLITE).state == "idle"


async def test_the_connection_test_of_the_setup_wizard_passes(
    hass: HomeAssistant,
    box: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    hass_ws_client: Any,
) -> None:
    """The Voice Satellite setup's check: the box fetches (and plays) Home Assistant's sound."""
    ws = await hass_ws_client(hass)  # before the web server starts: it adds a route
    client = await hass_client_no_auth()
    hass.config.internal_url = f"http://{client.host}:{client.port}"
    satellite = StateHistory(hass, SATELLITE)
    with MonitorClock(SPEAKER_MONITOR) as speaker:
        await ws.send_json_auto_id(
            {"type": "assist_satellite/test_connection", "entity_id": SATELLITE}
        )
        response = await ws.receive_json()
        # The sound plays on after the check (it passes once the box fetched it).
        await satellite.until(lambda: satellite.states[-2:] == ["responding", "idle"])
    assert response["result"] == {"status": "success"}
    assert _loud_seconds(speaker) > 0.1


async def test_media_without_a_speaker_is_a_translated_error(
    hass: HomeAssistant,
    box: MockConfigEntry,
    media_server: str,
    unplug: Callable[[str], Callable[[], None]],
) -> None:
    """The speaker is gone: the error and the repair issue of an unavailable device."""
    unplug(SPEAKER)
    with pytest.raises(HomeAssistantError) as raised:
        await _satellite(hass, "announce", media_id=f"{media_server}/tone.wav", preannounce=False)
    assert raised.value.translation_key == "audio_unavailable"
    issue = box_issue_id(ISSUE_AUDIO_DEVICE, box_of(box).subentry_id)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue) is not None
    assert hass.states.get(SATELLITE).state == "idle"
    assert open_streams() == []
